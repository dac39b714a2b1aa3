"""Patients, procedures and their schedule, enrollment. Services flush, never commit."""

from __future__ import annotations

import functools
import hashlib
import secrets
import uuid
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app, g
from sqlalchemy import orm

from backend.audit.services import record
from backend.auth.models import AuthSession, Site
from backend.auth.principal import Principal
from backend.auth.services import IssuedTokens, issue_tokens, revoke_session
from backend.errors import BadRequest, Conflict, NotFound, ValidationProblem, field_error
from backend.extensions import db
from backend.patients import lifecycle
from backend.patients.models import Device, EnrollmentCode, Patient, Procedure
from backend.questionnaires.models import Assignment, Protocol, Response
from backend.questionnaires.planning import local_instant, plan
from backend.schedule.models import Reminder

# Crockford-like alphabet without look-alikes (no 0/O, 1/I/L, U): easy to read aloud and type.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_LENGTH = 10  # 30^10 = 5.9e14 codes: 49 bits of entropy


# --- patients ---------------------------------------------------------------------------------


def get_patient(principal: Principal, patient_id: uuid.UUID) -> Patient:
    """A patient of the principal's site, or 404 exactly as for an unknown id."""
    patient = db.session.get(Patient, patient_id)
    if patient is None or patient.site_id != principal.site_id:
        raise NotFound()
    return patient


def search_patients(principal: Principal, q: str | None, status: str | None) -> sa.Select[Any]:
    """The principal's site's patients whose MRN or name contains ``q`` (any case), optionally
    of one status: a query the API pages and the nurse pages list."""
    query: sa.Select[Any] = sa.select(Patient).filter_by(site_id=principal.site_id)
    if status:
        query = query.filter_by(status=status)
    if q:
        # ``%`` and ``_`` typed by a nurse are characters to find, not wildcards (autoescape).
        needle = q.strip().lower()
        query = query.where(
            sa.or_(
                sa.func.lower(Patient.mrn).contains(needle, autoescape=True),
                sa.func.lower(Patient.family_name).contains(needle, autoescape=True),
                sa.func.lower(Patient.given_name).contains(needle, autoescape=True),
            )
        )
    return query


CONSENT_AT_REGISTRATION = {
    "consent_given_on": "decided_on",
    "consent_method": "method",
    "consent_witness": "witness",
}


MRN_TAKEN = "A patient with this MRN already exists at your site."


def create_patient(principal: Principal, data: Mapping[str, Any], *, now: datetime) -> Patient:
    """Register a patient at the principal's site (409 when the MRN is already there), with
    the care consent when it was collected at discharge (``consent_given_on`` and how)."""
    data = dict(data)
    consent = {
        CONSENT_AT_REGISTRATION[k]: data.pop(k) for k in list(data) if k in CONSENT_AT_REGISTRATION
    }
    _check_contact_channels(data)
    taken = db.select(Patient.id).filter_by(site_id=principal.site_id, mrn=data["mrn"])
    if db.session.execute(taken).first():
        raise Conflict(MRN_TAKEN)
    patient = Patient(
        site_id=principal.site_id,
        status="active",
        status_changed_at=now,
        created_at=now,
        updated_at=now,
        **data,
    )
    try:
        # A twin registered since the check above (a double click on the form) holds the MRN:
        # the unique constraint decides, and the loser gets the same 409, not a 500.
        with db.session.begin_nested():
            db.session.add(patient)
            db.session.flush()
    except sa.exc.IntegrityError:
        if db.session.execute(taken).first():
            raise Conflict(MRN_TAKEN) from None
        raise
    record(
        "patient.create",
        now=now,
        actor=principal,
        resource_type="patient",
        resource_id=patient.id,
        patient_id=patient.id,
    )
    if consent.get("decided_on") is not None:
        back = {f"/{v}": f"/{k}" for k, v in CONSENT_AT_REGISTRATION.items()}
        try:
            lifecycle.record_consent(
                principal, patient, {"purpose": "care", "decision": "given", **consent}, now=now
            )
        except ValidationProblem as problem:
            for error in problem.errors or []:
                error["pointer"] = back.get(error["pointer"], error["pointer"])
            raise
    return patient


