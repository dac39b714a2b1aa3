"""Reminders: the rungs of a questionnaire's reminder ladder, each a row with its due time."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from backend.db import UUIDPrimaryKey
from backend.extensions import db

# pending: waiting for due_at; enqueued: a notification was written to the outbox;
# skipped: not needed (answered, patient not active, no channel); expired: too late to be useful
# (window closed, or superseded by a later rung after a scheduler outage).
REMINDER_STATUSES = ("pending", "enqueued", "skipped", "expired")


class Reminder(UUIDPrimaryKey, db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "reminders"
    __table_args__ = (
        sa.UniqueConstraint("assignment_id", "rung"),
        sa.CheckConstraint(
            "status IN ('pending', 'enqueued', 'skipped', 'expired')", name="status_known"
        ),
        # The claim order, of the reminders it can take.
        sa.Index(
            "ix_reminders_pending_due",
            "due_at",
            "id",
            postgresql_where=sa.text("status = 'pending'"),
            sqlite_where=sa.text("status = 'pending'"),
        ),
        # An ended follow-up skips the patient's pending reminders (``on_follow_up_stopped``):
        # the only reader by patient. Partial, so the rung enqueued as its questionnaire opens
        # and every rung once settled write no entry (migration 0019).
        sa.Index(
            "ix_reminders_pending_patient",
            "patient_id",
            postgresql_where=sa.text("status = 'pending'"),
            sqlite_where=sa.text("status = 'pending'"),
        ),
    )

    assignment_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("assignments.id"))
    patient_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("patients.id"))
    rung: Mapped[int]  # 0 when the questionnaire opens, 1 a day later, 2 two days later
    due_at: Mapped[datetime]
    # The planned due time of the ladder's next rung, whose row is not written yet: it is
    # written (pending, due then) when this one is settled by the reminder job, unless the
    # questionnaire no longer wants reminders (answered, closed, cancelled). None: no later
    # rung inside the window, or its row already exists. See ``services.open_due_assignments``.
    next_due_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(sa.String(16), default="pending")
    reason: Mapped[str | None] = mapped_column(sa.String(64))
    notification_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("notifications.id"))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
