"""Alerts for IR nurses, their notes and their history."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.db import UUIDPrimaryKey
from backend.extensions import db

if TYPE_CHECKING:
    from backend.patients.models import Patient

ALERT_STATUSES = ("open", "acknowledged", "resolved")
SEVERITY_RANK = {"urgent": 0, "high": 1, "routine": 2}
OUTCOMES = (
    "false_alarm",
    "advice_given",
    "medication_changed",
    "imaging_ordered",
    "ir_consultation",
    "sent_to_emergency",
    "loosening_confirmed",
    "revision_planned",
    "other",
)
# Set by the system, never by a nurse (resolved_by_id stays NULL): every questionnaire a
# no_response alert was about has been answered late; the follow-up was suspended or ended
# (the history entry says why: patient_deceased, patient_withdrawn, patient_paused, ...).
SYSTEM_OUTCOMES = ("answered_late", "follow_up_suspended", "follow_up_ended")


class Alert(UUIDPrimaryKey, db.Model):  # type: ignore[name-defined,misc]
    """One alert per patient and kind while it is not resolved (a partial unique index on
    PostgreSQL and SQLite enforces it), gathering the evidence of every signal of its episode."""

    __tablename__ = "alerts"
    __table_args__ = (
        sa.CheckConstraint("status IN ('open', 'acknowledged', 'resolved')", name="status_known"),
        sa.CheckConstraint("severity IN ('urgent', 'high', 'routine')", name="severity_known"),
        # A site's alerts of one status by severity, then age (the resolved ones' list).
        sa.Index("ix_alerts_queue", "site_id", "status", "severity_rank", "created_at"),
        # The triage queue: each segment (a severity, overdue or not) read in age order
        # (backend.alerts.services.queue); only unresolved alerts, so it stays small. On
        # PostgreSQL it also carries what tells the segments apart (status, target, snooze), so
        # a segment is read from the index alone: finding that a segment of 5,000 alerts is
        # empty read each alert's row (8 ms each for two segments of the first page).
        sa.Index(
            "ix_alerts_unresolved_queue",
            "site_id",
            "severity_rank",
            "created_at",
            "id",
            postgresql_include=["status", "due_at", "snoozed_until"],
            postgresql_where=sa.text("status <> 'resolved'"),
            sqlite_where=sa.text("status <> 'resolved'"),
        ),
        sa.Index(
            "uq_alerts_one_unresolved_per_kind",
            "patient_id",
            "kind",
            unique=True,
            postgresql_where=sa.text("status <> 'resolved'"),
            sqlite_where=sa.text("status <> 'resolved'"),
        ),
    )

    patient_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("patients.id"), index=True)
    site_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("sites.id"))
    kind: Mapped[str] = mapped_column(sa.String(32))
    severity: Mapped[str] = mapped_column(sa.String(8))
    severity_rank: Mapped[int]
    status: Mapped[str] = mapped_column(sa.String(16), default="open")
    rule_key: Mapped[str] = mapped_column(sa.String(32))
    rule_version: Mapped[int]
    summary: Mapped[dict[str, Any]]
    evidence: Mapped[dict[str, Any]]
    opened_by_response_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("responses.id"))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    due_at: Mapped[datetime]  # acknowledge before this time (target by severity)
    escalated_at: Mapped[datetime | None]
    # When the site's nurses were told (at once for urgent and high, in the daily digest for
    # routine); never what the alert is about.
    nurses_notified_at: Mapped[datetime | None]
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))
    resolved_at: Mapped[datetime | None]
    resolved_by_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))
    outcome: Mapped[str | None] = mapped_column(sa.String(32))
    # Ownership (docs/nurse-workflow.md): the nurse of the site who has it in hand, since when;
    # NULL: the shared queue. Changed only by a conditional UPDATE (``services.set_owner``).
    owner_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))
    owned_since: Mapped[datetime | None]
    # Put aside until then, with the reason; overdue and escalation keep counting meanwhile.
    # Once past, the alert is back at the top of its severity until a nurse acts on it.
    snoozed_until: Mapped[datetime | None]
    snooze_reason: Mapped[str | None] = mapped_column(sa.Text)
    # Read state: who of the team opened it first, when (NULL: new).
    seen_at: Mapped[datetime | None]
    seen_by_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))

    notes: Mapped[list[AlertNote]] = relationship(order_by="AlertNote.created_at", lazy="selectin")
    history: Mapped[list[AlertEvent]] = relationship(
        order_by="AlertEvent.occurred_at", lazy="selectin"
    )
    # The patient, read only with the alerts of a queue page (``services.queue``: the columns an
    # alert shows, in the same statement); never loaded on access (``load_named`` reads it).
    patient: Mapped[Patient] = relationship(viewonly=True, lazy="raise")

    def is_overdue(self, now: datetime) -> bool:
        """Not acknowledged within its target time (clinical.md, "Nurse triage")."""
        return self.status == "open" and now >= self.due_at

    def is_snoozed(self, now: datetime) -> bool:
        return self.snoozed_until is not None and now < self.snoozed_until

    def is_back_from_snooze(self, now: datetime) -> bool:
        return self.snoozed_until is not None and now >= self.snoozed_until


class HandoverNote(UUIDPrimaryKey, db.Model):  # type: ignore[name-defined,misc]
    """What a shift leaves the next one at a site; the next shift's first reader confirms it."""

    __tablename__ = "handover_notes"
    __table_args__ = (sa.Index("ix_handover_notes_site_created", "site_id", "created_at"),)

    site_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("sites.id"))
    author_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"))
    text: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime]
    read_by_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))
    read_at: Mapped[datetime | None]