def update_patient(
    principal: Principal, patient: Patient, changes: Mapping[str, Any], *, now: datetime
) -> Patient:
    merged = {
        "contact_channels": changes.get("contact_channels", patient.contact_channels),
        "phone": changes.get("phone", patient.phone),
        "email": changes.get("email", patient.email),
    }
    _check_contact_channels(merged)
    renamed = "mrn" in changes and changes["mrn"] != patient.mrn
    taken = db.select(Patient.id).filter_by(site_id=patient.site_id, mrn=changes.get("mrn"))
    if renamed and db.session.execute(taken).first():
        raise Conflict(MRN_TAKEN)
    changes = dict(changes)
    status = changes.pop("status", None)
    status_reason = changes.pop("status_reason", None)
    paused_until = changes.pop("paused_until", None)
    if status is None and (status_reason is not None or paused_until is not None):
        raise ValidationProblem([field_error("/status", "is required with a reason or a date")])
    moved = "timezone" in changes and changes["timezone"] != patient.timezone
    if renamed:
        try:
            # A twin given the same MRN since the check above (another nurse, a registration):
            # the unique constraint decides, and the loser gets the same 409, not a 500. (The
            # savepoint before the change: it flushes what is pending first.)
            with db.session.begin_nested():
                patient.mrn = changes["mrn"]
                db.session.flush()
        except sa.exc.IntegrityError:
            if db.session.execute(taken).first():
                raise Conflict(MRN_TAKEN) from None
            raise
    for key, value in changes.items():
        setattr(patient, key, value)
    patient.updated_at = now
    if moved:
        # 10:00 must stay 10:00 where the patient now lives (e.g. back home in Martinique).
        for procedure in patient.procedures:
            _replan(procedure, now=now, move_open=False)
    if changes:
        record(
            "patient.update",
            now=now,
            actor=principal,
            resource_type="patient",
            resource_id=patient.id,
            patient_id=patient.id,
            details={"fields": sorted(changes)},
        )
    if status is not None and (status != patient.status or paused_until is not None):
        try:
            lifecycle.change_status(
                principal, patient, status, status_reason or "", now=now, paused_until=paused_until
            )
        except ValidationProblem as problem:
            for error in problem.errors or []:
                error["pointer"] = {"/reason": "/status_reason"}.get(
                    error["pointer"], error["pointer"]
                )
            raise
    return patient


def contact_channel_errors(data: Mapping[str, Any]) -> list[dict[str, str]]:
    """A channel needs its contact point: SMS a phone number, e-mail an address."""
    errors = []
    channels = data.get("contact_channels") or []
    if "sms" in channels and not data.get("phone"):
        errors.append(field_error("/phone", "is required when contact_channels includes sms"))
    if "email" in channels and not data.get("email"):
        errors.append(field_error("/email", "is required when contact_channels includes email"))
    if len(set(channels)) != len(channels):
        errors.append(field_error("/contact_channels", "lists a channel twice"))
    return errors


def _check_contact_channels(data: Mapping[str, Any]) -> None:
    errors = contact_channel_errors(data)
    if errors:
        raise ValidationProblem(errors)


# --- procedures and their schedule -----------------------------------------------------------


def _protocol_for(kind: str) -> Protocol:
    """The latest protocol version that applies to a procedure kind."""
    protocols = db.session.execute(sa.select(Protocol)).scalars()
    matching: list[Protocol] = [p for p in protocols if kind in p.definition["applies_to"]]
    if not matching:
        raise LookupError(f"no protocol applies to procedure kind {kind!r}")
    return max(matching, key=lambda p: p.version)


def create_procedure(
    principal: Principal, patient: Patient, data: Mapping[str, Any], *, now: datetime
) -> Procedure:
    """Record the procedure and its baseline, and plan the follow-up from its protocol."""
    data = dict(data)
    baseline = data.pop("baseline")
    protocol = _protocol_for(data["kind"])
    procedure = Procedure(
        patient_id=patient.id,
        site_id=patient.site_id,
        protocol_id=protocol.id,
        created_at=now,
        created_by_id=principal.id if principal.is_staff else None,
        **data,
        **{f"baseline_{key}": value for key, value in baseline.items()},
    )
    db.session.add(procedure)
    db.session.flush()
    _plan_schedule(patient, procedure, protocol, now=now)
    record(
        "procedure.create",
        now=now,
        actor=principal,
        resource_type="procedure",
        resource_id=procedure.id,
        patient_id=patient.id,
    )
    db.session.refresh(patient, ["procedures"])
    return procedure


def _plan_schedule(
    patient: Patient,
    procedure: Procedure,
    protocol: Protocol,
    *,
    now: datetime,
    keep_days: set[int] | None = None,
) -> list[Assignment]:
    keep_days = keep_days or set()
    planned = []
    for item in plan(
        protocol.definition,
        procedure.discharged_on,
        patient.timezone,
        current_app.config["REMINDER_LOCAL_TIME"],
    ):
        if item.day in keep_days or item.closes_at <= now:
            # Never a questionnaire that is missed the moment it exists (a discharge entered
            # late, or corrected to an earlier date).
            continue
        assignment = Assignment(
            patient_id=patient.id,
            procedure_id=procedure.id,
            instrument_key=item.instrument_key,
            instrument_version=item.instrument_version,
            day=item.day,
            reason="protocol",
            opens_at=item.opens_at,
            closes_at=item.closes_at,
            status="pending",
            status_changed_at=now,
            created_at=now,
        )
        db.session.add(assignment)
        planned.append(assignment)
    db.session.flush()
    return planned


