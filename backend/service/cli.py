"""``flask config-table``: the README's configuration table, generated from the settings."""

from __future__ import annotations

import click

from backend.config import markdown_table


@click.command("config-table")
def config_table_command() -> None:
    """Print the configuration table (Markdown) for the README."""
    click.echo(markdown_table())
