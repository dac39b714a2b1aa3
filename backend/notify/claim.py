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

import functools
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
from backend.db import among, insert_rows, new_id, told
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
    channel: str
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
    flushes.

    The batch is read as columns (each delivery with its notification's). A delivery that is
    simply sent (nearly all) is decided from them; one that needs a state change besides its
    lease (a lapsed lease, a message no longer useful, attempts used up, quiet hours, no route,
    or an error preparing it) is loaded as ORM objects, with the others of its kind, and decided
    by ``_decide``. Building ORM objects for every delivery of a batch was a third of a
    scheduler's CPU per reminder.
    """
    rows = _due(now, limit or settings.batch_size)
    if not rows:
        return Claim(0, [])
    batch = _load_batch(rows, now)
    lease_until = now + timedelta(seconds=settings.lease_seconds)
    jobs: list[SendJob] = []
    slow: list[uuid.UUID] = []
    for row in rows:
        try:
            job = _decide_simple(row, batch, now, worker, lease_until, settings, channels)
        except Exception:  # noqa: BLE001 - decided again below, where a failure is handled
            job = None
        if job is None:
            slow.append(row.id)
        else:
            jobs.append(job)
    leased: list[Delivery] = []
    for delivery in _load_deliveries(slow, batch):
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
    _lease(jobs, leased, now, worker, lease_until)
    save_reminder_links(batch.links)
    db.session.flush()
    return Claim(len(rows), jobs)


def _lease(
    jobs: Sequence[SendJob],
    loaded: Sequence[Delivery],
    now: datetime,
    worker: str,
    lease_until: datetime,
) -> None:
    """Lease the deliveries about to be sent and open their attempts: two statements for the
    batch (the unit of work's one UPDATE per row and per-object INSERT bookkeeping were most of
    a claim's time). Those of them ``loaded`` as ORM objects are told their new values, with no
    change to flush."""
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
                "channel": job.channel,
                "device_id": job.device_id,
                "worker": worker,
                "started_at": now,
            }
            for job in jobs
        ],
    )
    attempts = {job.delivery_id: job.attempt for job in jobs}
    for delivery in loaded:
        told(
            delivery,
            {
                "status": "sending",
                "claimed_by": worker,
                "claimed_until": lease_until,
                "attempts": attempts[delivery.id],
                "updated_at": now,
            },
        )


@functools.cache
def _claimed() -> tuple[Any, ...]:
    """What the claim reads of a due delivery and its notification (``_decide_simple``): the
    names are those of the attributes ``_decide`` reads of the ORM objects, so the helpers read
    both. (Built on first use: the mappers are configured by then.)"""
    standby = _deliveries.alias("standby")
    return (
        Delivery.id,
        Delivery.status,
        Delivery.attempts,
        Delivery.channel,
        Delivery.notification_id,
        Notification.patient_id,
        Notification.user_id,
        Notification.expires_at,
        Notification.wanted_key,
        Notification.text_key,
        Notification.locale,
        Notification.link,
        Notification.collapse_key,
        # Other channels wait in standby behind this one (a send cancels them).
        sa.exists()
        .where(
            standby.c.notification_id == Delivery.notification_id,
            standby.c.status == "standby",
        )
        .label("fallbacks"),
    )


def _due(now: datetime, limit: int) -> list[sa.Row[Any]]:
    """Lapsed leases first (their worker died or hung), then pending deliveries, each read off
    its own index in (due time, id) order: two index range scans, never a sort of all due."""
    lapsed = _locked(
        sa.and_(Delivery.status == "sending", Delivery.claimed_until <= now),
        (Delivery.claimed_until, Delivery.id),
        limit,
    )
    if len(lapsed) >= limit:
        return lapsed
    pending = _locked(
        sa.and_(Delivery.status == "pending", Delivery.next_attempt_at <= now),
        (Delivery.next_attempt_at, Delivery.id),
        limit - len(lapsed),
    )
    return [*lapsed, *pending]


def _locked(where: Any, order: tuple[Any, ...], limit: int) -> list[sa.Row[Any]]:
    return list(
        db.session.execute(
            sa.select(*_claimed())
            .join(Notification, Notification.id == Delivery.notification_id)
            .where(where)
            .order_by(*order)
            .limit(limit)
            .with_for_update(of=Delivery, skip_locked=True)
        )
    )


def _load_batch(rows: Sequence[sa.Row[Any]], now: datetime) -> _Batch:
    found = recipients.load(
        (row.patient_id for row in rows if row.patient_id),
        (row.user_id for row in rows if row.user_id),
    )
    keys = {row.wanted_key for row in rows if row.wanted_key}
    unwanted: dict[str, tuple[str, str]] = {}
    if keys:
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        for _receiver, verdicts in signals.outbox_still_wanted.send(app, keys=keys, now=now):
            unwanted.update(verdicts or {})
    return _Batch({}, found, unwanted)


def _load_deliveries(ids: Sequence[uuid.UUID], batch: _Batch) -> list[Delivery]:
    """The deliveries ``_decide`` handles, as ORM objects, with their notifications (kept in
    ``batch``): two statements, and a third for the notifications' deliveries."""
    if not ids:
        return []
    deliveries = list(
        db.session.execute(db.select(Delivery).where(among(db.session, Delivery.id, ids))).scalars()
    )
    batch.notifications.update(
        (n.id, n)
        for n in db.session.execute(
            db.select(Notification).where(
                among(db.session, Notification.id, {d.notification_id for d in deliveries})
            )
        ).scalars()
    )
    order = {delivery_id: i for i, delivery_id in enumerate(ids)}
    return sorted(deliveries, key=lambda d: order[d.id])


def _decide_simple(
    row: sa.Row[Any],
    batch: _Batch,
    now: datetime,
    worker: str,
    lease_until: datetime,
    settings: OutboxSettings,
    channels: Channels,
) -> SendJob | None:
    """The send of a due delivery that needs nothing but its lease, from its columns; None when
    it needs more (``_decide`` then takes it)."""
    if row.status != "pending" or row.attempts >= settings.max_attempts:
        return None
    recipient = _recipient(row, batch)
    if _no_longer_useful(row, recipient, batch, now) is not None:
        return None
    zone = recipient.zone
    if zone is not None and sendable_at(now, zone, settings.quiet_hours) > now:
        return None
    target = _route(row, row, recipient, channels)
    if isinstance(target, str):
        return None
    return _job(row, row, recipient, target, now, worker, lease_until, batch, row.fallbacks)


def _recipient(notification: Any, batch: _Batch) -> recipients.Recipient:
    """The patient or staff member ``notification`` (an ORM object or the claim's row) is for."""
    if notification.patient_id:
        return batch.recipients.patients[notification.patient_id]
    return batch.recipients.users[notification.user_id]


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
    recipient = _recipient(notification, batch)
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
    fallbacks = any(d.status == "standby" for d in notification.deliveries)
    return _job(
        delivery, notification, recipient, target, now, worker, lease_until, batch, fallbacks
    )


def _job(
    delivery: Any,
    notification: Any,
    recipient: recipients.Recipient,
    target: tuple[str, str, recipients.PushDevice | None],
    now: datetime,
    worker: str,
    lease_until: datetime,
    batch: _Batch,
    fallbacks: bool,
) -> SendJob:
    """The send of ``delivery`` (an ORM object or the claim's row; ``notification`` likewise),
    leased with its attempt opened for the whole batch at once (``_lease``)."""
    route, to, device = target
    return SendJob(
        delivery_id=delivery.id,
        attempt_id=new_id(),
        attempt=delivery.attempts + 1,
        notification_id=delivery.notification_id,
        patient_id=notification.patient_id,
        zone=recipient.zone.key if recipient.zone is not None else None,
        expires_at=notification.expires_at,
        route=route,
        channel=delivery.channel,
        device_id=device.id if device else None,
        message=_message(notification, delivery, to, now, batch.links),
        worker=worker,
        lease_until=lease_until,
        fallbacks=fallbacks,
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
    notification: Any, recipient: recipients.Recipient, batch: _Batch, now: datetime
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
    delivery: Any,
    notification: Any,
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
    notification: Any,
    delivery: Any,
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
