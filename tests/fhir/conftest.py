"""FHIR personas: the Lyon hospital's record system (care) and research warehouse (research),
each a registered system client holding its private key, signing real RFC 7523 assertions."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from backend.clock import utcnow

TOKEN_URL = "http://localhost/fhir/auth/token"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
FHIR = "/fhir/R4"
# Generated once per run: key generation is the slow part of signing.
EC_KEY = ec.generate_private_key(ec.SECP384R1())
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_jwk(private_key: Any, kid: str) -> dict[str, Any]:
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(private_key.public_key()))
        jwk["alg"] = "ES384"
    else:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private_key.public_key()))
        jwk["alg"] = "RS384"
    jwk["kid"] = kid
    return dict(jwk)


@dataclass
class System:
    client_id: str
    private_key: Any
    kid: str
    alg: str

    def assertion(self, now: datetime | None = None, **overrides: Any) -> str:
        now = now or utcnow()
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": TOKEN_URL,
            "exp": int((now + timedelta(minutes=4)).timestamp()),
            "jti": uuid.uuid4().hex,
            **overrides,
        }
        return jwt.encode(claims, self.private_key, algorithm=self.alg, headers={"kid": self.kid})

    def token_request(
        self, client: Any, assertion: str | None = None, scope: str = "system/*.read"
    ):
        return client.post(
            "/fhir/auth/token",
            data={
                "grant_type": "client_credentials",
                "scope": scope,
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": assertion or self.assertion(),
            },
        )

    def headers(self, client: Any) -> dict[str, str]:
        response = self.token_request(client)
        assert response.status_code == 200, response.get_json()
        return {"Authorization": f"Bearer {response.get_json()['access_token']}"}


def register(runner: Any, tmp_path: Any, *, name: str, site: str, access: str, key: Any) -> System:
    kid = f"{name}-key"
    path = tmp_path / f"{name}.jwks.json"
    path.write_text(json.dumps({"keys": [public_jwk(key, kid)]}))
    result = runner.invoke(
        args=["fhir", "register-client", "--name", name, "--site", site, "--access", access,
              "--jwks", str(path), "--client-id", name]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    alg = "ES384" if isinstance(key, ec.EllipticCurvePrivateKey) else "RS384"
    return System(name, key, kid, alg)


@pytest.fixture
def ehr_lyon(runner, tmp_path, nurse_ada) -> System:
    """Lyon's patient record system: care scope, ES384."""
    return register(runner, tmp_path, name="ehr-lyon", site="LYON", access="care", key=EC_KEY)


@pytest.fixture
def warehouse_lyon(runner, tmp_path, nurse_ada) -> System:
    """Lyon's research warehouse: research scope, RS384."""
    return register(
        runner, tmp_path, name="warehouse-lyon", site="LYON", access="research", key=RSA_KEY
    )
