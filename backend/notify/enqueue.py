"""Enqueue: a notification and its deliveries written in the caller's transaction.

A rolled-back decision sends nothing and a committed one is never forgotten. The enqueuing
domain says, on the row, until when the message is useful (``expires_at``) and under which key
it will be asked whether it still wants it (``wanted_key``, e.g. ``questionnaire:<id>``: see
``backend.signals.outbox_still_wanted``). The outbox stores the key and never reads into it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import sqlalchemy as sa

from backend.db import insert_rows, new_id
from backend.extensions import db
from backend.notify import recipients
from backend.notify.models import Delivery, Notification
from backend.notify.texts import PATIENT_TEXTS, staff_texts

PATIENT_CHANNELS = ("push", "sms", "email")


class PatientRecipient(Protocol):
    """What enqueueing needs of a patient (a ``Patient`` row has it), read only."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def site_id(self) -> uuid.UUID: ...
    @property
    def locale(self) -> str: ...
    @property
    def contact_channels(self) -> list[str]: ...


@dataclass(frozen=True)
class PatientMessage:
    """One patient notification of a batch (``enqueue_patient_notifications``)."""

    patient: PatientRecipient
    kind: str
    text_key: str
    dedupe_key: str
    link: str | None = None
    collapse_key: str | None = None
    expires_at: datetime | None = None
    wanted_key: str | None = None


def enqueue_patient_notification(
    patient: PatientRecipient,
    kind: str,
    *,
    now: datetime,
    text_key: str,
    dedupe_key: str,
    link: str | None = None,
    collapse_key: str | None = None,
    expires_at: datetime | None = None,
    wanted_key: str | None = None,
) -> Notification | None:
    """Write a notification for a patient, one delivery per contact channel in their order.

    None when the patient has no contact channel, or when ``dedupe_key`` was enqueued before
    (checked, and a concurrent twin loses on the unique constraint in a savepoint).
    """
    _check_text(text_key)
    channels = _channels(patient)
    if not channels:
        return None
    notification = Notification(
        id=uuid.uuid4(),  # known before the flush: the caller may point at it
        kind=kind,
        text_key=text_key,
        patient_id=patient.id,
        site_id=patient.site_id,
        locale=patient.locale,
        link=link,
        collapse_key=collapse_key,
        dedupe_key=dedupe_key,
        wanted_key=wanted_key,
        status="pending",
        created_at=now,
        expires_at=expires_at,
    )
    return notification if _insert_once(notification, channels, now) else None


def enqueue_patient_notifications(
    messages: Sequence[PatientMessage], *, now: datetime
) -> list[uuid.UUID | None]:
    """Write a batch of patient notifications in two statements; the id of each, or None when
    its patient has no contact channel.

    For a caller holding locks that rule out a twin (the reminder job holds its reminder rows),
    so there is no duplicate check: the unique ``dedupe_key`` still stands behind it.
    """
    notifications: list[dict[str, object]] = []
    deliveries: list[dict[str, object]] = []
    ids: list[uuid.UUID | None] = []
    for message in messages:
        _check_text(message.text_key)
        channels = _channels(message.patient)
        if not channels:
            ids.append(None)
            continue
        notification_id = new_id()
        ids.append(notification_id)
        notifications.append(
            {
                "id": notification_id,
                "kind": message.kind,
                "text_key": message.text_key,
                "patient_id": message.patient.id,
                "user_id": None,
                "site_id": message.patient.site_id,
                "locale": message.patient.locale,
                "link": message.link,
                "collapse_key": message.collapse_key,
                "dedupe_key": message.dedupe_key,
                "wanted_key": message.wanted_key,
                "status": "pending",
                "created_at": now,
                "expires_at": message.expires_at,
            }
        )
        deliveries.extend(_delivery_rows(notification_id, channels, now))
    insert_rows(db.session, Notification.__table__, notifications)
    insert_rows(db.session, Delivery.__table__, deliveries)
    return ids


def enqueue_staff_notification(
    site_id: uuid.UUID,
    roles: Iterable[str],
    kind: str,
    *,
    now: datetime,
    subject_key: str,
    link: str | None,
    dedupe_key: str,
    expires_at: datetime | None = None,
) -> list[Notification]:
    """E-mail every active staff member of a site having one of ``roles``, in the site's locale.

    One notification per person, deduplicated on ``(dedupe_key, person)``: calling this again
    for the same event (a retried job, a second scheduler) e-mails nobody twice. The text is
    ``staff_texts()[subject_key]`` (no health content; a domain gives its own through the
    ``staff_texts`` signal);
    ``link`` points into the nurse tools. Returns the notifications written now.
    """
    if subject_key not in staff_texts():
        raise ValueError(f"unknown staff text {subject_key!r}")
    locale, users = recipients.staff_of(site_id, roles)
    written = []
    for user_id in users:
        notification = Notification(
            kind=kind,
            text_key=subject_key,
            user_id=user_id,
            site_id=site_id,
            locale=locale,
            link=link,
            dedupe_key=f"{dedupe_key}:{user_id}",
            status="pending",
            created_at=now,
            expires_at=expires_at,
        )
        if _insert_once(notification, ["email"], now):
            written.append(notification)
    return written


def _check_text(text_key: str) -> None:
    if text_key not in PATIENT_TEXTS:
        raise ValueError(f"unknown patient text {text_key!r}")


def _channels(patient: PatientRecipient) -> list[str]:
    return [c for c in (patient.contact_channels or []) if c in PATIENT_CHANNELS]


def _insert_once(notification: Notification, channels: Sequence[str], now: datetime) -> bool:
    """Insert with its deliveries unless the dedupe key exists; a concurrent twin loses cleanly."""
    exists = db.session.execute(
        db.select(Notification.id).filter_by(dedupe_key=notification.dedupe_key)
    ).first()
    if exists:
        return False
    for row in _delivery_rows(None, channels, now):
        notification.deliveries.append(Delivery(**row))
    try:
        with db.session.begin_nested():
            db.session.add(notification)
    except sa.exc.IntegrityError:
        return False
    return True


def _delivery_rows(
    notification_id: uuid.UUID | None, channels: Sequence[str], now: datetime
) -> list[dict[str, object]]:
    """The first channel pending now, the others in standby behind it, in the patient's order."""
    rows: list[dict[str, object]] = []
    for position, channel in enumerate(channels):
        row: dict[str, object] = {
            "channel": channel,
            "position": position,
            "status": "pending" if position == 0 else "standby",
            "next_attempt_at": now if position == 0 else None,
            "attempts": 0,
            "created_at": now,
            "updated_at": now,
        }
        if notification_id is not None:
            row |= {"id": new_id(), "notification_id": notification_id}
        rows.append(row)
    return rows
