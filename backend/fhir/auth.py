"""Who reads FHIR: staff (their API access token, care scope of their site) or a registered
system (SMART Backend Services).

SMART Backend Services (RFC 7523 client assertion, SMART App Launch 2 "client-confidential-
asymmetric"):

1. The client signs a JWT with its private key (RS384 or ES384; ``kid`` names a key of the JWKS
   registered with ``flask fhir register-client``): ``iss`` = ``sub`` = its client id, ``aud``
   = our token URL, ``exp`` at most five minutes ahead, a fresh ``jti``.
2. ``POST /fhir/auth/token`` (form: ``grant_type=client_credentials``, ``scope``,
   ``client_assertion_type``, ``client_assertion``) checks the signature with PyJWT, the claims
   against the application clock (tests move it), and stores the ``jti`` until the assertion
   expires: a replay is refused by a unique constraint, whatever the timing.
3. The answer is a short-lived access token (``FHIR_ACCESS_TOKEN_TTL_SECONDS``, 300 s at most),
   HS256 under ``SECRET_KEY`` with an audience of its own (a staff token is not a system token
   and the reverse). Each request re-reads the client: disabling it ends its tokens at once.

Scopes: ``system/*.read`` (or SMART v2's ``system/*.rs``) and nothing wider; what a token may
read is the client's registration (``care`` of its site, identified; or ``research`` of its
site, pseudonymised, consented patients only), never the request.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
import sqlalchemy as sa
from flask import current_app, g, request

from backend.audit.services import record
from backend.auth.principal import Principal
from backend.errors import Problem
from backend.extensions import db
from backend.fhir.errors import FhirError
from backend.fhir.models import FhirAssertion, FhirClient

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ALGORITHMS = ("RS384", "ES384")
ALG_KTY = {"RS384": "RSA", "ES384": "EC"}
SCOPES = ("system/*.read", "system/*.rs")
TOKEN_AUDIENCE = "ir-followup-fhir"  # noqa: S105 (an audience, not a secret)
MAX_ASSERTION_LIFETIME = timedelta(minutes=5)
CLOCK_SKEW = timedelta(seconds=60)


class OAuthError(Exception):
    """An RFC 6749 error answer of the token endpoint ({"error", "error_description"})."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error, self.description, self.status = error, description, status


