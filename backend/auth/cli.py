"""``flask users create``."""

from __future__ import annotations

import sys

import click
from flask.cli import AppGroup

from backend.auth.models import ROLES
from backend.auth.services import create_user, get_or_create_site
from backend.clock import utcnow
from backend.errors import Problem
from backend.extensions import db
from backend.locales import LOCALES

users_cli = AppGroup("users", help="Manage staff accounts.")


def read_password() -> str:
    """From a hidden prompt with confirmation on a terminal, else the first line of stdin."""
    if sys.stdin.isatty():
        return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))
    return sys.stdin.readline().rstrip("\r\n")


@users_cli.command("create")
@click.argument("email")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--site", "site_code", required=True, help="Site code; created if new.")
@click.option("--name", "full_name", default="", help="Full name shown to colleagues.")
@click.option(
    "--locale",
    type=click.Choice(LOCALES),
    default=None,
    help="Language of the API's texts for this person (default: the request's, else the site's).",
)
def create_command(
    email: str, role: str, site_code: str, full_name: str, locale: str | None
) -> None:
    """Create a staff account (password from a prompt, or standard input)."""
    password = read_password()
    now = utcnow()
    try:
        site = get_or_create_site(site_code, now=now)
        user = create_user(email, password, role, site, now=now, full_name=full_name, locale=locale)
    except Problem as problem:
        db.session.rollback()
        reasons = "; ".join(
            f"{e.get('pointer', '').lstrip('/')}: {e['detail']}" for e in (problem.errors or [])
        )
        raise click.ClickException(reasons or str(problem.detail)) from problem
    db.session.commit()
    click.echo(f"Created {user.role} {user.email} at site {site.code}.")
