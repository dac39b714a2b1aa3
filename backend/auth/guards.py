"""Authorization building blocks every endpoint reuses.

- ``staff_required(*roles)`` / ``patient_required``: a valid access token of a live session
  (logout and refresh-token reuse stop access tokens at once), with the role checked.
- ``site_scoped``: fetch an object of the caller's site, or answer 404 as if it did not exist,
  so that a staff member of another site learns nothing, not even that the id is real.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from flask import current_app, g, request

from backend.auth.principal import Principal
from backend.auth.services import load_session, principal_for_session
from backend.auth.tokens import decode_access_token
from backend.clock import utcnow
from backend.errors import Forbidden, NotFound, Unauthorized
from backend.extensions import db

F = TypeVar("F", bound=Callable[..., Any])

BEARER_SECURITY: list[dict[str, list[str]]] = [{"bearerAuth": []}]


def authenticate_request() -> Principal:
    """Load and check the bearer token of the current request; set ``g.principal``."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("An access token is required.")
    now = utcnow()
    claimed = decode_access_token(token.strip(), now)
    load_patient = current_app.extensions.get("patient_session_principal")
    if claimed.kind == "patient" and load_patient is not None:
        # A phone: the session's checks and the patient in one statement (the hot path of
        # every answer sent).
        principal: Principal | None = load_patient(claimed.session_id, now)
        if principal is None or principal.id != claimed.id:
            raise Unauthorized("The session has ended; sign in again.")
        g.principal = principal
        return principal
    session, user = load_session(claimed.session_id)
    if session is None or session.revoked_at is not None or session.expires_at <= now:
        raise Unauthorized("The session has ended; sign in again.")
    principal = principal_for_session(session, user)
    if principal is None or principal.id != claimed.id or principal.kind != claimed.kind:
        raise Unauthorized("The session has ended; sign in again.")
    g.principal = principal
    return principal


def staff_required(*roles: str) -> Callable[[F], F]:
    """Staff only; with ``roles``, only those roles (403 for the others)."""

    def decorator(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            principal = authenticate_request()
            if not principal.is_staff:
                # A patient token on a staff endpoint: answer as if the resource were not there.
                raise NotFound()
            if roles and principal.role not in roles:
                raise Forbidden("Your role does not allow this action.")
            return view(*args, **kwargs)

        wrapper._security = BEARER_SECURITY  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorator


def patient_required(view: F) -> F:
    """An enrolled patient device only."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        principal = authenticate_request()
        if not principal.is_patient:
            raise NotFound()
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def current_staff() -> Principal:
    principal: Principal = g.principal
    return principal


T = TypeVar("T")


def site_scoped(
    model: type[T], object_id: uuid.UUID, principal: Principal, site_attr: str = "site_id"
) -> T:
    """The object with this id if it belongs to the principal's site, else 404."""
    obj = db.session.get(model, object_id)
    if obj is None or getattr(obj, site_attr) != principal.site_id:
        raise NotFound()
    return obj
