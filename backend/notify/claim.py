"""Claim: lease a batch of due deliveries to one worker, and decide what each needs.

Due deliveries are read off the index that gives the claim order (``status``, due time,
``id``), ``FOR UPDATE SKIP LOCKED`` on PostgreSQL so that concurrent schedulers each take other
rows without sorting all that is due; SQLite has one writer at a time (``BEGIN IMMEDIATE``), so
there the read and its update are one atomic step. Each claimed delivery gets a lease
(``claimed_by``, ``claimed_until``) and an in-flight attempt row *before* it is sent
(at-least-once: a worker that dies after the send leaves an attempt the next claim marks
``interrupted``). What is no longer useful is closed (its domain said so through
``outbox_still_wanted``, its ``expires_at`` passed, or its recipient is no longer followed),
what falls in the patient's quiet hours is moved to their end, and a channel without a contact
point fails over to the next. The job commits the claim, then sends with no transaction open.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app

from backend import signals
from backend.batches import POISON_DELAY
from backend.db import among, insert_rows, told
from backend.extensions import db
from backend.notify import recipients
from backend.notify.channels import Channels, route_of
from backend.notify.models import Delivery, DeliveryAttempt, Notification
from backend.notify.quiet_hours import sendable_at
from backend.notify.record import fail_over, finish, set_status
from backend.notify.settings import OutboxSettings
from backend.notify.texts import (
    PATIENT_TEXTS,
    Text,
    reminder_link,
    render,
    save_reminder_links,
    staff_texts,
)
from notifications import Message

log = logging.getLogger(__name__)

_attempts = DeliveryAttempt.__table__
_deliveries = Delivery.__table__


@dataclass(frozen=True)
class SendJob:
    """A claimed delivery, as plain data: sending it needs no database access."""

    delivery_id: uuid.UUID
    attempt_id: uuid.UUID
    attempt: int  # its number (the delivery's attempts once leased)
    notification_id: uuid.UUID
    patient_id: uuid.UUID | None  # the recipient when a patient (quiet hours, dead contacts)
    zone: str | None  # the patient's zone, for a retry's quiet hours
    expires_at: datetime | None
    route: str
    device_id: uuid.UUID | None
    message: Message
    worker: str
    lease_until: datetime
    fallbacks: bool  # other channels wait in standby behind this one


@dataclass
class Claim:
    handled: int  # rows this claim took a decision on (sent or not)
    jobs: list[SendJob]


@dataclass
class _Batch:
    """What deciding about a batch needs, loaded in a bounded number of queries (and held here:
    the session's identity map alone keeps only weak references)."""

    notifications: dict[uuid.UUID, Notification]
    recipients: recipients.Recipients
    unwanted: dict[str, tuple[str, str]]
    # The answer links the batch's messages carry, inserted together (``_lease``).
    links: list[dict[str, Any]] = field(default_factory=list)


def claim_due_deliveries(
    now: datetime,
    *,
    worker: str,
    settings: OutboxSettings,
    channels: Channels,
    limit: int | None = None,
) -> Claim:
    """Lease up to ``limit`` (else ``settings.batch_size``) due deliveries to ``worker``;
    flushes."""
    rows = _due(now, limit or settings.batch_size)
    if not rows:
        return Claim(0, [])
    batch = _load_batch(rows, now)
    lease_until = now + timedelta(seconds=settings.lease_seconds)
    jobs: list[SendJob] = []
    leased: list[Delivery] = []
    for delivery in rows:
        try:
            job = _decide(delivery, batch, now, worker, lease_until, settings, channels)
        except Exception as exc:  # noqa: BLE001 - one bad row must not block the queue
            # E.g. a text key this (older) process does not know yet during a rolling deploy.
            log.error(
                "delivery could not be prepared (%s); postponed",
                type(exc).__name__,
                extra={"delivery": str(delivery.id)},
            )
            set_status(delivery, "pending", "internal_error", now)
            delivery.next_attempt_at = now + POISON_DELAY
            continue
        if job is not None:
            jobs.append(job)
            leased.append(delivery)
    _lease(leased, jobs, now, worker, lease_until)
    save_reminder_links(batch.links)
    db.session.flush()
    return Claim(len(rows), jobs)


def _lease(
    deliveries: Sequence[Delivery],
    jobs: Sequence[SendJob],
    now: datetime,
    worker: str,
    lease_until: datetime,
) -> None:
    """Lease the deliveries about to be sent and open their attempts: two statements for the
    batch (the unit of work's one UPDATE per row and per-object INSERT bookkeeping were most of
    a claim's time). The loaded rows are told their new values, without a change to flush."""
    if not jobs:
        return
    d = _deliveries.c
    db.session.execute(
        sa.update(_deliveries)
        .where(among(db.session, d.id, [job.delivery_id for job in jobs]))
        .values(
            status="sending",
            claimed_by=worker,
            claimed_until=lease_until,
            attempts=d.attempts + 1,
            updated_at=now,
        )
    )
    insert_rows(
        db.session,
        _attempts,
        [
            {
                "id": job.attempt_id,
                "delivery_id": job.delivery_id,
                "number": job.attempt,
                "channel": delivery.channel,
                "device_id": job.device_id,
                "worker": worker,
                "started_at": now,
            }
            for delivery, job in zip(deliveries, jobs, strict=True)
        ],
    )
    for delivery, job in zip(deliveries, jobs, strict=True):
        told(
            delivery,
            {
                "status": "sending",
                "claimed_by": worker,
                "claimed_until": lease_until,
                "attempts": job.attempt,
                "updated_at": now,
            },
        )


def _due(now: datetime, limit: int) -> list[Delivery]:
    """Lapsed leases first (their worker died or hung), then pending deliveries, each read off
    its own index in (due time, id) order: two index range scans, never a sort of all due."""
    lapsed = _locked(
        db.select(Delivery)
        .where(Delivery.status == "sending", Delivery.claimed_until <= now)
        .order_by(Delivery.claimed_until, Delivery.id),
        limit,
    )
    if len(lapsed) >= limit:
        return lapsed
    pending = _locked(
        db.select(Delivery)
        .where(Delivery.status == "pending", Delivery.next_attempt_at <= now)
        .order_by(Delivery.next_attempt_at, Delivery.id),
        limit - len(lapsed),
    )
    return [*lapsed, *pending]


def _locked(query: sa.Select[Any], limit: int) -> list[Delivery]:
    return list(db.session.execute(query.limit(limit).with_for_update(skip_locked=True)).scalars())


def _load_batch(rows: Sequence[Delivery], now: datetime) -> _Batch:
    notifications = {
        n.id: n
        for n in db.session.execute(
            db.select(Notification).where(
                among(db.session, Notification.id, {d.notification_id for d in rows})
            )
        ).scalars()
    }
    found = recipients.load(
        (n.patient_id for n in notifications.values() if n.patient_id),
        (n.user_id for n in notifications.values() if n.user_id),
    )
    keys = {n.wanted_key for n in notifications.values() if n.wanted_key}
    unwanted: dict[str, tuple[str, str]] = {}
    if keys:
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        for _receiver, verdicts in signals.outbox_still_wanted.send(app, keys=keys, now=now):
            unwanted.update(verdicts or {})
    return _Batch(notifications, found, unwanted)


def _decide(
    delivery: Delivery,
    batch: _Batch,
    now: datetime,
    worker: str,
    lease_until: datetime,
    settings: OutboxSettings,
    channels: Channels,
) -> SendJob | None:
    """Lease one delivery and describe its send, or settle it here (None)."""
    notification = batch.notifications[delivery.notification_id]
    recipient = (
        batch.recipients.patients[notification.patient_id]
        if notification.patient_id
        else batch.recipients.users[notification.user_id]  # type: ignore[index]
    )
    if delivery.status == "sending":
        _interrupt(delivery, now)
    verdict = _no_longer_useful(notification, recipient, batch, now)
    if verdict is not None:
        finish(notification, *verdict, now)
        return None
    if delivery.attempts >= settings.max_attempts:
        fail_over(delivery, "gave_up", now)
        return None
    zone = recipient.zone
    if zone is not None and (quiet_end := sendable_at(now, zone, settings.quiet_hours)) > now:
        delivery.status = "pending"
        delivery.next_attempt_at = quiet_end
        delivery.updated_at = now
        return None
    target = _route(delivery, notification, recipient, channels)
    if isinstance(target, str):
        delivery.attempts += 1
        db.session.add(
            DeliveryAttempt(
                delivery_id=delivery.id,
                number=delivery.attempts,
                channel=delivery.channel,
                worker=worker,
                started_at=now,
                finished_at=now,
                outcome="no_route",
                error_code=target,
            )
        )
        fail_over(delivery, target, now)
        return None
    route, to, device = target
    message = _message(notification, delivery, to, now, batch.links)  # before any change
    # Leased, with its attempt opened, for the whole batch at once (``_lease``).
    return SendJob(
        delivery_id=delivery.id,
        attempt_id=uuid.uuid4(),
        attempt=delivery.attempts + 1,
        notification_id=notification.id,
        patient_id=notification.patient_id,
        zone=zone.key if zone is not None else None,
        expires_at=notification.expires_at,
        route=route,
        device_id=device.id if device else None,
        message=message,
        worker=worker,
        lease_until=lease_until,
        fallbacks=any(d.status == "standby" for d in notification.deliveries),
    )


def _interrupt(delivery: Delivery, now: datetime) -> None:
    """The previous holder's lease ran out: its in-flight attempt may or may not have been sent."""
    db.session.execute(
        sa.update(DeliveryAttempt)
        .where(DeliveryAttempt.delivery_id == delivery.id, DeliveryAttempt.outcome.is_(None))
        .values(outcome="interrupted", finished_at=now)
        .execution_options(synchronize_session=False)
    )
    log.warning("delivery lease expired, taking it up again", extra={"delivery": str(delivery.id)})
    delivery.status = "pending"
    delivery.claimed_by = None
    delivery.claimed_until = None


def _no_longer_useful(
    notification: Notification, recipient: recipients.Recipient, batch: _Batch, now: datetime
) -> tuple[str, str] | None:
    """(status, reason) closing a notification that would no longer help, or None."""
    if notification.expires_at is not None and now >= notification.expires_at:
        return ("expired", "useful_until_passed")
    if recipient.stopped is not None:
        return ("cancelled", recipient.stopped)
    if notification.wanted_key is not None:
        return batch.unwanted.get(notification.wanted_key)
    return None


def _route(
    delivery: Delivery,
    notification: Notification,
    recipient: recipients.Recipient,
    channels: Channels,
) -> tuple[str, str, recipients.PushDevice | None] | str:
    """(route, recipient, device) to send on, or why there is none."""
    device: recipients.PushDevice | None = None
    if delivery.channel == "push":
        if not recipient.devices:
            return "no_push_device"
        device = recipient.devices[0]  # the phone used last
        route, to = route_of("push", device.platform), device.token
    elif delivery.channel == "sms":
        if not recipient.phone:
            return "no_phone"
        if recipient.phone_disabled:
            return "phone_disabled"
        route, to = "sms", recipient.phone
    else:
        if not recipient.email:
            return "no_email"
        if recipient.email_disabled:
            return "email_disabled"
        route, to = "email", recipient.email
    if channels.transport(route) is None:
        return "channel_not_configured"
    return route, to, device


def _message(
    notification: Notification,
    delivery: Delivery,
    to: str,
    now: datetime,
    links: list[dict[str, Any]],
) -> Message:
    table = PATIENT_TEXTS if notification.patient_id else staff_texts()
    text: Text = render(table, notification.text_key, notification.locale)
    return Message(
        to=to,
        title=text.title,
        body=text.body,
        link=reminder_link(
            notification.link,
            notification.wanted_key,
            delivery.channel,
            patient_id=notification.patient_id,
            expires_at=notification.expires_at,
            now=now,
            links=links,
        ),
        collapse_key=notification.collapse_key,
        # Stable across retries of this delivery: SMTP Message-ID, APNs apns-id.
        idempotency_key=str(delivery.id),
    )
