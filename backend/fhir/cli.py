"""``flask fhir register-client``, ``list-clients``, ``disable-client``: the systems that may
read FHIR (SMART Backend Services), registered by an administrator with their public keys."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import click
import jwt
from flask.cli import AppGroup

from backend.audit.services import record
from backend.auth.models import Site
from backend.clock import utcnow
from backend.extensions import db
from backend.fhir.auth import ALG_KTY
from backend.fhir.models import ACCESS_KINDS, FhirClient

fhir_cli = AppGroup("fhir", help="FHIR: the systems that read it (SMART Backend Services).")
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "k"}


def parse_jwks(text: str) -> dict[str, Any]:
    """A JWKS (or one JWK) of public RSA or EC keys for RS384/ES384, each with a ``kid``."""
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise click.ClickException("the key file is not JSON (a JWK or a JWKS)") from exc
    keys = document.get("keys") if isinstance(document, dict) and "keys" in document else [document]
    if not isinstance(keys, list) or not keys:
        raise click.ClickException("the JWKS has no keys")
    for jwk in keys:
        if not isinstance(jwk, dict):
            raise click.ClickException("every key must be a JSON object")
        if PRIVATE_MEMBERS & set(jwk):
            raise click.ClickException("this is a private key: register the public key only")
        if not jwk.get("kid"):
            raise click.ClickException("every key needs a kid (the assertion names it)")
        alg = jwk.get("alg") or {"RSA": "RS384", "EC": "ES384"}.get(jwk.get("kty", ""))
        if alg not in ALG_KTY or ALG_KTY[alg] != jwk.get("kty"):
            raise click.ClickException("keys must be RSA (RS384) or EC P-384 (ES384)")
        try:
            jwt.PyJWK(jwk, algorithm=alg)
        except jwt.PyJWTError as exc:
            raise click.ClickException(f"key {jwk['kid']}: {exc}") from exc
    return {"keys": keys}


@fhir_cli.command("register-client")
@click.option("--name", required=True, help="Who the system is, e.g. 'CHU Lyon EHR'")
@click.option("--site", "site_code", required=True, help="Site code, e.g. LYON")
@click.option(
    "--access",
    type=click.Choice(ACCESS_KINDS),
    required=True,
    help="care: identified, the site; research: pseudonymised, consented only",
)
@click.option("--jwks", "jwks_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              required=True, help="File with the client's public JWK or JWKS")  # fmt: skip
@click.option("--client-id", default=None, help="Default: a random id")
def register_client_command(
    name: str, site_code: str, access: str, jwks_file: Path, client_id: str | None
) -> None:
    """Register a system client with its public key(s); prints its client id."""
    site = db.session.execute(db.select(Site).filter_by(code=site_code)).scalar_one_or_none()
    if site is None:
        raise click.ClickException(f"no site with code {site_code!r}")
    jwks = parse_jwks(jwks_file.read_text())
    client_id = client_id or f"fhir-{secrets.token_hex(8)}"
    if db.session.execute(db.select(FhirClient).filter_by(client_id=client_id)).first():
        raise click.ClickException(f"client id {client_id!r} is taken")
    now = utcnow()
    client = FhirClient(
        client_id=client_id,
        name=name,
        access=access,
        site_id=site.id,
        jwks=jwks,
        created_at=now,
    )
    db.session.add(client)
    db.session.flush()
    record(
        "fhir.client.registered",
        now=now,
        actor=None,
        actor_type="system",
        site_id=site.id,
        resource_type="fhir_client",
        resource_id=client.id,
        details={"client_id": client_id, "access": access, "via": "command_line"},
    )
    db.session.commit()
    group = site.code + ("-research" if access == "research" else "")
    click.echo(f"client_id={client_id} access={access} site={site.code} group=Group/{group}")


@fhir_cli.command("list-clients")
def list_clients_command() -> None:
    """The registered system clients."""
    for client in db.session.execute(
        db.select(FhirClient).order_by(FhirClient.created_at)
    ).scalars():
        state = "disabled" if client.disabled_at else "active"
        click.echo(f"{client.client_id}\t{client.access}\t{state}\t{client.name}")


@fhir_cli.command("disable-client")
@click.argument("client_id")
def disable_client_command(client_id: str) -> None:
    """Disable a client: its tokens stop at their next request."""
    client = db.session.execute(db.select(FhirClient).filter_by(client_id=client_id)).scalar()
    if client is None:
        raise click.ClickException(f"no client {client_id!r}")
    now = utcnow()
    client.disabled_at = client.disabled_at or now
    record(
        "fhir.client.disabled",
        now=now,
        actor=None,
        actor_type="system",
        site_id=client.site_id,
        resource_type="fhir_client",
        resource_id=client.id,
        details={"client_id": client_id, "via": "command_line"},
    )
    db.session.commit()
    click.echo(f"{client_id} disabled")
