"""``flask scheduler run`` (until SIGTERM) and ``flask scheduler run-once`` (one pass, exit)."""

from __future__ import annotations

import logging

import click
from flask import current_app
from flask.cli import AppGroup

from backend.config import ConfigError
from backend.notify.channels import Channels, get_channels
from backend.schedule.worker import run_forever, run_pass

scheduler_cli = AppGroup("scheduler", help="Questionnaires, reminders and notification delivery.")
log = logging.getLogger(__name__)


@scheduler_cli.command("run")
def run_command() -> None:
    """Run a pass over the due work every SCHEDULER_INTERVAL_SECONDS until SIGTERM."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    channels = _channels()
    log.info("scheduler channels", extra={"channels": channels.describe()})
    run_forever(app, float(app.config["SCHEDULER_INTERVAL_SECONDS"]))


@scheduler_cli.command("run-once")
def run_once_command() -> None:
    """Do everything due at the current time once (questionnaires, reminders, escalations,
    pending notifications), then exit."""
    _channels()
    totals = run_pass()
    click.echo(" ".join(f"{name}={count}" for name, count in totals.items()))


def _channels() -> Channels:
    """The channels, built now: a broken configuration stops here, before any work is claimed."""
    try:
        return get_channels()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
