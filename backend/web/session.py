"""Signed-in nurses: Flask's signed session cookie naming a staff ``AuthSession``.

The cookie holds only the user id and the id of an ``AuthSession`` opened by
``backend.auth.services.start_staff_session``, the same kind of session the API's tokens name.
Every request checks that session in the database, so signing out, a revoked session or a
deactivated account end access at the next click, not at the cookie's expiry.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import g, redirect, request, session, url_for

from backend.auth.models import AuthSession, User
from backend.auth.principal import Principal
from backend.auth.services import load_session, principal_for_session, start_staff_session
from backend.clock import utcnow
from backend.web.i18n import SESSION_LOCALE

F = TypeVar("F", bound=Callable[..., Any])

_USER = "staff_user_id"
_SESSION = "auth_session_id"


def sign_in(user: User, *, now: datetime) -> None:
    """Open an ``AuthSession`` for this user and put it in a fresh cookie (flush only)."""
    issued = start_staff_session(user, now=now)
    forget()  # a new sign-in starts clean: no CSRF token or message of a previous one
    session[_USER] = str(user.id)
    session[_SESSION] = str(issued.principal.session_id)


def forget() -> None:
    """Drop the sign-in from the cookie (the language choice stays)."""
    locale = session.get(SESSION_LOCALE)
    session.clear()
    g.pop("csrf_token", None)  # the next form gets a token of the new session
    if locale:
        session[SESSION_LOCALE] = locale


def current_auth_session() -> AuthSession | None:
    auth_session: AuthSession | None = g.get("web_auth_session")
    return auth_session


def load_staff(now: datetime) -> Principal | None:
    """The staff principal of the cookie's session if that session may still act."""
    try:
        user_id = uuid.UUID(session[_USER])
        session_id = uuid.UUID(session[_SESSION])
    except (KeyError, ValueError, TypeError):
        return None
    auth_session, user = load_session(session_id)
    if (
        auth_session is None
        or auth_session.user_id != user_id
        or auth_session.revoked_at is not None
        or auth_session.expires_at <= now
    ):
        return None
    # None when the account is deactivated
    principal = principal_for_session(auth_session, user)
    if principal is None:
        return None
    g.principal = principal  # the audit log reads the actor from here
    g.web_auth_session = auth_session
    g.web_user = user
    return principal


def staff_page(view: F) -> F:
    """Signed-in staff only: others go to the sign-in page, and come back after it."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if load_staff(utcnow()) is None:
            ended = 1 if _SESSION in session else None
            forget()
            if request.headers.get("X-Requested-With") == "fetch":
                return "", 401  # the queue's refresh: the script reloads into the sign-in page
            return redirect(url_for("web.login", next=_return_path(), ended=ended))
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _return_path() -> str | None:
    """Where to come back after signing in: this page, or for a form the page it was on."""
    if request.method == "GET":
        return request.full_path.rstrip("?")
    referrer = urlsplit(request.referrer or "")
    if referrer.netloc == request.host and referrer.path:
        return referrer.path + (f"?{referrer.query}" if referrer.query else "")
    return None


def current_staff() -> Principal:
    principal: Principal = g.principal
    return principal


def safe_next(target: str | None) -> str | None:
    """A local path to return to after sign-in, or None (no open redirect to another host)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target
