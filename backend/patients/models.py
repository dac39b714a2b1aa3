"""Patients, their procedures, their phones and their enrollment codes."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

if TYPE_CHECKING:
    from backend.auth.models import AuthSession, User
    from backend.questionnaires.models import Assignment, Protocol

from backend.db import UUIDPrimaryKey
from backend.extensions import db
from backend.locales import LOCALES
from backend.questionnaires.vocabulary import AID_LEVELS, ANALGESIC_STEPS

PATIENT_STATUSES = ("active", "paused", "readmitted", "deceased", "withdrawn")
# paused and readmitted suspend the follow-up; deceased and withdrawn end it (clinical.md).
SUSPENDED_STATUSES = ("paused", "readmitted")
ENDED_STATUSES = ("deceased", "withdrawn")
# Who or what changed a status: a staff member, the end of a pause (the scheduler), or the
# withdrawal of care consent recorded by a staff member.
STATUS_CAUSES = ("staff", "pause_ended", "care_consent_withdrawn")
CONSENT_PURPOSES = ("care", "research")  # care: telemonitoring; research: the research export
CONSENT_DECISIONS = ("given", "withdrawn")
# How the decision was collected. Rows migrated from the former two dates have none (NULL).
CONSENT_METHODS = ("paper", "verbal_witnessed", "in_app")
CHANNELS = ("push", "sms", "email")
SEXES = ("female", "male", "other", "unknown")

# Value lists of the clinical specification (procedure record).
PROCEDURE_KINDS = (
    "cementoplasty",
    "screw_fixation",
    "screw_fixation_cementoplasty",
    "sclerotherapy",
    "other_hardware",
)
SCREW_KINDS = ("screw_fixation", "screw_fixation_cementoplasty", "other_hardware")
LOCATIONS = (
    "sacrum",
    "sacroiliac",
    "iliac_wing",
    "acetabulum",
    "pubic_ramus",
    "femoral_neck",
    "proximal_femur",
    "vertebra",
    "other",
)
SIDES = ("left", "right", "bilateral", "midline")
ETIOLOGIES = ("osteoporotic", "neoplastic", "traumatic", "cyst", "other")
BONE_QUALITIES = ("normal", "osteopenic", "osteoporotic", "lytic", "unknown")
ANAESTHESIAS = ("local", "sedation", "general")
ANALGESICS = ANALGESIC_STEPS  # the baseline is taken on the instruments' scales
WALKING_AIDS = AID_LEVELS
LIVING_SITUATIONS = ("alone", "with_partner_or_family", "assisted_living", "nursing_home", "other")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Patient(UUIDPrimaryKey, db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "patients"
    __table_args__ = (
        sa.UniqueConstraint("site_id", "mrn"),
        sa.CheckConstraint(_in("status", PATIENT_STATUSES), name="status_known"),
        sa.CheckConstraint(_in("locale", LOCALES), name="locale_known"),
    )

    site_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("sites.id"), index=True)
    mrn: Mapped[str] = mapped_column(sa.String(64))
    given_name: Mapped[str] = mapped_column(sa.String(100))
    family_name: Mapped[str] = mapped_column(sa.String(100))
    birth_date: Mapped[date]
    sex: Mapped[str | None] = mapped_column(sa.String(8))
    phone: Mapped[str | None] = mapped_column(sa.String(20))
    email: Mapped[str | None] = mapped_column(sa.String(254))
    # Set when a provider says the number or address is dead for good (invalid, opted out);
    # a new number or address clears them (backend.notify.contacts).
    phone_disabled_at: Mapped[datetime | None]
    phone_disabled_reason: Mapped[str | None] = mapped_column(sa.String(64))
    email_disabled_at: Mapped[datetime | None]
    email_disabled_reason: Mapped[str | None] = mapped_column(sa.String(64))
    locale: Mapped[str] = mapped_column(sa.String(2))
    timezone: Mapped[str] = mapped_column(sa.String(64))
    contact_channels: Mapped[list[Any]] = mapped_column(default=list)
    caregiver_answers: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(sa.String(16), default="active")
    status_changed_at: Mapped[datetime]
    # paused only: the local date on which the follow-up resumes by itself (the scheduler).
    paused_until: Mapped[date | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    procedures: Mapped[list[Procedure]] = relationship(
        back_populates="patient",
        order_by="[Procedure.discharged_on, Procedure.created_at, Procedure.id]",
        lazy="selectin",
    )
    # In decision order: the last of a purpose is its current state (backend.patients.lifecycle).
    consents: Mapped[list[Consent]] = relationship(
        order_by=lambda: (Consent.decided_on, Consent.recorded_at, Consent.id),
        lazy="selectin",
        viewonly=True,
    )

    @property
    def followed(self) -> bool:
        """Only active patients are followed (reminded, owed questionnaires, escalated)."""
        return self.status == "active"

    @property
    def display_name(self) -> str:
        return f"{self.given_name} {self.family_name[:1]}."

    @property
    def current_procedure(self) -> Procedure | None:
        return self.procedures[-1] if self.procedures else None


class Procedure(UUIDPrimaryKey, db.Model):  # type: ignore[name-defined,misc]
    """The procedure performed, entered at discharge, with the pre-procedure baseline."""

    __tablename__ = "procedures"
    __table_args__ = (
        sa.CheckConstraint(_in("kind", PROCEDURE_KINDS), name="kind_known"),
        sa.CheckConstraint("discharged_on >= performed_on", name="discharge_after_procedure"),
        sa.CheckConstraint("baseline_pain_rest BETWEEN 0 AND 10", name="pain_rest_range"),
        sa.CheckConstraint("baseline_pain_walking BETWEEN 0 AND 10", name="pain_walking_range"),
    )

    patient_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("patients.id"), index=True)
    site_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("sites.id"), index=True)
    protocol_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("protocols.id"))
    kind: Mapped[str] = mapped_column(sa.String(32))
    location: Mapped[str] = mapped_column(sa.String(32))
    side: Mapped[str | None] = mapped_column(sa.String(16))
    vertebral_level: Mapped[str | None] = mapped_column(sa.String(32))
    etiology: Mapped[str] = mapped_column(sa.String(16))
    bone_quality: Mapped[str | None] = mapped_column(sa.String(16))
    anaesthesia: Mapped[str | None] = mapped_column(sa.String(16))
    screw_count: Mapped[int | None]
    cement_volume_ml: Mapped[Decimal | None] = mapped_column(sa.Numeric(5, 1))
    performed_on: Mapped[date]
    discharged_on: Mapped[date]
    study_arm: Mapped[str | None] = mapped_column(sa.String(64))
    baseline_pain_rest: Mapped[int]
    baseline_pain_walking: Mapped[int]
    baseline_mobility_score: Mapped[int | None]
    baseline_analgesics: Mapped[str | None] = mapped_column(sa.String(16))
    baseline_walking_aid: Mapped[str | None] = mapped_column(sa.String(16))
    baseline_living_situation: Mapped[str | None] = mapped_column(sa.String(32))
    created_at: Mapped[datetime]
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))

    patient: Mapped[Patient] = relationship(back_populates="procedures")
    protocol: Mapped[Protocol] = relationship(lazy="joined")
    schedule: Mapped[list[Assignment]] = relationship(
        order_by="Assignment.opens_at", viewonly=True, lazy="selectin"
    )


# The order of a patient's procedures (``Patient.procedures``): the last is the current one
# (``current_procedure``; recording an answer reads only it, ``ORDER BY ... DESC LIMIT 1``).
CURRENT_PROCEDURE_ORDER = (Procedure.discharged_on, Procedure.created_at, Procedure.id)


class Device(UUIDPrimaryKey, db.Model):  # type: ignore[name-defined,misc]
    """A patient's phone, registered by an enrollment claim."""

    __tablename__ = "devices"

    patient_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("patients.id"), index=True)
    session_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("auth_sessions.id"))
    platform: Mapped[str] = mapped_column(sa.String(8))
    push_token: Mapped[str | None] = mapped_column(sa.String(4096))
    app_version: Mapped[str | None] = mapped_column(sa.String(32))
    locale: Mapped[str | None] = mapped_column(sa.String(2))
    timezone: Mapped[str | None] = mapped_column(sa.String(64))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # Set when a provider says the token is dead for good (unregistered); a new token revives it.
    push_disabled_at: Mapped[datetime | None]
    push_disabled_reason: Mapped[str | None] = mapped_column(sa.String(64))

    # The device's refresh chain: revoking it (a lost phone) ends its tokens at once.
    session: Mapped[AuthSession | None] = relationship(lazy="joined")

    @property
    def revoked_at(self) -> datetime | None:
        return self.session.revoked_at if self.session is not None else None

    @property
    def status(self) -> str:
        """``active`` while its session may act, else ``revoked`` (by staff, or signed out)."""
        live = self.session is not None and self.session.revoked_at is None
        return "active" if live else "revoked"


