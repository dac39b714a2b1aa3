"""Failed staff sign-ins: throttled so that guessing stays bounded and no one is locked out.

OWASP ASVS 5.0 V6.1.1 and V6.3.1 ask for brute-force controls that do not hand an attacker a way
to lock a user out (CWE-645). A nurse locked out of the alert queue is a clinical risk, so no
budget is the account's alone:

1. ``LOGIN_LIMIT_PER_ACCOUNT_AND_ADDRESS``: failures of one account from one address (guessing
   one nurse's password from one place). Exhausting it blocks that address for that account
   only: the nurse signs in from any other address.
2. ``LOGIN_LIMIT_PER_ADDRESS``: failures from one address over every account (spraying).
3. ``LOGIN_LIMIT_PER_ACCOUNT``: failures of one account from every address where it has not
   signed in successfully in the last ``KNOWN_ADDRESS_DAYS`` days (guessing from many addresses).
   Addresses it signed in from (the ward's computers, read from the audit log) are exempt, so an
   attacker who exhausts it keeps the nurse only from new places, never from her usual ones.

No progressive delay: a sleeping request holds a worker, which would trade lockout for a denial of
service of everyone. The API's login and the sign-in page draw on the same budgets (ASVS V6.1.3).

Keys are keyed hashes (HMAC with ``SECRET_KEY``) of the e-mail and of the address: neither they nor
an unsalted, guessable hash of them reaches Redis or the limiter's log lines.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar, cast

import sqlalchemy as sa
from flask import current_app, request

from backend.clock import utcnow
from backend.context import client_address
from backend.extensions import db, limiter
from backend.fields import is_storable

KNOWN_ADDRESS_DAYS = 90

F = TypeVar("F", bound=Callable[..., Any])


def keyed_hash(kind: str, value: str) -> str:
    """An opaque, per-deployment digest of ``value`` (no rainbow table inverts it)."""
    key = str(current_app.config["SECRET_KEY"]).encode()
    return hmac.new(
        key, f"{kind}:{value}".encode("utf-8", "surrogatepass"), hashlib.sha256
    ).hexdigest()[:32]


def address_key() -> str:
    """The limiter key of the client address (the default key of every limit)."""
    return "addr-" + keyed_hash("address", client_address())


def _email() -> str:
    from backend.auth.services import normalise_email

    body: Any = request.get_json(silent=True) if request.is_json else request.form
    email = body.get("email") if hasattr(body, "get") else None
    return normalise_email(email) if isinstance(email, str) else ""


def account_key() -> str:
    return "account-" + keyed_hash("email", _email())


def account_and_address_key() -> str:
    return f"{account_key()}-{address_key()}"


def known_address() -> bool:
    """Did this account sign in successfully from this address lately? (audit log; once per
    request: the limiter asks before and after the view)"""
    cached = request.environ.get("ir_followup.login_known_address")
    if cached is None and not is_storable(_email()):
        cached = False  # no account's e-mail holds a NUL or a lone surrogate: nothing to look up
    if cached is None:
        from backend.audit.models import AuditEvent
        from backend.auth.models import User

        since = utcnow() - timedelta(days=KNOWN_ADDRESS_DAYS)
        found = db.session.execute(
            sa.select(AuditEvent.id)
            .join(User, User.id == AuditEvent.actor_id)
            .where(
                User.email == _email(),
                AuditEvent.action == "auth.login",
                AuditEvent.outcome == "success",
                AuditEvent.client_addr == client_address(),
                AuditEvent.occurred_at >= since,
            )
            .limit(1)
        ).first()
        cached = request.environ["ir_followup.login_known_address"] = found is not None
    return bool(cached)


def _failed(response: Any) -> bool:
    return bool(response.status_code == 401)


def login_rate_limits(view: F) -> F:
    """The three budgets of failed sign-ins (a 401 counts; a success costs nothing)."""
    limited: Callable[..., Any] = limiter.shared_limit(
        lambda: current_app.config["LOGIN_LIMIT_PER_ADDRESS"],
        scope="login-address",
        deduct_when=_failed,
    )(view)
    limited = limiter.shared_limit(
        lambda: current_app.config["LOGIN_LIMIT_PER_ACCOUNT_AND_ADDRESS"],
        scope="login-account-address",
        key_func=account_and_address_key,
        deduct_when=_failed,
    )(limited)
    limited = limiter.shared_limit(
        lambda: current_app.config["LOGIN_LIMIT_PER_ACCOUNT"],
        scope="login-account",
        key_func=account_key,
        deduct_when=_failed,
        exempt_when=known_address,
    )(limited)
    return cast(F, limited)