def update_procedure(
    principal: Principal, procedure: Procedure, changes: Mapping[str, Any], *, now: datetime
) -> Procedure:
    """Correct a procedure, audited with each field before and after.

    A new ``kind`` re-picks the protocol (sclerotherapy -> screws brings the weekly checks); a
    new discharge date or protocol re-plans every questionnaire not yet answered (see
    ``_replan``). Answers stay attached to the questionnaire they answered.
    """
    changes = dict(changes)
    baseline = changes.pop("baseline", None) or {}
    new_discharge = changes.get("discharged_on")
    performed_on = changes.get("performed_on", procedure.performed_on)
    discharged_on = new_discharge or procedure.discharged_on
    if discharged_on < performed_on:
        raise ValidationProblem([field_error("/discharged_on", "must be on or after performed_on")])
    if new_discharge is not None and new_discharge != procedure.discharged_on:
        first_answer = db.session.execute(
            db.select(sa.func.min(Response.answered_at)).filter_by(procedure_id=procedure.id)
        ).scalar()
        patient = db.session.get(Patient, procedure.patient_id)
        assert patient is not None
        if first_answer is not None:
            start = local_instant(new_discharge, time(0, 0), ZoneInfo(patient.timezone))
            if first_answer < start:
                raise ValidationProblem(
                    [field_error("/discharged_on", "is after answers already received")]
                )
    diff: dict[str, dict[str, Any]] = {}
    for key, value in changes.items():
        before = getattr(procedure, key)
        if before != value:
            diff[key] = {"before": _jsonable(before), "after": _jsonable(value)}
        setattr(procedure, key, value)
    for key, value in baseline.items():
        before = getattr(procedure, f"baseline_{key}")
        if before != value:
            diff[f"baseline.{key}"] = {"before": _jsonable(before), "after": _jsonable(value)}
        setattr(procedure, f"baseline_{key}", value)
    replan = "discharged_on" in diff
    if "kind" in diff:
        protocol = _protocol_for(procedure.kind)
        if protocol.id != procedure.protocol_id:
            old = db.session.get(Protocol, procedure.protocol_id)
            diff["protocol"] = {
                "before": f"{old.key}.v{old.version}" if old else None,
                "after": f"{protocol.key}.v{protocol.version}",
            }
            procedure.protocol_id = protocol.id
            db.session.flush()
            db.session.expire(procedure, ["protocol"])
            replan = True
    details: dict[str, Any] = {
        "fields": sorted(list(changes) + [f"baseline.{k}" for k in baseline]),
        "changes": diff,
    }
    if replan:
        details["schedule"] = _replan(procedure, now=now)
    record(
        "procedure.update",
        now=now,
        actor=principal,
        resource_type="procedure",
        resource_id=procedure.id,
        patient_id=procedure.patient_id,
        details=details,
    )
    return procedure


def _jsonable(value: Any) -> Any:
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def _replan(procedure: Procedure, *, now: datetime, move_open: bool = True) -> dict[str, Any]:
    """Re-plan the protocol's questionnaires not yet answered from the procedure as it now is.

    1. Kept as they are: the answered ones and the missed ones (history: they were asked).
    2. Not yet opened (pending, nothing sent): removed. Open ones (or due to open): cancelled
       with the reason ``rescheduled``, so what was sent about them stays explained; their
       waiting reminders are skipped. With ``move_open`` False (a new time zone: the dates are
       right), an open one stays as it is.
    3. The protocol is planned again for the days not kept, except a window that has already
       closed: a questionnaire that would be missed the moment it exists is not created.
    Returns the before and after of the schedule for the audit log.
    """
    patient = db.session.get(Patient, procedure.patient_id)
    protocol = db.session.get(Protocol, procedure.protocol_id)
    assert patient is not None and protocol is not None
    assignments = db.session.execute(
        db.select(Assignment).filter_by(procedure_id=procedure.id, reason="protocol")
    ).scalars()
    before = []
    kept_days = set()
    cancelled = []
    for assignment in assignments:
        if assignment.status == "cancelled":
            continue
        before.append(_slot(assignment))
        if assignment.status in {"completed", "missed"} or (
            not move_open and assignment.opens_at <= now
        ):
            kept_days.add(assignment.day)
        elif assignment.status == "pending" and assignment.opens_at > now:
            db.session.delete(assignment)
        else:
            assignment.status = "cancelled"
            assignment.status_reason = "rescheduled"
            assignment.status_changed_at = now
            cancelled.append(assignment.id)
    if cancelled:
        db.session.execute(
            sa.update(Reminder)
            .where(Reminder.assignment_id.in_(cancelled), Reminder.status == "pending")
            .values(status="skipped", reason="questionnaire_rescheduled", updated_at=now)
            .execution_options(synchronize_session=False)
        )
    db.session.flush()
    planned = _plan_schedule(patient, procedure, protocol, now=now, keep_days=kept_days)
    db.session.expire(procedure, ["schedule"])
    return {
        "before": sorted(before, key=lambda slot: slot["opens_at"]),
        "after": [_slot(a) for a in planned],
        "kept_days": sorted(kept_days),
    }


