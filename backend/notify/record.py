"""Record: what happened to a batch of sends, in one transaction, and the outbox's state changes.

The success path (nearly every message) is a few set-based statements for the whole batch,
whatever its size; a failure is handled one by one (retry with backoff out of quiet hours, or
a dead contact point disabled and the next channel woken). A worker that lost its lease while
sending (too slow, another took the delivery over) records its attempt but leaves the delivery
to the new holder.
"""

from __future__ import annotations

import functools
import logging
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa

from backend.db import batch_array, binary_array, update_rows
from backend.extensions import db
from backend.notify import contacts
from backend.notify.models import Delivery, DeliveryAttempt, Notification
from backend.notify.quiet_hours import sendable_at
from backend.notify.settings import OutboxSettings
from notifications import SendResult, TransportError

if TYPE_CHECKING:
    from backend.notify.claim import SendJob

log = logging.getLogger(__name__)

# Provider codes that say the contact point itself is dead (notifications.ERROR_CODES).
DEAD_CONTACT_CODES = frozenset({"invalid_recipient", "unregistered", "opted_out"})
ACTIVE = ("pending", "sending", "standby")
_jitter = random.SystemRandom()

_attempts = DeliveryAttempt.__table__
_deliveries = Delivery.__table__
_notifications = Notification.__table__


@dataclass(frozen=True)
class Outcome:
    """One claimed delivery after the send loop: sent (``result``), failed (``error``), or not
    tried because the worker's lease was running out (``abandoned``)."""

    job: SendJob
    result: SendResult | None = None
    error: TransportError | None = None
    abandoned: bool = False


def record_outcomes(
    outcomes: Sequence[Outcome], *, now: datetime, settings: OutboxSettings
) -> None:
    """Record a batch's outcomes (flushes; the job commits once for the batch)."""
    sent = [o for o in outcomes if not o.abandoned and o.error is None]
    failed = [o for o in outcomes if not o.abandoned and o.error is not None]
    abandoned = [o.job.attempt_id for o in outcomes if o.abandoned]
    if abandoned:
        db.session.execute(
            sa.update(_attempts)
            .where(_attempts.c.id.in_(abandoned), _attempts.c.outcome.is_(None))
            .values(outcome="abandoned", finished_at=now)
        )
    if sent:
        _record_sent(sent, now)
    for outcome in failed:
        assert outcome.error is not None
        _record_failure(outcome.job, outcome.error, now, settings)
    db.session.flush()


# The success path on PostgreSQL: one statement for the chunk (data-modifying CTEs), so that
# recording ten sends costs one round trip and the commit instead of four round trips. The
# deliveries still leased to this worker become sent (the row lock of the UPDATE re-checks the
# lease, as the SELECT ... FOR UPDATE of the portable path does); the ids returned are those.
# The lease is checked by ``claimed_by`` alone: it is set exactly while the delivery is sending
# (``ck_deliveries_lease_while_sending``). Naming ``status = 'sending'`` as well let the planner
# read every leased delivery through the status index and join them to these ten: during a
# reminder wave a thousand rows for each record, ten times the statement's own work.
_RECORD_SENT = sa.text(
    """
    WITH given AS (
        SELECT * FROM unnest(:delivery_ids, :attempt_ids, :provider_ids, :fallbacks)
            AS g(delivery_id, attempt_id, provider_id, fallbacks)
    ), attempts AS (
        UPDATE delivery_attempts AS a
        SET finished_at = :now, outcome = 'sent', provider_id = given.provider_id
        FROM given WHERE a.id = given.attempt_id
    ), mine AS (
        UPDATE deliveries AS d
        SET status = 'sent', sent_at = :now, next_attempt_at = NULL, claimed_by = NULL,
            claimed_until = NULL, updated_at = :now, provider_id = given.provider_id
        FROM given
        WHERE d.id = given.delivery_id AND d.claimed_by = :worker
        RETURNING d.id, d.notification_id, given.fallbacks
    ), others AS (
        UPDATE deliveries AS o
        SET status = 'cancelled', status_reason = 'delivered_on_other_channel', updated_at = :now
        WHERE o.notification_id IN (SELECT notification_id FROM mine WHERE fallbacks)
          AND o.status = 'standby'
    ), notified AS (
        UPDATE notifications AS n SET status = 'sent', finished_at = :now
        FROM mine WHERE n.id = mine.notification_id
    )
    SELECT id FROM mine
    """
).bindparams(
    sa.bindparam("delivery_ids", type_=batch_array(sa.Uuid())),
    sa.bindparam("attempt_ids", type_=batch_array(sa.Uuid())),
    sa.bindparam("provider_ids", type_=batch_array(sa.String())),
    sa.bindparam("fallbacks", type_=batch_array(sa.Boolean())),
    sa.bindparam("now", type_=sa.DateTime(timezone=True)),
    sa.bindparam("worker", type_=sa.String()),
)


