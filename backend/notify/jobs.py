"""The delivery job: claim due deliveries and commit, send with no transaction open, record.

Registered by the scheduler as the last job of every pass, so what the other jobs enqueued in
that pass (reminders, staff e-mails) leaves in the same pass.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections import Counter
from datetime import datetime, timedelta

from flask import current_app

from backend.clock import get_clock
from backend.extensions import db
from backend.notify import services
from backend.notify.channels import Channels, get_channels
from notifications import SendResult, TransportError

log = logging.getLogger(__name__)

_worker: tuple[int, str] | None = None


def worker_id() -> str:
    """This process's name in leases and attempts: host, pid and a random suffix."""
    global _worker
    if _worker is None or _worker[0] != os.getpid():  # a forked child is another worker
        _worker = (os.getpid(), f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}")
    return _worker[1]


# A provider that failed this many times in a row within one batch is not called again for the
# rest of it: during an outage a batch costs a few timeouts, not one per message, and the
# other channels' deliveries in it go out on time. The skipped ones are retried as usual.
CIRCUIT_BREAKER_FAILURES = 3
# A send starts only with this many provider timeouts left on its lease (an SMTP exchange is
# several socket operations, each with its own timeout).
LEASE_MARGIN_TIMEOUTS = 3


def send_due_deliveries(now: datetime) -> int:
    """One batch: claim (commit), send each outside any transaction, record each (commit)."""
    config = current_app.config
    channels = get_channels()
    claim = services.claim_due_deliveries(
        now,
        worker=worker_id(),
        limit=int(config["SCHEDULER_BATCH_SIZE"]),
        lease_seconds=int(config["SCHEDULER_LEASE_SECONDS"]),
        max_attempts=int(config["NOTIFICATION_MAX_ATTEMPTS"]),
        channels=channels,
    )
    db.session.commit()
    clock = get_clock()
    margin = timedelta(seconds=LEASE_MARGIN_TIMEOUTS * int(config["NOTIFICATION_TIMEOUT_SECONDS"]))
    failures: Counter[str] = Counter()  # consecutive transient failures per route
    for index, job in enumerate(claim.jobs):
        if db.session().in_transaction():
            raise RuntimeError("a provider call must never happen inside a database transaction")
        if clock.now() + margin >= job.lease_until:
            # Too slow: another worker may hold this delivery by now. Leave it to the next claim.
            _abandon(job)
            continue
        result: SendResult | None = None
        error: TransportError | None = None
        if failures[job.route] >= CIRCUIT_BREAKER_FAILURES:
            error = TransportError(
                f"{job.route}: not tried, the provider failed {failures[job.route]} times in a row",
                permanent=False,
                code="circuit_open",
            )
        else:
            error, result = _send(channels, job)
            failures[job.route] = failures[job.route] + 1 if error and not error.permanent else 0
        try:
            services.record_outcome(
                job,
                now=clock.now(),
                result=result,
                error=error,
                max_attempts=int(config["NOTIFICATION_MAX_ATTEMPTS"]),
                retry_base=float(config["NOTIFICATION_RETRY_BASE_SECONDS"]),
                retry_cap=float(config["NOTIFICATION_RETRY_MAX_SECONDS"]),
            )
            db.session.commit()
        except Exception as exc:  # noqa: BLE001 - whatever broke the record, stop the batch
            # This delivery's lease will run out and it will be taken up again (at-least-once):
            # one duplicate. The database is likely down, so every later send of this batch
            # would become a duplicate too: stop here; the rest of the claim waits for its
            # leases and is sent, once, by the next worker.
            db.session.rollback()
            log.error(
                "could not record a delivery outcome; the rest of the batch is left to its lease",
                extra={"error_type": type(exc).__name__, "left": len(claim.jobs) - index - 1},
            )
            break
    return claim.handled


def _send(
    channels: Channels, job: services.SendJob
) -> tuple[TransportError | None, SendResult | None]:
    transport = channels.transport(job.route)
    assert transport is not None
    try:
        return None, transport.send(job.message)
    except TransportError as exc:
        return exc, None
    except Exception as exc:  # noqa: BLE001 - a transport bug must not stop the others
        log.error("transport raised %s", type(exc).__name__)
        error = TransportError(
            f"{job.route}: unexpected {type(exc).__name__}", permanent=False, code="internal"
        )
        return error, None


def _abandon(job: services.SendJob) -> None:
    from backend.notify.models import DeliveryAttempt

    db.session.execute(
        db.update(DeliveryAttempt)
        .where(DeliveryAttempt.id == job.attempt_id, DeliveryAttempt.outcome.is_(None))
        .values(outcome="abandoned", finished_at=get_clock().now())
    )
    db.session.commit()