def _slot(assignment: Assignment) -> dict[str, Any]:
    return {
        "day": assignment.day,
        "instrument": assignment.instrument_key,
        "opens_at": assignment.opens_at.isoformat(),
        "status": assignment.status,
    }


# --- enrollment --------------------------------------------------------------------------------


def _hash_code(code: str) -> str:
    normalised = code.strip().upper().replace("-", "").replace(" ", "")
    return hashlib.sha256(normalised.encode()).hexdigest()


def format_code(code: str) -> str:
    return f"{code[:5]}-{code[5:]}"


def create_enrollment_code(
    principal: Principal, patient: Patient, *, now: datetime, revoke_devices: bool = False
) -> tuple[str, datetime]:
    """A new single-use code; the ones issued before for this patient stop working. With
    ``revoke_devices`` the phones enrolled before are cut off too (a lost or replaced phone).

    Only for a patient whose care consent is recorded and whose follow-up has not ended (409)."""
    lifecycle.require_care_consent(patient)
    if revoke_devices:
        for device in active_devices(patient):
            revoke_device(principal, patient, device, now=now)
    db.session.execute(
        sa.update(EnrollmentCode)
        .where(EnrollmentCode.patient_id == patient.id, EnrollmentCode.used_at.is_(None))
        .values(expires_at=now)
        .execution_options(synchronize_session=False)
    )
    code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    expires_at = now + timedelta(days=int(current_app.config["ENROLLMENT_CODE_TTL_DAYS"]))
    db.session.add(
        EnrollmentCode(
            patient_id=patient.id,
            code_hash=_hash_code(code),
            created_at=now,
            created_by_id=principal.id,
            expires_at=expires_at,
        )
    )
    record(
        "enrollment_code.create",
        now=now,
        actor=principal,
        resource_type="patient",
        resource_id=patient.id,
        patient_id=patient.id,
    )
    return format_code(code), expires_at


INVALID_CODE = "The code is wrong, already used or expired."


