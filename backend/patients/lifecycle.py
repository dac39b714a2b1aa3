"""A patient's status lifecycle and consent records. Services flush, never commit.

Status (clinical.md): only ``active`` patients are followed.

- ``paused`` (optionally until a date) and ``readmitted`` suspend the follow-up: nothing opens,
  nothing is missed, no reminder leaves, no ``no_response`` alert (an open one is resolved by the
  system, outcome ``follow_up_suspended``). When the follow-up resumes (a nurse sets ``active``, or
  the scheduler on the ``paused_until`` date at 00:00 in the patient's zone), the questionnaires
  whose window closed meanwhile are not owed: they are cancelled (``passed_while_paused`` /
  ``passed_while_readmitted``). One whose window is still open opens at once and its remaining
  reminders follow; the later ones open on their day as planned.
- ``deceased`` and ``withdrawn`` end it, for good: pending and open questionnaires are cancelled
  with the reason, their reminders and the patient's pending notifications too, the open
  ``no_response`` alert is resolved by the system (outcome ``follow_up_ended``), the phones are
  signed out (their sessions revoked: refresh chains and access tokens stop at once) and unused
  enrollment codes expire. Clinical alerts already open stay for the nurse to resolve.

Consent is a list of decisions per purpose (``care``: the telemonitoring itself; ``research``:
what the research export reads); the current state of a purpose is its latest decision.
Withdrawing care consent ends the follow-up at once, like ``withdrawn``. An enrollment code is
issued only while care consent is given (French telemonitoring requires the patient's consent,
Code de la santé publique R. 6316-2), see ``require_care_consent``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app

from backend.audit.services import record
from backend.auth.models import AuthSession
from backend.auth.principal import Principal
from backend.auth.services import revoke_session
from backend.errors import Conflict, ValidationProblem, field_error
from backend.extensions import db
from backend.patients.models import (
    CONSENT_PURPOSES,
    ENDED_STATUSES,
    SUSPENDED_STATUSES,
    Consent,
    EnrollmentCode,
    Patient,
    StatusChange,
)
from backend.questionnaires.models import Assignment
from backend.signals import follow_up_stopped

# --- status ------------------------------------------------------------------------------------


def _today(patient: Patient, now: datetime) -> date:
    from backend.patients.services import today_for

    return today_for(patient, now)


def change_status(
    actor: Principal | None,
    patient: Patient,
    status: str,
    reason: str,
    *,
    now: datetime,
    paused_until: date | None = None,
    cause: str = "staff",
) -> StatusChange:
    """Move a patient to ``status`` for ``reason``, with the effects of the module docstring.

    ``actor`` None is the system (the scheduler ending a pause). 422 for an inconsistent request,
    409 when the follow-up has already ended or nothing would change.
    """
    errors = []
    reason = (reason or "").strip()
    if not reason:
        errors.append(field_error("/reason", "is required: say why the status changes"))
    if paused_until is not None:
        if status != "paused":
            errors.append(field_error("/paused_until", "is only for the status paused"))
        elif paused_until <= _today(patient, now):
            errors.append(field_error("/paused_until", "must be a date after today"))
    if errors:
        raise ValidationProblem(errors)
    previous = patient.status
    if previous in ENDED_STATUSES:
        raise Conflict(
            f"The follow-up of this patient has ended ({previous}); it cannot change again.",
            slug="follow-up-ended",
        )
    if status == previous and not (status == "paused" and paused_until != patient.paused_until):
        raise Conflict(f"The patient is already {status}.")

    change = StatusChange(
        patient_id=patient.id,
        from_status=previous,
        to_status=status,
        reason=reason[:500],
        paused_until=paused_until,
        cause=cause,
        changed_at=now,
        changed_by_id=actor.id if actor is not None and actor.is_staff else None,
    )
    db.session.add(change)
    patient.status = status
    patient.status_changed_at = now
    patient.paused_until = paused_until
    patient.updated_at = now
    if status == "active":
        _resume(patient, previous, now)
    elif status in SUSPENDED_STATUSES and previous == "active":
        follow_up_stopped.send(
            current_app._get_current_object(),  # type: ignore[attr-defined]
            patient=patient,
            now=now,
            ended=False,
            reason=f"patient_{status}",
        )
    elif status in ENDED_STATUSES:
        _end(patient, cause, now)
    db.session.flush()
    record(
        "patient.status.change",
        now=now,
        actor=actor,
        actor_type=None if actor is not None else "system",
        site_id=patient.site_id,
        resource_type="patient",
        resource_id=patient.id,
        patient_id=patient.id,
        details={
            "before": previous,
            "after": status,
            "cause": cause,
            "paused_until": paused_until.isoformat() if paused_until else None,
            "status_change_id": str(change.id),
        },
    )
    return change


def _resume(patient: Patient, previous: str, now: datetime) -> None:
    """Back to active: what closed during the suspension is not owed."""
    reason = f"passed_while_{previous}"
    for assignment in db.session.execute(
        db.select(Assignment).where(
            Assignment.patient_id == patient.id,
            Assignment.status.in_(("pending", "open")),
            Assignment.closes_at <= now,
        )
    ).scalars():
        _cancel(assignment, reason, now)


def _end(patient: Patient, cause: str, now: datetime) -> None:
    reason = (
        "care_consent_withdrawn"
        if cause == "care_consent_withdrawn"
        else (f"patient_{patient.status}")
    )
    for assignment in db.session.execute(
        db.select(Assignment).where(
            Assignment.patient_id == patient.id, Assignment.status.in_(("pending", "open"))
        )
    ).scalars():
        _cancel(assignment, reason, now)
    # Devices signed out: revoking the session stops its refresh chain and access tokens.
    for session in db.session.execute(
        db.select(AuthSession).where(
            AuthSession.patient_id == patient.id, AuthSession.revoked_at.is_(None)
        )
    ).scalars():
        revoke_session(session, now=now, reason=reason[:32])
    db.session.execute(
        sa.update(EnrollmentCode)
        .where(
            EnrollmentCode.patient_id == patient.id,
            EnrollmentCode.used_at.is_(None),
            EnrollmentCode.expires_at > now,
        )
        .values(expires_at=now)
        .execution_options(synchronize_session=False)
    )
    db.session.flush()
    follow_up_stopped.send(
        current_app._get_current_object(),  # type: ignore[attr-defined]
        patient=patient,
        now=now,
        ended=True,
        reason=reason,
    )


def _cancel(assignment: Assignment, reason: str, now: datetime) -> None:
    assignment.status = "cancelled"
    assignment.status_reason = reason
    assignment.status_changed_at = now


def resume_due_pauses(now: datetime, *, limit: int) -> int:
    """Patients paused until a date that has come (in their zone) are active again."""
    # A zone is at most 14 h ahead of UTC: tomorrow's UTC date bounds every local today.
    bound = now.date() + timedelta(days=1)
    candidates = list(
        db.session.execute(
            db.select(Patient)
            .where(
                Patient.status == "paused",
                Patient.paused_until.is_not(None),
                Patient.paused_until <= bound,
            )
            .order_by(Patient.paused_until, Patient.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).scalars()
    )
    resumed = 0
    for patient in candidates:
        assert patient.paused_until is not None
        if _today(patient, now) >= patient.paused_until:
            change_status(
                None,
                patient,
                "active",
                f"pause until {patient.paused_until.isoformat()} ended",
                now=now,
                cause="pause_ended",
            )
            resumed += 1
    return resumed


def status_history(patient: Patient) -> list[StatusChange]:
    return list(
        db.session.execute(
            db.select(StatusChange)
            .filter_by(patient_id=patient.id)
            .order_by(StatusChange.changed_at, StatusChange.id)
        ).scalars()
    )


# --- consent -----------------------------------------------------------------------------------


def current_consent(patient: Patient, purpose: str) -> Consent | None:
    """The latest decision for ``purpose`` (from the patient's loaded records)."""
    decisions = [c for c in patient.consents if c.purpose == purpose]
    return decisions[-1] if decisions else None


def consent_state(patient: Patient) -> dict[str, dict[str, Any]]:
    """Per purpose: ``given``, ``withdrawn`` or ``none``, and since when."""
    state = {}
    for purpose in CONSENT_PURPOSES:
        latest = current_consent(patient, purpose)
        state[purpose] = {
            "state": latest.decision if latest else "none",
            "since": latest.decided_on if latest else None,
        }
    return state


def record_consent(
    principal: Principal, patient: Patient, data: Mapping[str, Any], *, now: datetime
) -> Consent:
    """Record a consent decision; withdrawing care consent ends the follow-up at once."""
    purpose, decision, on = data["purpose"], data["decision"], data["decided_on"]
    method, witness = data["method"], (data.get("witness") or "").strip() or None
    latest = current_consent(patient, purpose)
    errors = []
    if on > _today(patient, now):
        errors.append(field_error("/decided_on", "is in the future"))
    elif on < patient.birth_date:
        errors.append(field_error("/decided_on", "is before the patient's birth"))
    elif latest is not None and on < latest.decided_on:
        errors.append(
            field_error(
                "/decided_on",
                f"is before the {purpose} consent {latest.decision} on "
                f"{latest.decided_on.isoformat()}",
            )
        )
    if decision == "withdrawn" and (latest is None or latest.decision == "withdrawn"):
        errors.append(field_error("/decision", f"no {purpose} consent is given to withdraw"))
    elif decision == "given" and latest is not None and latest.decision == "given":
        errors.append(field_error("/decision", f"the {purpose} consent is already given"))
    if method == "verbal_witnessed" and witness is None:
        errors.append(field_error("/witness", "is required for a verbal consent"))
    if errors:
        raise ValidationProblem(errors)
    consent = Consent(
        id=uuid.uuid4(),
        patient_id=patient.id,
        purpose=purpose,
        decision=decision,
        decided_on=on,
        method=method,
        witness=witness,
        note=(data.get("note") or "").strip() or None,
        recorded_at=now,
        recorded_by_id=principal.id if principal.is_staff else None,
    )
    db.session.add(consent)
    db.session.flush()
    db.session.refresh(patient, ["consents"])
    record(
        "consent.record",
        now=now,
        actor=principal,
        resource_type="consent",
        resource_id=consent.id,
        patient_id=patient.id,
        details={"purpose": purpose, "decision": decision, "method": method},
    )
    if purpose == "care" and decision == "withdrawn" and patient.status not in ENDED_STATUSES:
        change_status(
            principal,
            patient,
            "withdrawn",
            f"care consent withdrawn on {on.isoformat()}",
            now=now,
            cause="care_consent_withdrawn",
        )
    return consent


def require_care_consent(patient: Patient) -> None:
    """409 unless the patient may be given an enrollment code: followed or suspended (not
    ended) and with care consent given."""
    if patient.status in ENDED_STATUSES:
        raise Conflict(
            f"The follow-up of this patient has ended ({patient.status}).",
            slug="follow-up-ended",
        )
    latest = current_consent(patient, "care")
    if latest is None or latest.decision != "given":
        raise Conflict(
            "Record the patient's consent to telemonitoring (care) before issuing a code.",
            slug="care-consent-required",
        )