class AlertNote(UUIDPrimaryKey, db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "alert_notes"

    alert_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("alerts.id"), index=True)
    author_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"))
    text: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime]


class AlertEvent(UUIDPrimaryKey, db.Model):  # type: ignore[name-defined,misc]
    """What happened to an alert: opened, evidence added, severity raised, acknowledged,
    escalated, resolved, noted. Who (a user, or the system) and when."""

    __tablename__ = "alert_events"

    alert_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("alerts.id"), index=True)
    action: Mapped[str] = mapped_column(sa.String(32))
    actor_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))
    occurred_at: Mapped[datetime]
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


class SiteRuleVersion(UUIDPrimaryKey, db.Model):  # type: ignore[name-defined,misc]
    """One change of a site's rule versions; the latest row is in force (none: version 1).

    Rows are never updated: the table is the history of who switched what, when and why.
    """

    __tablename__ = "site_rule_versions"
    __table_args__ = (sa.Index("ix_site_rule_versions_site_set_at", "site_id", "set_at"),)

    site_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("sites.id"))
    active_version: Mapped[int]
    candidate_version: Mapped[int | None]
    set_at: Mapped[datetime]
    set_by_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))
    reason: Mapped[str | None] = mapped_column(sa.Text)


class ShadowSignal(UUIDPrimaryKey, db.Model):  # type: ignore[name-defined,misc]
    """A signal a site's candidate rule version would have raised: stored for the comparison
    report only, never shown to nurses, never notified, never in the queue or the pages."""

    __tablename__ = "shadow_signals"
    __table_args__ = (
        sa.UniqueConstraint(
            "procedure_id", "rule_version", "signal_key", name="uq_shadow_signals_signal"
        ),
        sa.Index("ix_shadow_signals_site_version", "site_id", "rule_version"),
    )

    site_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("sites.id"))
    patient_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("patients.id"))
    procedure_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("procedures.id"))
    rule_version: Mapped[int]
    kind: Mapped[str] = mapped_column(sa.String(32))
    severity: Mapped[str] = mapped_column(sa.String(8))
    signal_key: Mapped[str] = mapped_column(sa.String(80))  # kind and response (or missed) id
    response_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("responses.id"))
    answered_at: Mapped[datetime]
    reasons: Mapped[list[Any]]
    summary: Mapped[dict[str, Any]]
    recorded_at: Mapped[datetime]


class RuleState(db.Model):  # type: ignore[name-defined,misc]
    """The alert rules' state after a procedure's answers (``backend.alerts.rules.Fold``), kept
    so that the next answer, when it is the latest, is evaluated alone instead of the whole
    history again (``backend.alerts.services.evaluate_patient``).

    It is used only when it was computed by the same engine (``engine``: this code and the
    shipped rule sets), rule version and procedure facts, from every answer but the new one
    (``responses``); otherwise the history is evaluated whole and the state written again.
    """

    __tablename__ = "rule_states"

    procedure_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("procedures.id", ondelete="CASCADE"), primary_key=True
    )
    engine: Mapped[str] = mapped_column(sa.String(32))
    rule_version: Mapped[int]
    facts: Mapped[dict[str, Any]]  # the procedure facts (baseline) it was computed with
    responses: Mapped[int]  # how many answers it folded
    # JSON text, not JSONB: read whole at each answer, never queried inside. The parts that
    # change rarely are apart (``PARTS``): an answer that adds no signal and no confirmation
    # request rewrites only ``state``, and PostgreSQL keeps an unchanged TOASTed value as it is.
    state: Mapped[dict[str, Any]] = mapped_column(sa.JSON())
    signals: Mapped[list[Any]] = mapped_column(sa.JSON())
    requests: Mapped[list[Any]] = mapped_column(sa.JSON())
    updated_at: Mapped[datetime]

    PARTS = ("signals", "requests")

    @classmethod
    def columns(cls, data: dict[str, Any]) -> dict[str, Any]:
        """``Fold.dump``'s data as the row's columns."""
        return {"state": {k: v for k, v in data.items() if k not in cls.PARTS}} | {
            part: data[part] for part in cls.PARTS
        }

    def data(self) -> dict[str, Any]:
        """The state as ``Fold.load`` reads it."""
        return {**self.state, **{part: getattr(self, part) for part in self.PARTS}}

    def write(self, data: dict[str, Any]) -> None:
        """Store ``Fold.dump``'s data, leaving the parts that did not change untouched."""
        for name, value in self.columns(data).items():
            if name == "state" or value != getattr(self, name):
                setattr(self, name, value)
