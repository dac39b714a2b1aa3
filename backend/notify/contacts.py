"""Dead contact points: recorded when a provider says so, forgotten when the contact changes.

A phone number or e-mail address that a provider refused for good (invalid, unsubscribed) is
disabled on the patient (``phone_disabled_at``/``email_disabled_at`` and a reason); a push token
on its device (``push_disabled_at``). Each disabling is an audit event. Staff correcting the
number or address revives the channel: the attribute listeners below clear the flag whenever the
value changes, whichever service changes it, so no edit path can forget to.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from backend.audit.services import record
from backend.extensions import db
from backend.patients.models import Device, Patient


def contact_dead(
    patient_id: uuid.UUID, channel: str, device_id: uuid.UUID | None, reason: str, *, now: datetime
) -> bool:
    """A provider said the patient's contact point on ``channel`` is dead for good: disable it.
    True when it was a phone's push token and the patient has another usable phone."""
    from sqlalchemy.orm import lazyload

    patient = db.session.get(Patient, patient_id, options=[lazyload("*")])
    assert patient is not None
    if channel == "push":
        if device_id is None:
            return False
        device = db.session.get(Device, device_id)
        if device is not None and device.push_disabled_at is None:
            disable_push(patient, device, reason, now=now)
        db.session.flush()
        another = db.session.execute(
            db.select(Device.id).where(
                Device.patient_id == patient.id,
                Device.push_token.is_not(None),
                Device.push_disabled_at.is_(None),
            )
        ).first()
        return another is not None
    if channel == "sms":
        disable_phone(patient, reason, now=now)
    elif channel == "email":
        disable_email(patient, reason, now=now)
    return False


def disable_phone(patient: Patient, reason: str, *, now: datetime) -> None:
    patient.phone_disabled_at = now
    patient.phone_disabled_reason = reason
    _audit(patient, "sms", reason, now)


def disable_email(patient: Patient, reason: str, *, now: datetime) -> None:
    patient.email_disabled_at = now
    patient.email_disabled_reason = reason
    _audit(patient, "email", reason, now)


def disable_push(patient: Patient, device: Device, reason: str, *, now: datetime) -> None:
    device.push_disabled_at = now
    device.push_disabled_reason = reason
    device.updated_at = now
    _audit(patient, "push", reason, now, device=device)


def _audit(
    patient: Patient, channel: str, reason: str, now: datetime, device: Device | None = None
) -> None:
    record(
        "contact.disable",
        now=now,
        actor=None,
        actor_type="system",
        resource_type="device" if device else "patient",
        resource_id=device.id if device else patient.id,
        patient_id=patient.id,
        site_id=patient.site_id,
        details={"channel": channel, "reason": reason},
    )


@sa.event.listens_for(Patient.phone, "set", active_history=True)
def _phone_changed(target: Patient, value: Any, old: Any, _initiator: Any) -> None:
    if value != old:
        target.phone_disabled_at = None
        target.phone_disabled_reason = None


@sa.event.listens_for(Patient.email, "set", active_history=True)
def _email_changed(target: Patient, value: Any, old: Any, _initiator: Any) -> None:
    if value != old:
        target.email_disabled_at = None
        target.email_disabled_reason = None