class EnrollmentCode(UUIDPrimaryKey, db.Model):  # type: ignore[name-defined,misc]
    """A single-use code the patient types (or scans) to enroll their phone; stored hashed."""

    __tablename__ = "enrollment_codes"

    patient_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("patients.id"), index=True)
    code_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime]
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class EnrollmentSheet(UUIDPrimaryKey, db.Model):  # type: ignore[name-defined,misc]
    """A code waiting to be shown once on the nurse's printable sheet (``backend.web``).

    The code is split in two (a one-time pad): this row holds ``code XOR pad``, the nurse's
    signed (not encrypted) session cookie holds the row's id and the pad. Neither half alone
    tells the code; showing the sheet deletes the row, so a replayed cookie shows nothing.
    """

    __tablename__ = "enrollment_sheets"

    patient_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("patients.id", ondelete="CASCADE"), index=True
    )
    auth_session_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("auth_sessions.id", ondelete="CASCADE")
    )
    masked_code: Mapped[str] = mapped_column(sa.String(64))
    code_expires_at: Mapped[datetime]
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)


class StatusChange(UUIDPrimaryKey, db.Model):  # type: ignore[name-defined,misc]
    """One step of a patient's status lifecycle: from, to, why, who (or what), when."""

    __tablename__ = "patient_status_changes"
    __table_args__ = (
        sa.CheckConstraint(_in("to_status", PATIENT_STATUSES), name="to_status_known"),
        sa.CheckConstraint(_in("cause", STATUS_CAUSES), name="cause_known"),
        sa.Index("ix_patient_status_changes_patient_id_changed_at", "patient_id", "changed_at"),
    )

    patient_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("patients.id"))
    from_status: Mapped[str] = mapped_column(sa.String(16))
    to_status: Mapped[str] = mapped_column(sa.String(16))
    reason: Mapped[str] = mapped_column(sa.String(500))
    paused_until: Mapped[date | None]
    cause: Mapped[str] = mapped_column(sa.String(32))
    changed_at: Mapped[datetime]
    changed_by_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))

    changed_by: Mapped[User | None] = relationship(lazy="joined")


