"""``flask rules simulate``: compare rule versions on one synthetic cohort (docs/simulation.md)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click
from flask.cli import AppGroup

from backend.alerts.rules import RULESETS, RuleSet, load_ruleset
from backend.alerts.simulation import (
    CANDIDATE_PROTOCOL_DIR,
    as_json,
    format_table,
    parameters_with,
    protocols_from,
    simulate,
)

rules_cli = AppGroup("rules", help="Alert rule versions: simulate them before they alert anyone.")


def _ruleset(text: str) -> RuleSet:
    if text.isdigit() and int(text) in RULESETS:
        return RULESETS[int(text)]
    path = Path(text)
    if path.suffix == ".json" and path.is_file():
        return load_ruleset(json.loads(path.read_text(encoding="utf-8")))
    raise click.BadParameter(f"{text!r}: expected one of {sorted(RULESETS)} or a rule set file")


@rules_cli.command("simulate")
@click.option("--seed", default=20261201, show_default=True, help="Same seed, same cohort.")
@click.option("--patients", default=2000, show_default=True, type=click.IntRange(1))
@click.option(
    "--rules",
    "versions",
    multiple=True,
    default=("1", "2", "2:candidates"),
    show_default=True,
    help="A version (1, 2) or a rule set JSON file, optionally ':candidates' (the candidate "
    "protocols of backend/questionnaires/data/candidates) or ':PATH' (a folder of protocol "
    "files). Repeat to compare.",
)
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="Override a cohort parameter (docs/simulation.md lists them). Repeatable.",
)
@click.option("--json", "as_json_output", is_flag=True, help="JSON instead of a Markdown table.")
def simulate_command(
    seed: int,
    patients: int,
    versions: tuple[str, ...],
    params: tuple[str, ...],
    as_json_output: bool,
) -> None:
    """Run one synthetic cohort through the real rules engine for each version."""
    overrides: dict[str, str] = {}
    for item in params:
        name, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"{item!r}: expected NAME=VALUE", param_hint="--param")
        overrides[name.strip()] = value.strip()
    try:
        parameters = parameters_with(overrides)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--param") from None
    rulesets: dict[str, RuleSet] = {}
    protocols = {}
    for text in versions:
        rules_text, _, protocol_text = text.partition(":")
        rules = _ruleset(rules_text)
        name = str(rules.version) + (f":{protocol_text}" if protocol_text else "")
        rulesets[name] = rules
        if protocol_text:
            folder = (
                CANDIDATE_PROTOCOL_DIR if protocol_text == "candidates" else Path(protocol_text)
            )
            if not folder.is_dir():
                raise click.BadParameter(f"{protocol_text!r}: no such folder", param_hint="--rules")
            protocols[name] = protocols_from(folder)
    started = time.perf_counter()
    reports = simulate(
        rulesets, seed=seed, patients=patients, parameters=parameters, protocols=protocols
    )
    elapsed = time.perf_counter() - started
    if as_json_output:
        click.echo(
            json.dumps(
                {
                    "seed": seed,
                    "patients": patients,
                    "overrides": overrides,
                    "versions": as_json(reports),
                },
                indent=2,
            )
        )
        return
    shown = ", ".join(f"{k}={v}" for k, v in overrides.items()) or "defaults"
    click.echo(f"Simulation: seed {seed}, {patients} patients, parameters: {shown}")
    click.echo(format_table(reports))
    click.echo(f"({elapsed:.1f} s)")


@rules_cli.command("set-version")
@click.option("--site", "site_code", required=True, help="The site's code.")
@click.option("--active", type=int, required=True, help="The version that raises alerts.")
@click.option("--candidate", type=int, default=None, help="A shadow version (none: stop).")
@click.option("--reason", default=None, help="Why (kept in the history and the audit log).")
def set_version_command(
    site_code: str, active: int, candidate: int | None, reason: str | None
) -> None:
    """Switch a site's active rule version or its shadow candidate (history kept, audited)."""
    from backend.alerts.versions import set_versions
    from backend.auth.models import Site
    from backend.clock import utcnow
    from backend.errors import ValidationProblem
    from backend.extensions import db

    site = db.session.execute(db.select(Site).filter_by(code=site_code)).scalars().first()
    if site is None:
        raise click.BadParameter(f"{site_code!r}: no such site", param_hint="--site")
    try:
        set_versions(site.id, active, candidate, reason, utcnow())
    except ValidationProblem as problem:
        details = "; ".join(f"{e['pointer']}: {e['detail']}" for e in problem.errors or [])
        raise click.ClickException(details) from None
    db.session.commit()
    shadow = f", candidate {candidate} in shadow" if candidate else ", no candidate"
    click.echo(f"Site {site_code}: rule version {active} active{shadow}.")
