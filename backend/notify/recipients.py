"""Who the outbox writes to, read in bulk: the one module of the outbox that reads the patient,
device and staff tables (besides ``contacts``, which disables a dead contact point).

The claim asks for the recipients of a whole batch at once (``load``) and gets plain data back:
where each can be reached, in which zone its quiet hours fall, and whether it is still someone
to write to at all. Whether a *message* is still useful is not decided here, nor anywhere in
the outbox: the domain that enqueued it says so (``backend.signals.outbox_still_wanted``).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from backend.auth.models import Site, User
from backend.db import among
from backend.extensions import db
from backend.patients.models import Device, Patient


@dataclass(frozen=True)
class PushDevice:
    id: uuid.UUID
    platform: str
    token: str


@dataclass(frozen=True)
class Recipient:
    """A patient's or staff member's contact points, as the claim needs them."""

    stopped: str | None  # why nothing more goes to them (patient_paused, user_inactive), or None
    zone: ZoneInfo | None  # a patient's zone (quiet hours); None for staff
    email: str | None = None
    email_disabled: bool = False
    phone: str | None = None
    phone_disabled: bool = False
    devices: list[PushDevice] = field(default_factory=list)  # usable ones, the last used first


@dataclass
class Recipients:
    patients: dict[uuid.UUID, Recipient]
    users: dict[uuid.UUID, Recipient]


def load(patient_ids: Iterable[uuid.UUID], user_ids: Iterable[uuid.UUID]) -> Recipients:
    """The recipients of a batch, in three queries whatever its size (columns, not entities:
    a patient's procedures and schedule are never loaded to send a reminder)."""
    patient_ids, user_ids = set(patient_ids), set(user_ids)
    patients: dict[uuid.UUID, Recipient] = {}
    if patient_ids:
        devices: dict[uuid.UUID, list[PushDevice]] = defaultdict(list)
        for row in db.session.execute(
            db.select(Device.id, Device.patient_id, Device.platform, Device.push_token)
            .where(
                among(db.session, Device.patient_id, patient_ids),
                Device.push_token.is_not(None),
                Device.push_disabled_at.is_(None),
            )
            .order_by(Device.updated_at.desc(), Device.id)
        ):
            devices[row.patient_id].append(PushDevice(row.id, row.platform, row.push_token))
        for row in db.session.execute(
            db.select(
                Patient.id,
                Patient.status,
                Patient.timezone,
                Patient.email,
                Patient.email_disabled_at,
                Patient.phone,
                Patient.phone_disabled_at,
            ).where(among(db.session, Patient.id, patient_ids))
        ):
            patients[row.id] = Recipient(
                stopped=None if row.status == "active" else f"patient_{row.status}",
                zone=ZoneInfo(row.timezone),
                email=row.email,
                email_disabled=row.email_disabled_at is not None,
                phone=row.phone,
                phone_disabled=row.phone_disabled_at is not None,
                devices=devices.get(row.id, []),
            )
    users: dict[uuid.UUID, Recipient] = {}
    if user_ids:
        for row in db.session.execute(
            db.select(User.id, User.email, User.is_active).where(User.id.in_(user_ids))
        ):
            users[row.id] = Recipient(
                stopped=None if row.is_active else "user_inactive", zone=None, email=row.email
            )
    return Recipients(patients, users)


def zone_of(patient_id: uuid.UUID) -> ZoneInfo:
    """A patient's zone (their quiet hours are counted in it)."""
    zone = db.session.execute(
        db.select(Patient.timezone).where(Patient.id == patient_id)
    ).scalar_one()
    return ZoneInfo(zone)


def staff_of(site_id: uuid.UUID, roles: Iterable[str]) -> tuple[str, list[uuid.UUID]]:
    """A site's locale and its active staff members having one of ``roles``, by e-mail."""
    locale = db.session.execute(db.select(Site.locale).where(Site.id == site_id)).scalar()
    if locale is None:
        raise LookupError(f"no site {site_id}")
    users = db.session.execute(
        db.select(User.id)
        .where(User.site_id == site_id, User.role.in_(list(roles)), User.is_active.is_(True))
        .order_by(User.email)
    ).scalars()
    return locale, list(users)