@dataclass(frozen=True)
class Reader:
    """The caller of a FHIR request."""

    kind: str  # staff | system
    access: str  # care | research
    site_id: uuid.UUID
    actor_id: uuid.UUID
    principal: Principal | None = None
    client: FhirClient | None = None

    @property
    def client_id(self) -> str | None:
        return self.client.client_id if self.client is not None else None

    def audit(
        self,
        action: str,
        *,
        now: datetime,
        resource_type: str | None = None,
        resource_id: uuid.UUID | str | None = None,
        patient_id: uuid.UUID | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        """An audit row as a staff read would write, signed by the staff member or the client."""
        extra = {"via": "fhir", **(details or {})}
        if self.kind == "staff":
            record(
                action,
                now=now,
                actor=self.principal,
                resource_type=resource_type,
                resource_id=resource_id,
                patient_id=patient_id,
                details=extra,
            )
        else:
            extra["client_id"] = self.client_id
            extra["access"] = self.access
            record(
                action,
                now=now,
                actor=None,
                actor_type="system",
                actor_id=self.actor_id,
                site_id=self.site_id,
                resource_type=resource_type,
                resource_id=resource_id,
                patient_id=patient_id,
                details=extra,
            )


# --- the token endpoint --------------------------------------------------------------------------


def _select_key(client: FhirClient, kid: str | None, alg: str) -> Any:
    keys = client.jwks.get("keys", []) if isinstance(client.jwks, dict) else []
    for jwk in keys:
        if kid is not None and jwk.get("kid") != kid:
            continue
        if jwk.get("kty") != ALG_KTY[alg] or jwk.get("alg", alg) != alg:
            continue
        try:
            return jwt.PyJWK(jwk, algorithm=alg).key
        except jwt.PyJWTError:
            continue
    raise OAuthError("invalid_client", "No registered key matches the assertion.", 401)


def verify_assertion(assertion: str, token_url: str, now: datetime) -> FhirClient:
    """The client whose valid, fresh, unreplayed assertion this is; OAuthError otherwise."""
    try:
        header = jwt.get_unverified_header(assertion)
        unverified = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise OAuthError("invalid_client", "The client assertion is not a JWT.", 401) from exc
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        raise OAuthError("invalid_client", "The assertion must be signed RS384 or ES384.", 401)
    client_id = unverified.get("iss")
    client = (
        db.session.execute(db.select(FhirClient).filter_by(client_id=str(client_id)))
        .scalars()
        .first()
        if isinstance(client_id, str)
        else None
    )
    if client is None or client.disabled_at is not None:
        raise OAuthError("invalid_client", "Unknown or disabled client.", 401)
    key = _select_key(client, header.get("kid"), alg)
    try:
        claims = jwt.decode(
            assertion,
            key,
            algorithms=[alg],
            audience=token_url,
            issuer=client.client_id,
            options={
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
                "require": ["iss", "sub", "aud", "exp", "jti"],
            },
        )
    except jwt.PyJWTError as exc:
        raise OAuthError("invalid_client", f"The client assertion is invalid: {exc}.", 401) from exc
    if claims["sub"] != client.client_id:
        raise OAuthError("invalid_client", "The assertion's sub must be the client id.", 401)
    expires = datetime.fromtimestamp(int(claims["exp"]), tz=now.tzinfo)
    if expires <= now - CLOCK_SKEW:
        raise OAuthError("invalid_client", "The client assertion has expired.", 401)
    if expires > now + MAX_ASSERTION_LIFETIME + CLOCK_SKEW:
        raise OAuthError("invalid_client", "The assertion must expire within 5 minutes.", 401)
    jti = str(claims["jti"])[:255]
    try:
        with db.session.begin_nested():
            db.session.add(FhirAssertion(client_id=client.id, jti=jti, expires_at=expires))
    except sa.exc.IntegrityError as exc:
        raise OAuthError("invalid_client", "This assertion was already used (jti).", 401) from exc
    return client  # type: ignore[no-any-return]


def granted_scopes(requested: str) -> list[str]:
    asked = [s for s in requested.split() if s]
    granted = [s for s in asked if s in SCOPES]
    if not granted:
        raise OAuthError("invalid_scope", f"Scopes offered: {' '.join(SCOPES)}.")
    return granted


def issue_token(form: Any, token_url: str, now: datetime) -> dict[str, Any]:
    """Steps 1-3 of the module docstring: the token response, or OAuthError."""
    if form.get("grant_type") != "client_credentials":
        raise OAuthError("unsupported_grant_type", "grant_type must be client_credentials.")
    if form.get("client_assertion_type") != ASSERTION_TYPE or not form.get("client_assertion"):
        raise OAuthError("invalid_request", f"client_assertion_type must be {ASSERTION_TYPE}.")
    scopes = granted_scopes(form.get("scope") or "")
    client = verify_assertion(form["client_assertion"], token_url, now)
    ttl = int(current_app.config["FHIR_ACCESS_TOKEN_TTL_SECONDS"])
    claims = {
        "sub": str(client.id),
        "aud": TOKEN_AUDIENCE,
        "scope": " ".join(scopes),
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=ttl)).timestamp()),
        "jti": uuid.uuid4().hex,
    }
    token = jwt.encode(claims, current_app.config["SECRET_KEY"], algorithm="HS256")
    record(
        "fhir.token.issued",
        now=now,
        actor=None,
        actor_type="system",
        actor_id=client.id,
        site_id=client.site_id,
        resource_type="fhir_client",
        resource_id=client.id,
        details={"client_id": client.client_id, "scope": claims["scope"]},
    )
    return {
        "access_token": token,
        "token_type": "bearer",
        "expires_in": ttl,
        "scope": claims["scope"],
    }


def purge_assertions(now: datetime) -> int:
    """Forget the jti of assertions that have expired (they cannot be replayed any more)."""
    result = db.session.execute(
        sa.delete(FhirAssertion).where(FhirAssertion.expires_at < now - CLOCK_SKEW)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# --- each request --------------------------------------------------------------------------------


def _system_reader(token: str, now: datetime) -> Reader | None:
    """The reader of a system token; None when the token is not one of ours for FHIR."""
    try:
        claims = jwt.decode(
            token,
            current_app.config["SECRET_KEY"],
            algorithms=["HS256"],
            audience=TOKEN_AUDIENCE,
            options={"verify_exp": False, "verify_iat": False, "require": ["sub", "exp"]},
        )
    except jwt.InvalidAudienceError:
        return None
    except jwt.PyJWTError as exc:
        raise FhirError(401, "The access token is invalid.", headers=_challenge()) from exc
    if int(claims["exp"]) <= now.timestamp():
        raise FhirError(401, "The access token has expired.", headers=_challenge())
    try:
        client = db.session.get(FhirClient, uuid.UUID(str(claims["sub"])))
    except ValueError:
        client = None
    if client is None or client.disabled_at is not None:
        raise FhirError(401, "The client is disabled.", headers=_challenge())
    return Reader("system", client.access, client.site_id, client.id, client=client)


def _challenge() -> dict[str, str]:
    return {"WWW-Authenticate": 'Bearer realm="fhir"'}


def authenticate(now: datetime) -> Reader:
    """The reader of this request: a system token, else a staff token (care of their site);
    401 without a valid token, 403 for a patient's phone."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise FhirError(401, "An access token is required.", headers=_challenge())
    reader = _system_reader(token.strip(), now)
    if reader is not None:
        g.fhir_reader = reader
        return reader
    from backend.auth.guards import authenticate_request

    try:
        principal = authenticate_request()
    except Problem as problem:
        raise FhirError(
            problem.status, problem.detail or problem.title, headers=_challenge()
        ) from None
    if not principal.is_staff:
        raise FhirError(403, "FHIR is for staff and registered systems.")
    reader = Reader("staff", "care", principal.site_id, principal.id, principal=principal)
    g.fhir_reader = reader
    return reader
