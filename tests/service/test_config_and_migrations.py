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
    ok = load_config(str(tmp_path), environ={"APP_ENV": "production", "SECRET_KEY": "k" * 40})
    assert ok["SECRET_KEY"] == "k" * 40


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

    event = record("test.event", now=T0, actor_type="system")
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
