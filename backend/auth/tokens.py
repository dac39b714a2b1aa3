"""Access tokens (short-lived JWT) and refresh tokens (opaque, rotated, stored hashed).

Expiry is checked against the application clock, not PyJWT's own ``time.time()``, so tests move
time instead of sleeping.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import datetime, timedelta
from typing import Any

import jwt
from flask import current_app

from backend.auth.principal import Principal
from backend.errors import Unauthorized

ALGORITHM = "HS256"
AUDIENCE = "ir-followup-api"


def issue_access_token(principal: Principal, now: datetime) -> tuple[str, int]:
    """A signed access token for ``principal`` and its lifetime in seconds."""
    ttl = int(current_app.config["ACCESS_TOKEN_TTL_SECONDS"])
    claims: dict[str, Any] = {
        "sub": str(principal.id),
        "kind": principal.kind,
        "role": principal.role,
        "site": str(principal.site_id),
        "sid": str(principal.session_id),
        "aud": AUDIENCE,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=ttl)).timestamp()),
    }
    token = jwt.encode(claims, current_app.config["SECRET_KEY"], algorithm=ALGORITHM)
    return token, ttl


def decode_access_token(token: str, now: datetime) -> Principal:
    """The principal of a valid, unexpired access token; 401 otherwise (one message for all)."""
    try:
        claims = jwt.decode(
            token,
            current_app.config["SECRET_KEY"],
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            options={
                "verify_exp": False,
                "verify_iat": False,
                "require": ["sub", "kind", "role", "site", "sid", "exp"],
            },
        )
        if int(claims["exp"]) <= now.timestamp():
            raise Unauthorized("The access token has expired.")
        if claims["kind"] not in {"staff", "patient"}:
            raise jwt.InvalidTokenError("unknown principal kind")
        return Principal(
            kind=claims["kind"],
            id=uuid.UUID(claims["sub"]),
            site_id=uuid.UUID(claims["site"]),
            session_id=uuid.UUID(claims["sid"]),
            role=claims["role"],
        )
    except (jwt.InvalidTokenError, ValueError, KeyError) as exc:
        raise Unauthorized("The access token is invalid.") from exc


def new_refresh_token() -> tuple[str, str]:
    """A fresh opaque refresh token (256 random bits) and the hash that is stored."""
    raw = secrets.token_urlsafe(32)
    return raw, hash_token(raw)


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()
