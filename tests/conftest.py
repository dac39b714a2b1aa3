"""Test fixtures: every test runs on SQLite and on PostgreSQL, each in a rolled-back transaction.

- The schema is built by the migrations (``flask db upgrade``), not ``create_all``, once per
  database per run. PostgreSQL gets a schema of its own per run (``search_path``), so parallel runs
  on one server never see each other.
- ``app`` binds the session to one connection inside a transaction; the app's commits release
  savepoints, and the transaction is rolled back at the end of the test.
- ``committing_app`` is for tests that need real commits (threads, processes): its data is
  deleted afterwards.
- PostgreSQL unreachable: outside CI its tests are skipped with the reason; with ``CI=true`` the
  whole run fails, because CI must prove the PostgreSQL path.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import orm

from backend import create_app
from backend.clock import FrozenClock
from backend.extensions import db, limiter

PG_URL = os.environ.get("TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def _pg_reachable() -> str | None:
    """None when reachable, else why not."""
    try:
        dsn = sa.make_url(PG_URL).set(drivername="postgresql").render_as_string(False)
        with psycopg.connect(dsn, connect_timeout=3):
            return None
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}"


_PG_PROBLEM: str | None = None


def pytest_sessionstart(session: pytest.Session) -> None:
    global _PG_PROBLEM
    _PG_PROBLEM = _pg_reachable()
    if _PG_PROBLEM and IN_CI:
        pytest.exit(
            f"CI=true and PostgreSQL is unreachable at {PG_URL}: {_PG_PROBLEM}", returncode=1
        )


def pytest_report_header(config: pytest.Config) -> str:
    if _PG_PROBLEM:
        return (
            f"PostgreSQL: NOT reachable at {PG_URL} ({_PG_PROBLEM}); PostgreSQL tests are "
            "skipped. Start it with: pg_ctlcluster --skip-systemctl-redirect "
            "$(ls /etc/postgresql) main start"
        )
    return f"PostgreSQL: {PG_URL} (tests run on SQLite and PostgreSQL)"


def _base_config(url: str, clock: FrozenClock, **extra: Any) -> dict[str, Any]:
    return {
        "APP_ENV": "testing",
        "DATABASE_URL": url,
        "CLOCK": clock,
        "SECRET_KEY": "test-secret-key-which-is-long-enough-0123456789",
        **extra,
    }


def _migrate(url: str) -> None:
    from flask_migrate import upgrade

    app = create_app(_base_config(url, FrozenClock(T0)))
    with app.app_context():
        upgrade()
        db.engine.dispose()


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("db") / "test.sqlite3"
    sqlite3.connect(path).close()
    url = f"sqlite:///{path}"
    _migrate(url)
    return url


@pytest.fixture(scope="session")
def postgresql_url() -> Iterator[str]:
    if _PG_PROBLEM:
        pytest.skip(f"PostgreSQL unreachable at {PG_URL}: {_PG_PROBLEM}")
    schema = f"test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    url = sa.make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    rendered = url.render_as_string(hide_password=False)
    _migrate(rendered)
    yield rendered
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(f"{request.param}_url"))


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(T0)


@pytest.fixture
def app_config() -> dict[str, Any]:
    """Per-test overrides of the configuration (a test may change it before ``app``)."""
    return {}


@pytest.fixture
def app(database_url: str, clock: FrozenClock, app_config: dict[str, Any]) -> Iterator[Flask]:
    """The application, its session bound to a transaction rolled back after the test."""
    app = create_app(_base_config(database_url, clock, **app_config))
    with app.app_context():
        connection = db.engine.connect()
        outer = connection.begin()
        original = db.session
        factory = orm.sessionmaker(bind=connection, join_transaction_mode="create_savepoint")
        db.session = orm.scoped_session(factory, scopefunc=original.registry.scopefunc)
        limiter.reset()
        try:
            yield app
        finally:
            db.session.remove()
            db.session = original
            if outer.is_active:
                outer.rollback()
            connection.close()
            db.engine.dispose()


@pytest.fixture
def committing_app(
    database_url: str, clock: FrozenClock, app_config: dict[str, Any]
) -> Iterator[Flask]:
    """The application with real commits (threads, processes); its rows are deleted after."""
    app = create_app(_base_config(database_url, clock, **app_config))
    with app.app_context():
        limiter.reset()
        try:
            yield app
        finally:
            db.session.remove()
            _delete_everything()
            db.engine.dispose()


# Reference data written by the migrations (instrument and protocol versions) stays.
MIGRATION_DATA_TABLES = {"instruments", "protocols"}


def _delete_everything() -> None:
    with db.engine.begin() as conn:
        tables = [
            t for t in reversed(db.metadata.sorted_tables) if t.name not in MIGRATION_DATA_TABLES
        ]
        if conn.dialect.name == "postgresql":
            # The audit log refuses deletes (a trigger); the test superuser may switch triggers
            # off for this transaction, which the app's own role never can. DELETE, not
            # TRUNCATE: a test leaves a few rows, and TRUNCATE of every table costs about half a
            # second (new files for each table) against a few milliseconds.
            conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
        for table in tables:
            conn.execute(table.delete())


@pytest.fixture
def client(any_app: Flask) -> FlaskClient:
    return any_app.test_client()


@pytest.fixture
def runner(any_app: Flask) -> Any:
    return any_app.test_cli_runner()


# --- personas --------------------------------------------------------------------------------


@dataclass
class Staff:
    id: uuid.UUID
    email: str
    password: str
    role: str
    site_id: uuid.UUID
    site_code: str


def make_staff(
    email: str, role: str, site_code: str, password: str | None = None, now: datetime = T0
) -> Staff:
    from backend.auth.services import create_user, get_or_create_site

    password = password or f"long-enough-{role}-password-{site_code}"
    site = get_or_create_site(site_code, now=now, timezone="Europe/Paris")
    user = create_user(email, password, role, site, now=now)
    db.session.commit()
    return Staff(user.id, user.email, password, role, site.id, site.code)


@pytest.fixture
def any_app(request: pytest.FixtureRequest, database_url: str) -> Flask:
    """The application the test asked for: ``committing_app`` when it did, else ``app``
    (personas must not pull the rolled-back ``app`` into a committing test)."""
    name = "committing_app" if "committing_app" in request.fixturenames else "app"
    return request.getfixturevalue(name)  # type: ignore[no-any-return]


@pytest.fixture
def nurse_ada(any_app: Flask) -> Staff:
    """Nurse Ada, site Lyon."""
    return make_staff("ada@lyon.example", "nurse", "LYON")


@pytest.fixture
def physician_leon(any_app: Flask) -> Staff:
    """Dr Léon, physician, site Lyon."""
    return make_staff("leon@lyon.example", "physician", "LYON")


@pytest.fixture
def nurse_noe(any_app: Flask) -> Staff:
    """Nurse Noé, site Nantes: must never see Lyon's patients."""
    return make_staff("noe@nantes.example", "nurse", "NANTES")


def login(client: FlaskClient, staff: Staff) -> dict[str, Any]:
    response = client.post(
        "/api/v1/auth/login", json={"email": staff.email, "password": staff.password}
    )
    assert response.status_code == 200, response.get_json()
    return dict(response.get_json())


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def ada_headers(client: FlaskClient, nurse_ada: Staff) -> dict[str, str]:
    return bearer(login(client, nurse_ada)["access_token"])


@pytest.fixture
def noe_headers(client: FlaskClient, nurse_noe: Staff) -> dict[str, str]:
    return bearer(login(client, nurse_noe)["access_token"])


ROOT = Path(__file__).resolve().parent.parent