def only_sent(outcomes: Sequence[Outcome]) -> bool:
    """Every one of ``outcomes`` was accepted by its provider (nearly every chunk)."""
    return all(not o.abandoned and o.error is None for o in outcomes)


def record_sent_on(connection: sa.Connection, sent: Sequence[Outcome], *, now: datetime) -> None:
    """Record a chunk of accepted sends on ``connection`` (PostgreSQL), a connection the delivery
    job holds for its batch; the caller commits it. The statement is ``_RECORD_SENT``, run as
    the driver's SQL with its arrays bound as they are.

    The same statement through the session cost as much Python as the rest of a message's
    record: a session transaction begun for each chunk, the pool's checkout and its ping, the
    bind processors of each array's elements, and the commit's bookkeeping, each ``RECORD_EVERY``
    sends (issue 17: 1.5-2 ms of Python per chunk of ten, a fifth of the scheduler's CPU per
    reminder, whatever the chunk's size).
    """
    params = {
        "delivery_ids": binary_array(o.job.delivery_id for o in sent),
        "attempt_ids": binary_array(o.job.attempt_id for o in sent),
        "provider_ids": binary_array(_provider_id(o) for o in sent),
        "fallbacks": binary_array(o.job.fallbacks for o in sent),
        "now": now,
        "worker": sent[0].job.worker,
    }
    sql = _record_sent_sql(connection.dialect)
    ours = set(connection.exec_driver_sql(sql, params).scalars())
    for outcome in sent:
        if outcome.job.delivery_id not in ours:
            _lost_lease(outcome.job)


@functools.lru_cache(maxsize=8)  # one dialect per engine: a process has one, a test run many
def _record_sent_sql(dialect: sa.Dialect) -> str:
    return str(_RECORD_SENT.compile(dialect=dialect))


def _record_sent(sent: Sequence[Outcome], now: datetime) -> None:
    if db.session.get_bind().dialect.name == "postgresql":
        record_sent_on(db.session.connection(), sent, now=now)
        return
    d = _deliveries.c
    worker = sent[0].job.worker
    ours = set(
        db.session.execute(
            sa.select(d.id)
            .where(
                d.id.in_([o.job.delivery_id for o in sent]),
                d.status == "sending",
                d.claimed_by == worker,
            )
            .with_for_update()
        ).scalars()
    )
    update_rows(
        db.session,
        _attempts,
        [{"id": o.job.attempt_id, "provider_id": _provider_id(o)} for o in sent],
        finished_at=now,
        outcome="sent",
    )
    mine = [o for o in sent if o.job.delivery_id in ours]
    for outcome in sent:
        if outcome.job.delivery_id not in ours:
            _lost_lease(outcome.job)
    if not mine:
        return
    update_rows(
        db.session,
        _deliveries,
        [{"id": o.job.delivery_id, "provider_id": _provider_id(o)} for o in mine],
        status="sent",
        sent_at=now,
        next_attempt_at=None,
        claimed_by=None,
        claimed_until=None,
        updated_at=now,
    )
    with_fallbacks = [o.job.notification_id for o in mine if o.job.fallbacks]
    if with_fallbacks:
        db.session.execute(
            sa.update(_deliveries)
            .where(d.notification_id.in_(with_fallbacks), d.status == "standby")
            .values(status="cancelled", status_reason="delivered_on_other_channel", updated_at=now)
        )
    db.session.execute(
        sa.update(_notifications)
        .where(_notifications.c.id.in_([o.job.notification_id for o in mine]))
        .values(status="sent", finished_at=now)
    )


def _provider_id(outcome: Outcome) -> str | None:
    return outcome.result.provider_id if outcome.result else None


