"""Staff accounts and sign-in sessions. Services flush, never commit; the caller commits."""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from backend.audit.services import record
from backend.auth.models import ROLES, AuthSession, RefreshToken, Site, User
from backend.auth.passwords import (
    dummy_hash,
    hash_password,
    needs_rehash,
    password_problems,
    verify_password,
)
from backend.auth.principal import Principal
from backend.auth.tokens import hash_token, issue_access_token, new_refresh_token
from backend.errors import Problem, Unauthorized, ValidationProblem, field_error
from backend.extensions import db
from backend.locales import FALLBACK_LOCALE, LOCALES


def _fast_hashing() -> bool:
    return bool(current_app.config.get("APP_ENV") == "testing")


def normalise_email(email: str) -> str:
    return email.strip().lower()


def get_or_create_site(
    code: str,
    *,
    now: datetime,
    name: str | None = None,
    timezone: str | None = None,
    locale: str = FALLBACK_LOCALE,
) -> Site:
    site = db.session.execute(db.select(Site).filter_by(code=code)).scalar_one_or_none()
    if site is None:
        site = Site(
            code=code,
            name=name or code,
            locale=locale,
            created_at=now,
            timezone=timezone or current_app.config["DEFAULT_TIMEZONE"],
        )
        db.session.add(site)
        db.session.flush()
    return site


def create_user(
    email: str,
    password: str,
    role: str,
    site: Site,
    *,
    now: datetime,
    full_name: str = "",
    locale: str | None = None,
) -> User:
    """Create a staff account; a weak password or a taken e-mail is refused with the reason."""
    email = normalise_email(email)
    errors = []
    if role not in ROLES:
        errors.append(field_error("/role", f"must be one of {', '.join(ROLES)}"))
    if "@" not in email or len(email) > 254:
        errors.append(field_error("/email", "is not an e-mail address"))
    if locale is not None and locale not in LOCALES:
        errors.append(field_error("/locale", "must be fr or en"))
    problems = password_problems(password, email)
    if problems:
        errors.append(field_error("/password", "; ".join(problems)))
    if errors:
        raise ValidationProblem(errors)
    if db.session.execute(db.select(User.id).filter_by(email=email)).first():
        raise Problem(
            "A user with this e-mail already exists.", status=409, slug="conflict", title="Conflict"
        )
    user = User(
        email=email,
        full_name=full_name,
        locale=locale,
        role=role,
        site=site,
        created_at=now,
        password_hash=hash_password(password, fast=_fast_hashing()),
    )
    db.session.add(user)
    db.session.flush()
    record(
        "user.create",
        now=now,
        actor=None,
        actor_type="system",
        resource_type="user",
        resource_id=user.id,
        site_id=site.id,
        details={"role": role},
    )
    return user


def authenticate(email: str, password: str, *, now: datetime) -> User | None:
    """The active user with this e-mail and password, or None. Both outcomes are audited.

    An unknown e-mail still costs one argon2 verification, so timing does not tell an unknown
    account from a wrong password.
    """
    email = normalise_email(email)
    user: User | None = db.session.execute(
        db.select(User).filter_by(email=email)
    ).scalar_one_or_none()
    if user is None:
        verify_password(dummy_hash(_fast_hashing()), password)
        record(
            "auth.login",
            now=now,
            outcome="failure",
            actor=None,
            actor_type="anonymous",
            resource_type="user",
            details={"reason": "unknown_email"},
        )
        return None
    if not verify_password(user.password_hash, password) or not user.is_active:
        reason = "bad_password" if user.is_active else "inactive"
        record(
            "auth.login",
            now=now,
            outcome="failure",
            actor=None,
            actor_type="user",
            actor_id=user.id,
            site_id=user.site_id,
            resource_type="user",
            resource_id=user.id,
            details={"reason": reason},
        )
        return None
    if needs_rehash(user.password_hash, _fast_hashing()):
        user.password_hash = hash_password(password, fast=_fast_hashing())
    user.last_login_at = now
    record(
        "auth.login",
        now=now,
        actor=None,
        actor_type="user",
        actor_id=user.id,
        site_id=user.site_id,
        resource_type="user",
        resource_id=user.id,
    )
    return user


@dataclass(frozen=True)
class IssuedTokens:
    access_token: str
    refresh_token: str
    expires_in: int
    principal: Principal


def staff_principal(user: User, session_id: uuid.UUID) -> Principal:
    return Principal(
        kind="staff",
        id=user.id,
        site_id=user.site_id,
        session_id=session_id,
        role=user.role,
        locale=user.locale,
        site_locale=user.site.locale,
    )


def _refresh_ttl(kind: str) -> timedelta:
    key = "STAFF_REFRESH_TOKEN_TTL_DAYS" if kind == "staff" else "PATIENT_REFRESH_TOKEN_TTL_DAYS"
    return timedelta(days=int(current_app.config[key]))


