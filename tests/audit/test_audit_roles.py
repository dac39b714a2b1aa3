"""The audit log cannot be emptied or edited by the app (PostgreSQL: triggers and roles)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
import sqlalchemy as sa
from flask import Flask

from backend.audit.services import record
from backend.extensions import db
from backend.service.roles import app_role_statements, audit_rights_problems
from tests.conftest import T0


@pytest.fixture
def postgresql_app(app: Flask) -> Flask:
    if db.engine.dialect.name != "postgresql":
        pytest.skip("triggers and roles are PostgreSQL's")
    return app


def test_truncate_of_the_audit_log_is_refused_even_for_its_owner(postgresql_app):
    record("test.event", now=T0, actor=None, actor_type="system")
    db.session.commit()
    with pytest.raises(sa.exc.DBAPIError, match="append-only"):
        db.session.execute(sa.text("TRUNCATE audit_events"))
    db.session.rollback()
    assert db.session.execute(sa.text("SELECT count(*) FROM audit_events")).scalar_one() >= 1


def test_delete_of_audit_rows_is_refused_even_for_their_owner(postgresql_app):
    record("test.event", now=T0, actor=None, actor_type="system")
    db.session.commit()
    with pytest.raises(sa.exc.DBAPIError, match="append-only"):
        db.session.execute(sa.text("DELETE FROM audit_events"))
    db.session.rollback()


def _pg_dsn(url: str, role: str | None = None) -> str:
    parsed = sa.make_url(url).set(drivername="postgresql")
    if role:
        parsed = parsed.set(username=role)
    return parsed.render_as_string(hide_password=False)


@pytest.fixture
def app_role(committing_app: Flask, database_url: str) -> Iterator[str]:
    """A temporary login role given the app's rights by `flask db grant-app-role`."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("roles are PostgreSQL's")
    role = f"irf_app_{uuid.uuid4().hex[:8]}"
    with db.engine.begin() as conn:
        conn.exec_driver_sql(f'CREATE ROLE "{role}" LOGIN')
    try:
        result = committing_app.test_cli_runner().invoke(args=["db", "grant-app-role", role])
        assert result.exit_code == 0, result.output
        yield role
    finally:
        with db.engine.begin() as conn:
            # Also revokes every privilege and default privilege given to it in this database.
            conn.exec_driver_sql(f'DROP OWNED BY "{role}"')
            conn.exec_driver_sql(f'DROP ROLE "{role}"')


def test_the_app_role_inserts_and_reads_audit_rows_but_cannot_change_erase_or_unprotect_them(
    committing_app, database_url, app_role
):
    with psycopg.connect(_pg_dsn(database_url, app_role), autocommit=True) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (app_role,)
        conn.execute(
            "INSERT INTO audit_events (id, occurred_at, actor_type, action, outcome, details) "
            "VALUES (%s, now(), 'system', 'test.by_app_role', 'success', '{}')",
            (uuid.uuid4(),),
        )
        assert conn.execute(
            "SELECT count(*) FROM audit_events WHERE action = 'test.by_app_role'"
        ).fetchone() == (1,)
        refused = {
            "UPDATE audit_events SET action = 'tampered'": "permission denied",
            "DELETE FROM audit_events": "permission denied",
            "TRUNCATE audit_events": "permission denied",
            "ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only": "must be owner",
            "ALTER TABLE audit_events DISABLE TRIGGER ALL": "must be owner",
            "DROP TRIGGER audit_events_no_truncate ON audit_events": "must be owner",
            "SET session_replication_role = replica": "permission denied",
        }
        for statement, reason in refused.items():
            with pytest.raises(psycopg.Error, match=reason):
                conn.execute(statement)
        # Normal rights elsewhere: the app writes its other tables.
        conn.execute(
            "INSERT INTO sites (id, code, name, timezone, locale, created_at) "
            "VALUES (%s, 'ROLES', 'Roles', 'Europe/Paris', 'fr', now())",
            (uuid.uuid4(),),
        )
        conn.execute("UPDATE sites SET name = 'Renamed' WHERE code = 'ROLES'")
        conn.execute("DELETE FROM sites WHERE code = 'ROLES'")
        assert audit_rights_problems_of(conn) == []
    with db.engine.connect() as owner:
        assert "owns audit_events (it could drop the append-only triggers)" in (
            audit_rights_problems(owner)
        )


def audit_rights_problems_of(conn: psycopg.Connection) -> list[str]:
    engine = sa.create_engine(
        "postgresql+psycopg://", creator=lambda: conn, poolclass=sa.pool.StaticPool
    )
    with engine.connect() as connection:
        return audit_rights_problems(connection)


def test_the_grant_sql_can_be_printed_for_a_dba(committing_app, database_url):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("roles are PostgreSQL's")
    result = committing_app.test_cli_runner().invoke(
        args=["db", "grant-app-role", "irfollowup_app", "--sql"]
    )
    assert result.exit_code == 0, result.output
    assert 'REVOKE UPDATE, DELETE ON "' in result.output
    assert result.output.count(";") == len(app_role_statements("irfollowup_app", "s"))
