"""Dead contact points: recorded when a provider says so, forgotten when the contact changes.

A phone number or e-mail address that a provider refused for good (invalid, unsubscribed) is
disabled on the patient (``phone_disabled_at``/``email_disabled_at`` and a reason); a push token
on its device (``push_disabled_at``). Each disabling is an audit event. Staff correcting the
number or address revives the channel: the attribute listeners below clear the flag whenever the
value changes, whichever service changes it, so no edit path can forget to.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from backend.audit.services import record
from backend.patients.models import Device, Patient


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