def issue_tokens(session: AuthSession, principal: Principal, now: datetime) -> IssuedTokens:
    raw, digest = new_refresh_token()
    expires_at = now + _refresh_ttl(principal.kind)
    session.expires_at = expires_at
    db.session.add(
        RefreshToken(
            session_id=session.id, token_hash=digest, created_at=now, expires_at=expires_at
        )
    )
    access, ttl = issue_access_token(principal, now)
    return IssuedTokens(access, raw, ttl, principal)


def start_staff_session(user: User, *, now: datetime) -> IssuedTokens:
    session = AuthSession(user_id=user.id, created_at=now, expires_at=now)
    db.session.add(session)
    db.session.flush()
    return issue_tokens(session, staff_principal(user, session.id), now)


@functools.cache
def _session_statement() -> sa.Select[AuthSession, User]:
    """``load_session``'s statement, built once (the session's id a bound parameter): building
    it and its cache key again was about 2 % of every staff request."""
    return (
        sa.select(AuthSession, User)
        .outerjoin(User, User.id == AuthSession.user_id)
        .where(AuthSession.id == sa.bindparam("session_id", type_=AuthSession.id.type))
    )


def load_session(session_id: uuid.UUID) -> tuple[AuthSession | None, User | None]:
    """A session and, for a staff session, its user with the site, in one statement (every
    request checks its session: two statements and a third for the site's language were a
    sixth of a queue page's)."""
    row = db.session.execute(_session_statement(), {"session_id": session_id}).first()
    return (row[0], row[1]) if row is not None else (None, None)


def principal_for_session(session: AuthSession, user: User | None = None) -> Principal | None:
    """The principal a session stands for, if it may still act (active user). ``user``: the
    session's user when the caller loaded it with the session (``load_session``)."""
    if session.user_id is not None:
        if user is None or user.id != session.user_id:
            user = db.session.get(User, session.user_id)
        if user is None or not user.is_active:
            return None
        return staff_principal(user, session.id)
    resolver = current_app.extensions.get("patient_principal_resolver")
    return resolver(session) if resolver else None


def revoke_session(session: AuthSession, *, now: datetime, reason: str) -> None:
    if session.revoked_at is None:
        session.revoked_at = now
        session.revoked_reason = reason


def refresh(raw_token: str, *, now: datetime) -> IssuedTokens:
    """Rotate a refresh token: the old one stops working, a new pair is issued.

    Presenting a token that was already rotated means it leaked (or the legitimate client and
    an attacker raced): the whole session is revoked (OAuth 2.0 Security BCP, section 4.14).
    The revocation must be committed even though the caller answers 401, so this raises
    ``RefreshReuse`` after flushing; the route commits and re-raises.
    """
    token = db.session.execute(
        db.select(RefreshToken).filter_by(token_hash=hash_token(raw_token))
    ).scalar_one_or_none()
    if token is None:
        raise Unauthorized("The refresh token is invalid.")
    session = token.session
    if session.revoked_at is not None or token.expires_at <= now:
        raise Unauthorized("The refresh token is invalid.")
    # A conditional update, not a read-then-write: of two concurrent uses, exactly one wins.
    claimed = db.session.execute(
        sa.update(RefreshToken)
        .where(RefreshToken.id == token.id, RefreshToken.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        revoke_session(session, now=now, reason="refresh_reuse")
        record(
            "auth.refresh",
            now=now,
            outcome="failure",
            actor=None,
            actor_type="anonymous",
            resource_type="auth_session",
            resource_id=session.id,
            actor_id=session.user_id or session.patient_id,
            details={"reason": "rotated_token_reused", "session_revoked": True},
        )
        db.session.flush()
        raise RefreshReuse("The refresh token is invalid.")
    principal = principal_for_session(session)
    if principal is None:
        raise Unauthorized("The refresh token is invalid.")
    return issue_tokens(session, principal, now)


class RefreshReuse(Unauthorized):
    """A rotated refresh token came back; the session is revoked (commit before answering)."""


def logout(raw_token: str, *, now: datetime) -> None:
    """Revoke the session of this refresh token (idempotent; unknown tokens are ignored)."""
    token = db.session.execute(
        db.select(RefreshToken).filter_by(token_hash=hash_token(raw_token))
    ).scalar_one_or_none()
    if token is None:
        return
    end_session(token.session, now=now)


def end_session(session: AuthSession, *, now: datetime) -> None:
    """Sign out: revoke the session (its access tokens and pages stop at once) and audit it."""
    revoke_session(session, now=now, reason="logout")
    record(
        "auth.logout",
        now=now,
        actor=None,
        resource_type="auth_session",
        resource_id=session.id,
        actor_id=session.user_id or session.patient_id,
        actor_type="user" if session.user_id else "patient",
    )
