"""Migration 0020_reminders_next_due: the ladder's last rung rides on the row before it; the
downgrade (through 0021) writes it as the row the earlier code expects, and the upgrade after
that brings the schema back, 0021's partial index included (SQLite and PostgreSQL, each in a
database of its own)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from backend import create_app
from backend.clock import FrozenClock
from backend.db import UTCDateTime
from backend.extensions import db
from backend.schedule import services
from tests.conftest import T0, _base_config, make_staff
from tests.factories import make_patient, make_procedure
from tests.service.test_lifecycle_migration import empty_url  # noqa: F401 - the fixture

REMINDERS = sa.table(
    "reminders",
    sa.column("assignment_id", sa.Uuid()),
    sa.column("rung", sa.Integer()),
    sa.column("status", sa.String()),
    sa.column("due_at", UTCDateTime()),
)


def ladder(assignment_id: uuid.UUID) -> list[tuple[int, str, datetime]]:
    """The questionnaire's reminder rows, read without the model (its columns are the head's)."""
    with db.engine.connect() as conn:
        rows = conn.execute(
            sa.select(REMINDERS.c.rung, REMINDERS.c.status, REMINDERS.c.due_at)
            .where(REMINDERS.c.assignment_id == assignment_id)
            .order_by(REMINDERS.c.rung)
        ).all()
    return [(rung, status, due_at) for rung, status, due_at in rows]


def test_the_carried_last_rung_becomes_a_pending_row_on_downgrade(empty_url):  # noqa: F811
    app = create_app(_base_config(empty_url, FrozenClock(T0)))
    with app.app_context():
        upgrade()
        nurse = make_staff("ada@lyon.example", "nurse", "LYON")
        marcel = make_patient(nurse, contact_channels=["sms"])
        day_one = next(a for a in make_procedure(nurse, marcel).schedule if a.day == 1).id
        services.open_due_assignments(T0, limit=10)
        db.session.commit()
        db.session.remove()
        assert [(rung, status) for rung, status, _ in ladder(day_one)] == [
            (0, "enqueued"),
            (1, "pending"),
        ]

        downgrade(revision="0019_reminders_pending_patient")
        assert ladder(day_one) == [
            (0, "enqueued", T0),
            (1, "pending", T0 + timedelta(hours=24)),
            (2, "pending", T0 + timedelta(hours=48)),
        ]
        with db.engine.connect() as conn:
            assert "next_due_at" not in {
                c["name"] for c in sa.inspect(conn).get_columns("reminders")
            }

        upgrade()
        with db.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, db.metadata) == []
        db.engine.dispose()