class Consent(UUIDPrimaryKey, db.Model):  # type: ignore[name-defined,misc]
    """One consent decision (given or withdrawn) for one purpose; the current state of a
    purpose is its latest decision. Never updated: a change of mind is a new row."""

    __tablename__ = "consents"
    __table_args__ = (
        sa.CheckConstraint(_in("purpose", CONSENT_PURPOSES), name="purpose_known"),
        sa.CheckConstraint(_in("decision", CONSENT_DECISIONS), name="decision_known"),
        sa.CheckConstraint(
            f"method IS NULL OR {_in('method', CONSENT_METHODS)}", name="method_known"
        ),
        sa.CheckConstraint(
            "method IS NULL OR method <> 'verbal_witnessed' OR witness IS NOT NULL",
            name="verbal_has_witness",
        ),
        sa.Index("ix_consents_patient_id_purpose", "patient_id", "purpose"),
    )

    patient_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("patients.id"))
    purpose: Mapped[str] = mapped_column(sa.String(16))
    decision: Mapped[str] = mapped_column(sa.String(16))
    decided_on: Mapped[date]
    method: Mapped[str | None] = mapped_column(sa.String(16))
    witness: Mapped[str | None] = mapped_column(sa.String(200))
    note: Mapped[str | None] = mapped_column(sa.String(500))
    recorded_at: Mapped[datetime]
    recorded_by_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))

    recorded_by: Mapped[User | None] = relationship(lazy="joined")
