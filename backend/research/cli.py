"""``flask research export --out DIR --site CODE`` and ``flask research study ...``."""

from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from backend.audit.services import record
from backend.auth.models import Site
from backend.clock import utcnow
from backend.errors import Problem
from backend.extensions import db

research_cli = AppGroup("research", help="Research: pseudonymised export, randomised studies.")


def _site(code: str) -> Site:
    site: Site | None = db.session.execute(
        db.select(Site).filter_by(code=code)
    ).scalar_one_or_none()
    if site is None:
        raise click.ClickException(f"no site with code {code!r}")
    return site


@research_cli.command("export")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--site", "site_code", required=True, help="Site code, e.g. LYON")
def export_command(out: Path, site_code: str) -> None:
    """Write the site's pseudonymised export (the API's files) into OUT (audited)."""
    from backend.research import export

    try:
        key = export.require_key(current_app.config)
    except Problem as exc:
        raise click.ClickException(exc.detail or exc.title) from None
    if out.exists() and any(out.iterdir()):
        raise click.ClickException(f"{out} is not empty: choose a new directory")
    site = _site(site_code)
    now = utcnow()
    manifest = export.write_files(out, site.id, key, now=now, requested_by_role="command_line")
    record(
        "research.export.completed",
        now=now,
        actor=None,
        actor_type="system",
        site_id=site.id,
        resource_type="research_export",
        details={"via": "cli", "row_counts": manifest["row_counts"], "key_id": manifest["key_id"]},
    )
    db.session.commit()
    counts = ", ".join(f"{k}={v}" for k, v in manifest["row_counts"].items())
    click.echo(f"Export written to {out} (key id {manifest['key_id']}): {counts}")


@research_cli.group("study")
def study_cli() -> None:
    """Randomised studies."""


@study_cli.command("create")
@click.argument("key")
@click.option("--site", "site_code", required=True)
@click.option("--title", required=True)
@click.option("--arm", "arms", multiple=True, required=True, help="Repeat: --arm cement ...")
@click.option(
    "--stratum",
    "strata",
    multiple=True,
    help="Factor and values, e.g. etiology=osteoporotic,neoplastic (repeat per factor)",
)
@click.option("--block-sizes", default="2,4", show_default=True)
@click.option("--list-length", default=400, show_default=True)
def study_create_command(
    key: str,
    site_code: str,
    title: str,
    arms: tuple[str, ...],
    strata: tuple[str, ...],
    block_sizes: str,
    list_length: int,
) -> None:
    """Create a study and its concealed allocation lists (the seed is drawn and not kept)."""
    from backend.research.randomisation import create_study

    factors: dict[str, list[str]] = {}
    for text in strata:
        name, _, values = text.partition("=")
        factors[name.strip()] = [v.strip() for v in values.split(",") if v.strip()]
    try:
        sizes = [int(b) for b in block_sizes.split(",")]
        study = create_study(
            site_id=_site(site_code).id,
            key=key,
            title=title,
            arms=list(arms),
            strata=factors,
            block_sizes=sizes,
            list_length=list_length,
            now=utcnow(),
        )
    except (ValueError, Problem) as exc:
        detail = getattr(exc, "errors", None) or getattr(exc, "detail", None) or str(exc)
        raise click.ClickException(str(detail)) from None
    db.session.commit()
    click.echo(f"Study {key} created (id {study.id}, seed SHA-256 {study.seed_sha256}).")
