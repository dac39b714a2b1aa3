"""PostgreSQL roles of a production database: the owner migrates, the app only uses.

The owner role owns the schema and every table; it runs ``flask db upgrade`` and nothing else.
The app role (gunicorn and the scheduler) reads and writes the tables but can only INSERT and
SELECT audit rows, cannot TRUNCATE anything, and, not being the owner, cannot ALTER a table (so it
cannot disable the append-only triggers either). ``flask db grant-app-role ROLE`` runs
``app_role_statements`` as the owner; ``--sql`` prints them for a DBA instead.
"""

from __future__ import annotations

import logging

import click
import sqlalchemy as sa
from flask.cli import with_appcontext

from backend.extensions import db

log = logging.getLogger(__name__)

# Written by the migrations; the app only reads them.
OWNER_ONLY_TABLES = ("alembic_version",)
APPEND_ONLY_TABLES = ("audit_events",)


def _ident(name: str) -> str:
    """Quote an identifier (role or schema) the way PostgreSQL does."""
    return '"' + name.replace('"', '""') + '"'


def app_role_statements(role: str, schema: str) -> list[str]:
    """The GRANTs that make ``role`` the app's role on ``schema`` (idempotent; run as owner)."""
    r, s = _ident(role), _ident(schema)
    statements = [
        f"GRANT USAGE ON SCHEMA {s} TO {r}",
        f"REVOKE CREATE ON SCHEMA {s} FROM {r}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {s} TO {r}",
        f"REVOKE TRUNCATE, REFERENCES, TRIGGER ON ALL TABLES IN SCHEMA {s} FROM {r}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {s} TO {r}",
        # Tables that later migrations create get the same rights (audit-like tables must be
        # added to APPEND_ONLY_TABLES and this command run again after the upgrade).
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {s} GRANT SELECT, INSERT, UPDATE, DELETE "
        f"ON TABLES TO {r}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {s} GRANT USAGE, SELECT ON SEQUENCES TO {r}",
    ]
    for table in APPEND_ONLY_TABLES:
        statements.append(f"REVOKE UPDATE, DELETE ON {s}.{_ident(table)} FROM {r}")
    for table in OWNER_ONLY_TABLES:
        statements.append(f"REVOKE INSERT, UPDATE, DELETE ON {s}.{_ident(table)} FROM {r}")
    return statements


@click.command("grant-app-role")
@click.argument("role")
@click.option("--sql", "print_only", is_flag=True, help="Print the statements, run nothing.")
@with_appcontext
def grant_app_role_command(role: str, print_only: bool) -> None:
    """Give ROLE the app's rights (run as the owner, after `flask db upgrade`)."""
    if db.engine.dialect.name != "postgresql":
        raise click.ClickException("database roles are a PostgreSQL matter (DATABASE_URL)")
    with db.engine.begin() as connection:
        schema = connection.execute(sa.text("SELECT current_schema()")).scalar_one()
        statements = app_role_statements(role, schema)
        if print_only:
            click.echo(";\n".join(statements) + ";")
            return
        for statement in statements:
            connection.exec_driver_sql(statement)
    click.echo(f"{role}: app rights on schema {schema} (audit_events: INSERT and SELECT only)")


def audit_rights_problems(connection: sa.Connection) -> list[str]:
    """What the connected role could do to the audit log that the app must not (PostgreSQL)."""
    row = connection.execute(
        sa.text(
            "SELECT pg_has_role(current_user, c.relowner, 'USAGE') AS owns, "
            "has_table_privilege(c.oid, 'UPDATE') AS can_update, "
            "has_table_privilege(c.oid, 'DELETE') AS can_delete, "
            "has_table_privilege(c.oid, 'TRUNCATE') AS can_truncate "
            "FROM pg_class c WHERE c.oid = to_regclass('audit_events')"
        )
    ).one_or_none()
    if row is None:
        return ["audit_events does not exist: run `flask db upgrade` as the owner role"]
    found = []
    if row.owns:
        found.append("owns audit_events (it could drop the append-only triggers)")
    found += [
        f"may {verb} audit_events"
        for verb, allowed in (
            ("UPDATE", row.can_update),
            ("DELETE", row.can_delete),
            ("TRUNCATE", row.can_truncate),
        )
        if allowed
    ]
    return found
