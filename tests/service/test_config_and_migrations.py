"""Configuration precedence and failures; migrations build the schema the models describe."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from backend.config import SETTINGS, ConfigError, load_config, markdown_table
from backend.extensions import db


def test_defaults_then_environment_then_overrides(tmp_path):
    env = {"APP_ENV": "development", "REMINDER_LOCAL_TIME": "09:30", "QUIET_HOURS": "22:00-07:00"}
    config = load_config(str(tmp_path), {"REMINDER_LOCAL_TIME": "11:15"}, environ=env)
    assert str(config["REMINDER_LOCAL_TIME"]) == "11:15:00"  # override beats environment
    assert [str(t) for t in config["QUIET_HOURS"]] == ["22:00:00", "07:00:00"]  # environment
    assert config["ACCESS_TOKEN_TTL_SECONDS"] == 900  # default
    assert (
        config["DATABASE_URL"].startswith("sqlite:///") and str(tmp_path) in config["DATABASE_URL"]
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("REMINDER_LOCAL_TIME", "25:00"),
        ("QUIET_HOURS", "21:00"),
        ("ACCESS_TOKEN_TTL_SECONDS", "ten"),
        ("APP_ENV", "staging"),
        ("DEFAULT_TIMEZONE", "Mars/Olympus"),
        ("SQL_ECHO", "perhaps"),
    ],
)
def test_a_malformed_value_stops_start_up_naming_the_variable(tmp_path, name, value):
    with pytest.raises(ConfigError, match=name):
        load_config(str(tmp_path), environ={"APP_ENV": "development", name: value})


def test_secret_key_is_required_in_production(tmp_path):
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        load_config(str(tmp_path), environ={"APP_ENV": "production"})
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        load_config(str(tmp_path), environ={"APP_ENV": "production", "SECRET_KEY": "short"})
    ok = load_config(
        str(tmp_path),
        environ={"APP_ENV": "production", "SECRET_KEY": "k" * 40, "REDIS_URL": "redis://r:6379/0"},
    )
    assert ok["SECRET_KEY"] == "k" * 40


def test_production_refuses_to_start_without_shared_rate_limit_storage(tmp_path):
    with pytest.raises(ConfigError, match="REDIS_URL is required in production"):
        load_config(str(tmp_path), environ={"APP_ENV": "production", "SECRET_KEY": "k" * 40})
    development = load_config(str(tmp_path), environ={"APP_ENV": "development"})
    assert development["REDIS_URL"] is None  # in-process counting is fine on one's own machine


PRODUCTION = {
    "APP_ENV": "production",
    "SECRET_KEY": "p" * 48,
    "REDIS_URL": "redis://127.0.0.1:6379/15",
}


def test_production_start_up_names_what_it_finds_wrong(sqlite_url, caplog):
    import logging

    from backend import create_app
    from backend.service.checks import check_production

    caplog.set_level(logging.WARNING, logger="backend.service.checks")
    app = create_app(
        {**PRODUCTION, "DATABASE_URL": sqlite_url, "REDIS_URL": "redis://127.0.0.1:1/0"}
    )
    found = check_production(app)
    assert any(p.startswith("REDIS_URL does not answer") for p in found)
    assert any("not PostgreSQL" in p for p in found)
    assert any(p.startswith("TRUSTED_PROXIES=0") for p in found)
    assert "start-up check: REDIS_URL does not answer" in caplog.text


def test_production_start_up_on_postgresql_warns_when_the_app_owns_the_audit_log(app):
    from backend.service.checks import _check_database

    if db.engine.dialect.name != "postgresql":
        pytest.skip("roles are PostgreSQL's")
    (problem,) = [p for p in _check_database() if "owns audit_events" in p]
    assert "flask db grant-app-role" in problem


def test_production_sends_hsts_and_testing_does_not(sqlite_url, client):
    from backend import create_app

    app = create_app({**PRODUCTION, "DATABASE_URL": sqlite_url, "TRUSTED_PROXIES": 1})
    response = app.test_client().get("/api/v1/health")
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert app.test_client().get("/login").headers["Strict-Transport-Security"]
    assert "Strict-Transport-Security" not in client.get("/api/v1/health").headers


def test_access_tokens_may_not_live_longer_than_15_minutes(tmp_path):
    with pytest.raises(ConfigError, match="ACCESS_TOKEN_TTL_SECONDS"):
        load_config(
            str(tmp_path), environ={"APP_ENV": "testing", "ACCESS_TOKEN_TTL_SECONDS": "3600"}
        )


def test_the_secret_key_is_not_echoed_in_errors(tmp_path):
    from backend.config import Setting  # noqa: F401 - the table marks it secret

    with pytest.raises(ConfigError) as info:
        load_config(str(tmp_path), environ={"APP_ENV": "production", "SECRET_KEY": "tiny"})
    assert "tiny" not in str(info.value)


def test_the_readme_configuration_table_is_the_generated_one():
    from tests.conftest import ROOT

    readme = (ROOT / "README.md").read_text()
    assert markdown_table() in readme, "run `flask --app wsgi config-table` and paste it"
    assert all(f"`{s.name}`" in readme for s in SETTINGS)


def test_migrations_and_models_agree(app):
    """The migrated schema is the models' schema: autogenerate finds nothing to add."""
    context = MigrationContext.configure(db.session.connection(), opts={"compare_type": True})
    diff = compare_metadata(context, db.metadata)
    assert diff == []


def test_the_audit_log_refuses_updates_and_deletes_in_the_database(app):
    from backend.audit.services import record
    from tests.conftest import T0

    event = record("test.event", now=T0, actor=None, actor_type="system")
    db.session.commit()
    if db.engine.dialect.name == "postgresql":
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            db.session.execute(
                sa.text("UPDATE audit_events SET action='x' WHERE id=:id"), {"id": event.id}
            )
        db.session.rollback()
    event = db.session.get(type(event), event.id)
    event.action = "tampered"
    with pytest.raises(RuntimeError, match="append-only"):
        db.session.flush()