def claim_enrollment(
    code: str, device: Mapping[str, Any], *, now: datetime
) -> tuple[Patient, IssuedTokens]:
    """Enroll a phone with a code: register the device and open a patient session.

    The code is consumed with a conditional update, so two phones racing with one code cannot
    both win. Wrong, used and expired codes get the same answer.
    """
    row = db.session.execute(
        db.select(EnrollmentCode).filter_by(code_hash=_hash_code(code))
    ).scalar_one_or_none()
    if row is None or row.used_at is not None or row.expires_at <= now:
        record(
            "enrollment.claim",
            now=now,
            outcome="failure",
            actor=None,
            actor_type="anonymous",
            details={"reason": "invalid_code"},
        )
        raise BadRequest(INVALID_CODE, slug="invalid-enrollment-code")
    consumed = db.session.execute(
        sa.update(EnrollmentCode)
        .where(EnrollmentCode.id == row.id, EnrollmentCode.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if consumed.rowcount != 1:  # type: ignore[attr-defined]
        raise BadRequest(INVALID_CODE, slug="invalid-enrollment-code")
    patient = db.session.get(Patient, row.patient_id)
    assert patient is not None
    session = AuthSession(patient_id=patient.id, created_at=now, expires_at=now)
    db.session.add(session)
    db.session.flush()
    db.session.add(
        Device(
            patient_id=patient.id,
            session_id=session.id,
            platform=device["platform"],
            push_token=device.get("push_token"),
            app_version=device.get("app_version"),
            locale=device.get("locale"),
            timezone=device.get("timezone"),
            created_at=now,
            updated_at=now,
        )
    )
    principal = patient_principal(patient, session.id)
    issued = issue_tokens(session, principal, now)
    record(
        "enrollment.claim",
        now=now,
        actor=principal,
        resource_type="patient",
        resource_id=patient.id,
        patient_id=patient.id,
    )
    return patient, issued


def patient_principal(patient: Patient, session_id: uuid.UUID) -> Principal:
    return Principal(
        kind="patient",
        id=patient.id,
        site_id=patient.site_id,
        session_id=session_id,
        role="patient",
    )


def resolve_patient_session(session: AuthSession) -> Principal | None:
    """The patient principal of a device session (registered with the auth package)."""
    if session.patient_id is None:
        return None
    patient = db.session.get(Patient, session.patient_id)
    if patient is None or patient.status in {"withdrawn", "deceased"}:
        return None
    return patient_principal(patient, session.id)


def patient_session_principal(session_id: uuid.UUID, now: datetime) -> Principal | None:
    """The patient principal of a live device session, in one statement (registered with the
    auth package for access tokens): the session exists, is neither revoked nor expired, and
    its patient may still act (``resolve_patient_session``'s rule).

    The patient is loaded without its procedures and consents (loaded when read) and kept in
    ``g.patient`` for the request (``current_patient``), so the view does not read it again.
    """
    patient: Patient | None = db.session.execute(
        _session_patient(), {"session_id": session_id, "now": now}
    ).scalar_one_or_none()
    if patient is None:
        return None
    g.patient = patient
    return patient_principal(patient, session_id)


@functools.cache
def _session_patient() -> sa.Select[Any]:
    """``patient_session_principal``'s statement, built once (the values are bound)."""
    return (
        sa.select(Patient)
        .join(AuthSession, AuthSession.patient_id == Patient.id)
        .where(
            AuthSession.id == sa.bindparam("session_id", type_=AuthSession.id.type),
            AuthSession.revoked_at.is_(None),
            AuthSession.expires_at > sa.bindparam("now", type_=AuthSession.expires_at.type),
            Patient.status.not_in(("withdrawn", "deceased")),
        )
        .options(orm.lazyload(Patient.procedures), orm.lazyload(Patient.consents))
    )


def update_device(principal: Principal, data: Mapping[str, Any], *, now: datetime) -> Device:
    """The OS rotated the push token: store it on this session's device (and revive it)."""
    device: Device | None = db.session.execute(
        db.select(Device).filter_by(session_id=principal.session_id)
    ).scalar_one_or_none()
    if device is None:
        raise NotFound()
    device.platform = data["platform"]
    device.push_token = data["push_token"]
    device.push_disabled_at = None
    device.push_disabled_reason = None
    device.updated_at = now
    return device


def list_devices(principal: Principal, patient: Patient, *, now: datetime) -> list[Device]:
    """The patient's enrolled phones, newest first, with their state (an audited read)."""
    devices = devices_of(patient)
    record(
        "patient.devices.read",
        now=now,
        actor=principal,
        resource_type="patient",
        resource_id=patient.id,
        patient_id=patient.id,
    )
    return devices


def devices_of(patient: Patient) -> list[Device]:
    """The patient's phones, newest first, each with its session (one query; not audited:
    the caller's read is)."""
    return list(
        db.session.execute(
            db.select(Device)
            .filter_by(patient_id=patient.id)
            .order_by(Device.created_at.desc(), Device.id)
        )
        .unique()
        .scalars()
    )


def active_devices(patient: Patient) -> list[Device]:
    return [device for device in devices_of(patient) if device.status == "active"]


def get_device(patient: Patient, device_id: uuid.UUID) -> Device:
    device = db.session.get(Device, device_id)
    if device is None or device.patient_id != patient.id:
        raise NotFound()
    return device


def revoke_device(
    principal: Principal, patient: Patient, device: Device, *, now: datetime
) -> Device:
    """Cut a phone off: its session (refresh chain and access tokens) ends at once and it gets
    no more pushes. Revoking a revoked phone changes nothing and is not audited again."""
    if device.status == "revoked":
        return device
    if device.session is not None:
        revoke_session(device.session, now=now, reason="device_revoked")
    device.push_disabled_at = now
    device.push_disabled_reason = "revoked"
    device.updated_at = now
    record(
        "device.revoke",
        now=now,
        actor=principal,
        resource_type="device",
        resource_id=device.id,
        patient_id=patient.id,
    )
    db.session.flush()
    return device


def site_of(patient: Patient) -> Site:
    site = db.session.get(Site, patient.site_id)
    assert site is not None
    return site


def today_for(patient: Patient, now: datetime) -> date:
    return now.astimezone(ZoneInfo(patient.timezone)).date()
