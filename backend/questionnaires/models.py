"""Instruments, follow-up protocols, planned questionnaires (assignments) and responses."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.auth.models import User
from backend.db import UUIDPrimaryKey
from backend.extensions import db

ASSIGNMENT_STATUSES = ("pending", "open", "completed", "missed", "cancelled")
ASSIGNMENT_REASONS = ("protocol", "confirmation")
SOURCES = ("patient", "caregiver", "nurse")
# The way an answer came in: the phone app, a reminder's link opened from an SMS or an e-mail,
# or a nurse typing it in during a phone call.
CHANNELS = ("app", "sms", "email", "phone")
LINK_CHANNELS = ("sms", "email")


class Instrument(UUIDPrimaryKey, db.Model):  # type: ignore[name-defined,misc]
    """A questionnaire definition, immutable once published: a change is a new version."""

    __tablename__ = "instruments"
    __table_args__ = (sa.UniqueConstraint("key", "version"),)

    key: Mapped[str] = mapped_column(sa.String(32))
    version: Mapped[int]
    definition: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]


class Protocol(UUIDPrimaryKey, db.Model):  # type: ignore[name-defined,misc]
    """A follow-up schedule (days, instrument, window) for some procedure kinds, versioned."""

    __tablename__ = "protocols"
    __table_args__ = (sa.UniqueConstraint("key", "version"),)

    key: Mapped[str] = mapped_column(sa.String(32))
    version: Mapped[int]
    definition: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]


class Assignment(UUIDPrimaryKey, db.Model):  # type: ignore[name-defined,misc]
    """One planned questionnaire: open from ``opens_at`` (local reminder time on its day) to
    ``closes_at``. ``status`` is kept by the scheduler; readers use ``effective_status`` so the
    API is right even while the scheduler catches up."""

    __tablename__ = "assignments"
    __table_args__ = (
        sa.CheckConstraint(
            "status IN ('pending', 'open', 'completed', 'missed', 'cancelled')",
            name="status_known",
        ),
        sa.CheckConstraint("reason IN ('protocol', 'confirmation')", name="reason_known"),
        sa.CheckConstraint("closes_at > opens_at", name="window_positive"),
        sa.Index("ix_assignments_patient_id_opens_at", "patient_id", "opens_at"),
        # The scheduler's claim orders (due time, id): a batch is read off the index in order.
        # Each holds only the questionnaires its claim can take (opening, closing the missed).
        sa.Index(
            "ix_assignments_pending_opens",
            "opens_at",
            "id",
            postgresql_where=sa.text("status = 'pending'"),
            sqlite_where=sa.text("status = 'pending'"),
        ),
        sa.Index(
            "ix_assignments_unfinished_closes",
            "closes_at",
            "id",
            postgresql_where=sa.text("status IN ('pending', 'open')"),
            sqlite_where=sa.text("status IN ('pending', 'open')"),
        ),
    )

    patient_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("patients.id"))
    procedure_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("procedures.id"), index=True)
    instrument_key: Mapped[str] = mapped_column(sa.String(32))
    instrument_version: Mapped[int]
    day: Mapped[int]
    reason: Mapped[str] = mapped_column(sa.String(16), default="protocol")
    opens_at: Mapped[datetime]
    closes_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(sa.String(16), default="pending")
    status_changed_at: Mapped[datetime]
    # Why it was cancelled (patient_deceased, passed_while_paused, rescheduled, ...).
    status_reason: Mapped[str | None] = mapped_column(sa.String(32))
    created_at: Mapped[datetime]

    def effective_status(self, now: datetime) -> str:
        if self.status in {"completed", "cancelled", "missed"}:
            return self.status
        if now < self.opens_at:
            return "pending"
        if now < self.closes_at:
            return "open"
        return "missed"


class Response(UUIDPrimaryKey, db.Model):  # type: ignore[name-defined,misc]
    """A completed questionnaire. Never updated: a correction would be a new response.

    Two constraints make duplicates impossible whatever the timing: one response per
    assignment, and one per (patient, Idempotency-Key).
    """

    __tablename__ = "responses"
    __table_args__ = (
        sa.UniqueConstraint("assignment_id"),
        sa.UniqueConstraint("patient_id", "idempotency_key"),
        sa.CheckConstraint("source IN ('patient', 'caregiver', 'nurse')", name="source_known"),
        sa.CheckConstraint(
            "channel IS NULL OR channel IN ('app', 'sms', 'email', 'phone')", name="channel_known"
        ),
        sa.Index("ix_responses_patient_id_answered_at", "patient_id", "answered_at"),
    )

    patient_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("patients.id"))
    procedure_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("procedures.id"), index=True)
    assignment_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("assignments.id"))
    instrument_key: Mapped[str] = mapped_column(sa.String(32))
    instrument_version: Mapped[int]
    day: Mapped[int]
    answered_at: Mapped[datetime]
    received_at: Mapped[datetime]
    source: Mapped[str] = mapped_column(sa.String(16))
    answers: Mapped[dict[str, Any]]
    scores: Mapped[dict[str, Any]]
    idempotency_key: Mapped[str | None] = mapped_column(sa.String(64))
    request_hash: Mapped[str | None] = mapped_column(sa.String(64))
    entered_by_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))
    # NULL only on rows older than the column (then: ``phone`` for a nurse, else ``app``).
    channel: Mapped[str | None] = mapped_column(sa.String(8))

    # The staff member who typed it in (a nurse after a phone call); lists load it in one
    # query (``selectinload``), so presenting a history never asks once per response.
    entered_by: Mapped[User | None] = relationship()

    @property
    def answered_via(self) -> str:
        """The channel it came in by (``CHANNELS``)."""
        if self.channel:
            return self.channel
        return "phone" if self.source == "nurse" else "app"

    @property
    def attribution(self) -> dict[str, Any]:
        """Who entered it: ``kind`` is the source (patient, caregiver, nurse); a nurse is named
        by the display name of her account, and nothing else of it; ``channel`` is the way it
        came in (app, sms or email link, phone call)."""
        staff = self.entered_by if self.entered_by_id is not None else None
        return {
            "kind": self.source,
            "display_name": (staff.full_name or None) if staff is not None else None,
            "user_id": self.entered_by_id,
            "channel": self.answered_via,
        }


class AnswerLink(UUIDPrimaryKey, db.Model):  # type: ignore[name-defined,misc]
    """A reminder's web link: a capability to answer one questionnaire, once, in a browser.

    Only the SHA-256 of its random token is stored (the token itself is only in the message
    sent). It ends when the questionnaire's window closes, when it has been used, or when the
    year-of-birth check failed ``ANSWER_LINK_MAX_TRIES`` times (``locked_at``). A browser that
    passed the check holds a random cookie whose hash is ``session_hash``: the link alone,
    forwarded, does not open the form.
    """

    __tablename__ = "answer_links"
    __table_args__ = (
        sa.CheckConstraint("channel IN ('sms', 'email')", name="channel_known"),
        sa.CheckConstraint("failed_checks >= 0", name="failed_checks_positive"),
    )

    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    patient_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("patients.id"), index=True)
    assignment_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("assignments.id"), index=True)
    channel: Mapped[str] = mapped_column(sa.String(8))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    failed_checks: Mapped[int] = mapped_column(default=0)
    locked_at: Mapped[datetime | None]
    session_hash: Mapped[str | None] = mapped_column(sa.String(64))
    session_expires_at: Mapped[datetime | None]
    used_at: Mapped[datetime | None]
    response_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("responses.id"))
