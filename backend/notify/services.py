"""The outbox: enqueue in the caller's transaction; claim, then record, in the delivery job's.

Services flush, never commit. ``enqueue_*`` write a notification and its deliveries inside the
transaction that decided to send it, so a rolled-back decision sends nothing and a committed one
is never forgotten. The delivery job (``backend.notify.jobs``) then:

1. claims due deliveries (``claim_due_deliveries``) with ``FOR UPDATE SKIP LOCKED``: each gets a
   lease (``claimed_by``, ``claimed_until``) and an in-flight attempt row; what is no longer
   useful is marked expired or cancelled, what falls in quiet hours is moved to their end, and a
   channel without a contact point fails over to the next. The job commits;
2. sends each claimed message with no transaction open;
3. records each outcome (``record_outcome``) in a short transaction of its own.

A delivery whose lease ran out (its worker died or hung) is claimable again; its in-flight
attempt is marked ``interrupted``. See docs/notifications.md for what this guarantees.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import lazyload

from backend.auth.models import Site, User
from backend.batches import POISON_DELAY
from backend.extensions import db
from backend.notify import contacts
from backend.notify.channels import Channels, route_of
from backend.notify.models import Delivery, DeliveryAttempt, Notification
from backend.notify.quiet_hours import sendable_at
from backend.notify.texts import PATIENT_TEXTS, Text, reminder_link, render, staff_texts
from backend.patients.models import Device, Patient
from backend.questionnaires.models import Assignment
from backend.questionnaires.planning import QUESTIONNAIRE_CLOSED, message_no_longer_needed
from notifications import Message, SendResult, TransportError

log = logging.getLogger(__name__)

# Provider codes that say the contact point itself is dead (notifications.ERROR_CODES).
DEAD_CONTACT_CODES = frozenset({"invalid_recipient", "unregistered", "opted_out"})
ACTIVE = ("pending", "sending", "standby")
_jitter = random.SystemRandom()


# --- enqueue -----------------------------------------------------------------------------------


def enqueue_patient_notification(
    patient: Patient,
    kind: str,
    *,
    now: datetime,
    text_key: str,
    dedupe_key: str,
    link: str | None = None,
    assignment_id: uuid.UUID | None = None,
    collapse_key: str | None = None,
    expires_at: datetime | None = None,
    exclusive: bool = False,
) -> Notification | None:
    """Write a notification for a patient, one delivery per contact channel in their order.

    None when the patient has no contact channel, or when ``dedupe_key`` was enqueued before.
    ``exclusive``: the caller holds a lock that rules out a twin (the reminder job holds its
    reminder rows), so the duplicate check and its savepoint are skipped (the unique constraint
    still stands behind it).
    """
    if text_key not in PATIENT_TEXTS:
        raise ValueError(f"unknown patient text {text_key!r}")
    channels = [c for c in (patient.contact_channels or []) if c in ("push", "sms", "email")]
    if not channels:
        return None
    notification = Notification(
        id=uuid.uuid4(),  # known before the flush: the caller may point at it
        kind=kind,
        text_key=text_key,
        patient_id=patient.id,
        site_id=patient.site_id,
        assignment_id=assignment_id,
        locale=patient.locale,
        link=link,
        collapse_key=collapse_key,
        dedupe_key=dedupe_key,
        status="pending",
        created_at=now,
        expires_at=expires_at,
    )
    if exclusive:
        _add_deliveries(notification, channels, now)
        db.session.add(notification)
        return notification
    return notification if _insert_once(notification, channels, now) else None


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
    site = db.session.get(Site, site_id)
    if site is None:
        raise LookupError(f"no site {site_id}")
    users = db.session.execute(
        db.select(User)
        .where(User.site_id == site_id, User.role.in_(list(roles)), User.is_active.is_(True))
        .order_by(User.email)
    ).scalars()
    written = []
    for user in users:
        notification = Notification(
            kind=kind,
            text_key=subject_key,
            user_id=user.id,
            site_id=site_id,
            locale=site.locale,
            link=link,
            dedupe_key=f"{dedupe_key}:{user.id}",
            status="pending",
            created_at=now,
            expires_at=expires_at,
        )
        if _insert_once(notification, ["email"], now):
            written.append(notification)
    return written


def _insert_once(notification: Notification, channels: Sequence[str], now: datetime) -> bool:
    """Insert with its deliveries unless the dedupe key exists; a concurrent twin loses cleanly."""
    exists = db.session.execute(
        db.select(Notification.id).filter_by(dedupe_key=notification.dedupe_key)
    ).first()
    if exists:
        return False
    _add_deliveries(notification, channels, now)
    try:
        with db.session.begin_nested():
            db.session.add(notification)
    except sa.exc.IntegrityError:
        return False
    return True


def _add_deliveries(notification: Notification, channels: Sequence[str], now: datetime) -> None:
    for position, channel in enumerate(channels):
        notification.deliveries.append(
            Delivery(
                channel=channel,
                position=position,
                status="pending" if position == 0 else "standby",
                next_attempt_at=now if position == 0 else None,
                created_at=now,
                updated_at=now,
            )
        )


# --- claim -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SendJob:
    """A claimed delivery, as plain data: sending it needs no database access."""

    delivery_id: uuid.UUID
    attempt_id: uuid.UUID
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
    """What deciding about a batch of deliveries needs, loaded in a few queries (and held here:
    the session's identity map alone keeps only weak references)."""

    notifications: dict[uuid.UUID, Notification]
    patients: dict[uuid.UUID, Patient]
    users: dict[uuid.UUID, User]
    assignments: dict[uuid.UUID, Assignment]
    devices: dict[uuid.UUID, list[Device]]


def claim_due_deliveries(
    now: datetime,
    *,
    worker: str,
    limit: int,
    lease_seconds: int,
    max_attempts: int,
    channels: Channels,
) -> Claim:
    """Lease up to ``limit`` due deliveries to ``worker`` (see the module docstring, step 1)."""
    due = sa.or_(
        sa.and_(Delivery.status == "pending", Delivery.next_attempt_at <= now),
        # A lease that ran out: its worker died or hung, the delivery is taken up again.
        sa.and_(Delivery.status == "sending", Delivery.claimed_until <= now),
    )
    # SKIP LOCKED: concurrent schedulers each take other rows instead of queueing on these.
    # SQLite ignores it; there BEGIN IMMEDIATE makes the whole claim a single writer.
    rows = (
        db.session.execute(
            db.select(Delivery)
            .where(due)
            .order_by(Delivery.next_attempt_at, Delivery.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        .scalars()
        .all()
    )
    if not rows:
        return Claim(0, [])
    batch = _load_batch(rows)
    lease_until = now + timedelta(seconds=lease_seconds)
    jobs = []
    for delivery in rows:
        try:
            job = _decide(delivery, batch, now, worker, lease_until, max_attempts, channels)
        except Exception as exc:  # noqa: BLE001 - one bad row must not block the queue
            # E.g. a text key this (older) process does not know yet during a rolling deploy.
            log.error(
                "delivery could not be prepared (%s); postponed",
                type(exc).__name__,
                extra={"delivery": str(delivery.id)},
            )
            _set(delivery, "pending", "internal_error", now)
            delivery.next_attempt_at = now + POISON_DELAY
            continue
        if job is not None:
            jobs.append(job)
    db.session.flush()
    return Claim(len(rows), jobs)


def _decide(
    delivery: Delivery,
    batch: _Batch,
    now: datetime,
    worker: str,
    lease_until: datetime,
    max_attempts: int,
    channels: Channels,
) -> SendJob | None:
    """Lease one delivery and describe its send, or settle it here (None)."""
    notification = batch.notifications[delivery.notification_id]
    patient = batch.patients.get(notification.patient_id) if notification.patient_id else None
    if delivery.status == "sending":
        _interrupt(delivery, now)
    if _close_if_useless(notification, patient, batch, now):
        return None
    if delivery.attempts >= max_attempts:
        _fail_over(delivery, "gave_up", now)
        return None
    if patient is not None and (quiet_end := sendable_at(now, patient.timezone)) > now:
        delivery.status = "pending"
        delivery.next_attempt_at = quiet_end
        delivery.updated_at = now
        return None
    target = _route(delivery, notification, patient, batch, channels)
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
        _fail_over(delivery, target, now)
        return None
    route, to, device = target
    message = _message(notification, delivery, to, now)  # before any change: it may raise
    delivery.status = "sending"
    delivery.claimed_by = worker
    delivery.claimed_until = lease_until
    delivery.attempts += 1
    delivery.updated_at = now
    attempt = DeliveryAttempt(
        id=uuid.uuid4(),
        delivery_id=delivery.id,
        number=delivery.attempts,
        channel=delivery.channel,
        device_id=device.id if device else None,
        worker=worker,
        started_at=now,
    )
    db.session.add(attempt)
    return SendJob(
        delivery_id=delivery.id,
        attempt_id=attempt.id,
        route=route,
        device_id=device.id if device else None,
        message=message,
        worker=worker,
        lease_until=lease_until,
        fallbacks=any(d.status == "standby" for d in notification.deliveries),
    )


def _load_batch(rows: Sequence[Delivery]) -> _Batch:
    notifications = {
        n.id: n
        for n in db.session.execute(
            db.select(Notification).where(Notification.id.in_({d.notification_id for d in rows}))
        ).scalars()
    }
    patient_ids = {n.patient_id for n in notifications.values() if n.patient_id}
    user_ids = {n.user_id for n in notifications.values() if n.user_id}
    assignment_ids = {n.assignment_id for n in notifications.values() if n.assignment_id}
    patients = {
        p.id: p
        for p in db.session.execute(
            # lazyload: a patient's procedures and schedule are not needed to send a reminder.
            db.select(Patient).where(Patient.id.in_(patient_ids)).options(lazyload("*"))
        ).scalars()
    }
    users = {
        u.id: u for u in db.session.execute(db.select(User).where(User.id.in_(user_ids))).scalars()
    }
    assignments = {
        a.id: a
        for a in db.session.execute(
            db.select(Assignment).where(Assignment.id.in_(assignment_ids))
        ).scalars()
    }
    devices: dict[uuid.UUID, list[Device]] = defaultdict(list)
    for device in db.session.execute(
        db.select(Device)
        .where(
            Device.patient_id.in_(patient_ids),
            Device.push_token.is_not(None),
            Device.push_disabled_at.is_(None),
        )
        .order_by(Device.updated_at.desc(), Device.id)
    ).scalars():
        devices[device.patient_id].append(device)
    return _Batch(notifications, patients, users, assignments, devices)


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


def _close_if_useless(
    notification: Notification, patient: Patient | None, batch: _Batch, now: datetime
) -> bool:
    """Expire or cancel a notification that would no longer help; True when it was closed."""
    verdict: tuple[str, str] | None = None
    if notification.expires_at is not None and now >= notification.expires_at:
        verdict = ("expired", "useful_until_passed")
    elif patient is not None and patient.status != "active":
        verdict = ("cancelled", f"patient_{patient.status}")
    elif notification.user_id is not None and not batch.users[notification.user_id].is_active:
        verdict = ("cancelled", "user_inactive")
    elif notification.assignment_id is not None:
        assignment = batch.assignments[notification.assignment_id]
        unneeded = message_no_longer_needed(assignment.status, assignment.closes_at, now)
        if unneeded is not None:
            verdict = ("expired" if unneeded == QUESTIONNAIRE_CLOSED else "cancelled", unneeded)
    if verdict is None:
        return False
    _finish(notification, *verdict, now)
    return True


def _route(
    delivery: Delivery,
    notification: Notification,
    patient: Patient | None,
    batch: _Batch,
    channels: Channels,
) -> tuple[str, str, Device | None] | str:
    """(route, recipient, device) to send on, or why there is none."""
    device: Device | None = None
    if delivery.channel == "push":
        devices = batch.devices.get(patient.id, []) if patient else []
        if not devices:
            return "no_push_device"
        device = devices[0]  # the phone used last
        route, to = route_of("push", device.platform), str(device.push_token)
    elif delivery.channel == "sms":
        if patient is None or not patient.phone:
            return "no_phone"
        if patient.phone_disabled_at is not None:
            return "phone_disabled"
        route, to = "sms", patient.phone
    else:
        if patient is not None:
            if not patient.email:
                return "no_email"
            if patient.email_disabled_at is not None:
                return "email_disabled"
            to = patient.email
        else:
            assert notification.user_id is not None
            to = batch.users[notification.user_id].email
        route = "email"
    if channels.transport(route) is None:
        return "channel_not_configured"
    return route, to, device


def _message(notification: Notification, delivery: Delivery, to: str, now: datetime) -> Message:
    table = PATIENT_TEXTS if notification.patient_id else staff_texts()
    text: Text = render(table, notification.text_key, notification.locale)
    return Message(
        to=to,
        title=text.title,
        body=text.body,
        link=reminder_link(
            notification.link, notification.assignment_id, delivery.channel, now=now
        ),
        collapse_key=notification.collapse_key,
        # Stable across retries of this delivery: SMTP Message-ID, APNs apns-id.
        idempotency_key=str(delivery.id),
    )


# --- record ------------------------------------------------------------------------------------


def record_outcome(
    job: SendJob,
    *,
    now: datetime,
    result: SendResult | None = None,
    error: TransportError | None = None,
    max_attempts: int,
    retry_base: float,
    retry_cap: float,
) -> str:
    """Record one send's outcome (step 3); returns the attempt's outcome."""
    if error is None:
        provider_id = result.provider_id if result else None
        _finish_attempt(job, now, outcome="sent", provider_id=provider_id)
        if _record_sent(job, now, provider_id):
            return "sent"
        _lost_lease(job)
        return "sent"
    outcome = "failed" if error.permanent else "retry"
    _finish_attempt(job, now, outcome=outcome, error_code=error.code, error=error.message[:255])
    delivery = db.session.execute(
        db.select(Delivery).where(Delivery.id == job.delivery_id).with_for_update()
    ).scalar_one()
    if delivery.status != "sending" or delivery.claimed_by != job.worker:
        _lost_lease(job)
        return outcome
    notification = delivery.notification
    delivery.claimed_by = None
    delivery.claimed_until = None
    delivery.updated_at = now
    if error.permanent:
        _permanent_failure(delivery, notification, job, error, now)
    else:
        _transient_failure(
            delivery, notification, job, error, now, max_attempts, retry_base, retry_cap
        )
    db.session.flush()
    return outcome


# The success path is the hot one (every message): plain Core statements on the tables, with
# no ORM loading, keep a send's bookkeeping to one short transaction of three or four statements.
_attempts = DeliveryAttempt.__table__
_deliveries = Delivery.__table__
_notifications = Notification.__table__


def _finish_attempt(job: SendJob, now: datetime, **values: str | None) -> None:
    db.session.execute(
        sa.update(_attempts)
        .where(_attempts.c.id == job.attempt_id)
        .values(finished_at=now, **values)
    )


def _record_sent(job: SendJob, now: datetime, provider_id: str | None) -> bool:
    """Mark the delivery and its notification sent; False when the delivery is not ours."""
    d = _deliveries.c
    notification_id = db.session.execute(
        sa.update(_deliveries)
        .where(d.id == job.delivery_id, d.status == "sending", d.claimed_by == job.worker)
        .values(
            status="sent",
            sent_at=now,
            provider_id=provider_id,
            next_attempt_at=None,
            claimed_by=None,
            claimed_until=None,
            updated_at=now,
        )
        .returning(d.notification_id)
    ).scalar_one_or_none()
    if notification_id is None:
        return False
    if job.fallbacks:
        db.session.execute(
            sa.update(_deliveries)
            .where(d.notification_id == notification_id, d.status == "standby")
            .values(status="cancelled", status_reason="delivered_on_other_channel", updated_at=now)
        )
    db.session.execute(
        sa.update(_notifications)
        .where(_notifications.c.id == notification_id)
        .values(status="sent", finished_at=now)
    )
    return True


def _lost_lease(job: SendJob) -> None:
    # Our lease ran out and another worker took the delivery over: it decides now.
    log.warning("delivery outcome after losing its lease", extra={"delivery": str(job.delivery_id)})
    db.session.flush()


def _transient_failure(
    delivery: Delivery,
    notification: Notification,
    job: SendJob,
    error: TransportError,
    now: datetime,
    max_attempts: int,
    retry_base: float,
    retry_cap: float,
) -> None:
    if delivery.attempts >= max_attempts:
        _fail_over(delivery, "gave_up", now)
        return
    delay = retry_delay(delivery.attempts, error.retry_after, retry_base, retry_cap)
    retry_at = now + timedelta(seconds=delay)
    if notification.patient_id is not None:
        patient = _patient(notification.patient_id)
        retry_at = sendable_at(retry_at, patient.timezone)
    if notification.expires_at is not None and retry_at >= notification.expires_at:
        _finish(notification, "expired", "useful_until_passed", now)
        return
    db.session.execute(
        sa.update(_attempts).where(_attempts.c.id == job.attempt_id).values(retry_at=retry_at)
    )
    delivery.status = "pending"
    delivery.next_attempt_at = retry_at


def _permanent_failure(
    delivery: Delivery,
    notification: Notification,
    job: SendJob,
    error: TransportError,
    now: datetime,
) -> None:
    reason = error.code or "permanent"
    patient = _patient(notification.patient_id) if notification.patient_id else None
    if patient is not None and error.code in DEAD_CONTACT_CODES:
        if delivery.channel == "push" and job.device_id is not None:
            device = db.session.get(Device, job.device_id)
            if device is not None and device.push_disabled_at is None:
                contacts.disable_push(patient, device, reason, now=now)
            db.session.flush()
            another = db.session.execute(
                db.select(Device.id).where(
                    Device.patient_id == patient.id,
                    Device.push_token.is_not(None),
                    Device.push_disabled_at.is_(None),
                )
            ).first()
            if another is not None:  # the patient has another phone: try it now
                delivery.status = "pending"
                delivery.next_attempt_at = now
                return
        elif delivery.channel == "sms":
            contacts.disable_phone(patient, reason, now=now)
        elif delivery.channel == "email":
            contacts.disable_email(patient, reason, now=now)
    _fail_over(delivery, reason, now)


def retry_delay(attempt: int, retry_after: float | None, base: float, cap: float) -> float:
    """Exponential backoff with equal jitter, never shorter than the provider's Retry-After.

    attempt 1 -> 15..30 s, 2 -> 30..60 s, ... capped at ``cap`` (halves jittered): concurrent
    failures (a provider outage) do not come back all at the same second.
    """
    ceiling = min(cap, base * float(2 ** max(0, attempt - 1)))
    delay = ceiling / 2 + _jitter.uniform(0, ceiling / 2)
    return max(delay, retry_after or 0.0)


def _patient(patient_id: uuid.UUID) -> Patient:
    patient = db.session.get(Patient, patient_id, options=[lazyload("*")])
    assert patient is not None
    return patient


# --- state changes -----------------------------------------------------------------------------


def _set(delivery: Delivery, status: str, reason: str | None, now: datetime) -> None:
    delivery.status = status
    delivery.status_reason = reason
    delivery.next_attempt_at = None
    delivery.claimed_by = None
    delivery.claimed_until = None
    delivery.updated_at = now


def _fail_over(delivery: Delivery, reason: str, now: datetime) -> None:
    """This channel failed for good: wake the next one, or fail the notification."""
    _set(delivery, "failed", reason, now)
    notification = delivery.notification
    for other in notification.deliveries:
        if other.status == "standby":
            other.status = "pending"
            other.next_attempt_at = now
            other.updated_at = now
            return
    notification.status = "failed"
    notification.status_reason = "no_channel_left"
    notification.finished_at = now


def on_follow_up_stopped(
    _app: object, *, patient: Patient, now: datetime, ended: bool, reason: str
) -> None:
    """``follow_up_stopped`` receiver: the patient's notifications not sent yet are cancelled
    with the reason (a delivery being sent right now finishes; nothing new starts)."""
    pending = db.session.execute(
        db.select(Notification).where(
            Notification.patient_id == patient.id, Notification.status == "pending"
        )
    ).scalars()
    for notification in pending:
        if any(d.status == "sending" for d in notification.deliveries):
            continue  # its worker holds the lease; the next claim cancels it (patient status)
        _finish(notification, "cancelled", reason, now)


def _finish(notification: Notification, status: str, reason: str, now: datetime) -> None:
    """Close a notification and every delivery of it that is not final yet."""
    for delivery in notification.deliveries:
        if delivery.status in ACTIVE:
            _set(delivery, status, reason, now)
    notification.status = status
    notification.status_reason = reason
    notification.finished_at = now