def _record_failure(
    job: SendJob, error: TransportError, now: datetime, settings: OutboxSettings
) -> None:
    outcome = "failed" if error.permanent else "retry"
    db.session.execute(
        sa.update(_attempts)
        .where(_attempts.c.id == job.attempt_id)
        .values(finished_at=now, outcome=outcome, error_code=error.code, error=error.message[:255])
    )
    delivery = db.session.execute(
        db.select(Delivery).where(Delivery.id == job.delivery_id).with_for_update()
    ).scalar_one()
    if delivery.status != "sending" or delivery.claimed_by != job.worker:
        _lost_lease(job)
        return
    # The lease ends with the status change each branch makes, flushed together: a lease
    # without ``sending``, or ``sending`` without a lease, breaks the CHECK constraint. (A dead
    # contact is flushed on its own before any change to the delivery.)
    with db.session.no_autoflush:
        if error.permanent:
            _permanent_failure(delivery, job, error, now)
        else:
            _transient_failure(delivery, job, error, now, settings)
        delivery.claimed_by = None
        delivery.claimed_until = None
        delivery.updated_at = now


def _lost_lease(job: SendJob) -> None:
    # Our lease ran out and another worker took the delivery over: it decides now.
    log.warning("delivery outcome after losing its lease", extra={"delivery": str(job.delivery_id)})


def _transient_failure(
    delivery: Delivery, job: SendJob, error: TransportError, now: datetime, settings: OutboxSettings
) -> None:
    if delivery.attempts >= settings.max_attempts:
        fail_over(delivery, "gave_up", now)
        return
    delay = retry_delay(
        delivery.attempts, error.retry_after, settings.retry_base, settings.retry_cap
    )
    retry_at = now + timedelta(seconds=delay)
    if job.zone is not None:
        retry_at = sendable_at(retry_at, job.zone, settings.quiet_hours)
    if job.expires_at is not None and retry_at >= job.expires_at:
        finish(delivery.notification, "expired", "useful_until_passed", now)
        return
    db.session.execute(
        sa.update(_attempts).where(_attempts.c.id == job.attempt_id).values(retry_at=retry_at)
    )
    delivery.status = "pending"
    delivery.next_attempt_at = retry_at


def _permanent_failure(
    delivery: Delivery, job: SendJob, error: TransportError, now: datetime
) -> None:
    reason = error.code or "permanent"
    if job.patient_id is not None and error.code in DEAD_CONTACT_CODES:
        another_phone = contacts.contact_dead(
            job.patient_id, delivery.channel, job.device_id, reason, now=now
        )
        if another_phone:  # the patient has another phone: try it now
            delivery.status = "pending"
            delivery.next_attempt_at = now
            return
    fail_over(delivery, reason, now)


def retry_delay(attempt: int, retry_after: float | None, base: float, cap: float) -> float:
    """Exponential backoff with equal jitter, never shorter than the provider's Retry-After.

    attempt 1 -> 15..30 s, 2 -> 30..60 s, ... capped at ``cap`` (halves jittered): concurrent
    failures (a provider outage) do not come back all at the same second.
    """
    ceiling = min(cap, base * float(2 ** max(0, attempt - 1)))
    delay = ceiling / 2 + _jitter.uniform(0, ceiling / 2)
    return max(delay, retry_after or 0.0)


# --- state changes -----------------------------------------------------------------------------


def set_status(delivery: Delivery, status: str, reason: str | None, now: datetime) -> None:
    delivery.status = status
    delivery.status_reason = reason
    delivery.next_attempt_at = None
    delivery.claimed_by = None
    delivery.claimed_until = None
    delivery.updated_at = now


def fail_over(delivery: Delivery, reason: str, now: datetime) -> None:
    """This channel failed for good: wake the next one, or fail the notification."""
    set_status(delivery, "failed", reason, now)
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


def finish(notification: Notification, status: str, reason: str, now: datetime) -> None:
    """Close a notification and every delivery of it that is not final yet."""
    for delivery in notification.deliveries:
        if delivery.status in ACTIVE:
            set_status(delivery, status, reason, now)
    notification.status = status
    notification.status_reason = reason
    notification.finished_at = now


def on_follow_up_stopped(
    _app: object, *, patient: object, now: datetime, ended: bool, reason: str
) -> None:
    """``follow_up_stopped`` receiver: the patient's notifications not sent yet are cancelled
    with the reason (a delivery being sent right now finishes; nothing new starts)."""
    patient_id: uuid.UUID = patient.id  # type: ignore[attr-defined]
    pending = db.session.execute(
        db.select(Notification).where(
            Notification.patient_id == patient_id, Notification.status == "pending"
        )
    ).scalars()
    for notification in pending:
        if any(d.status == "sending" for d in notification.deliveries):
            continue  # its worker holds the lease; the next claim cancels it (patient status)
        finish(notification, "cancelled", reason, now)
