"""The delivery job: claim a batch and commit, send it with no transaction open, record it.

Registered by the scheduler after the other jobs of every round, so what they enqueued leaves
in the same round. One batch is ``SCHEDULER_BATCH_SIZE`` deliveries: claimed together (their
attempts written before any send), sent over one provider session per route (one SMTP
connection for the batch's e-mails), and recorded every ``RECORD_EVERY`` sends, each time in a
transaction of its own. A worker that dies mid-batch leaves in-flight attempts whose leases run
out: the next claim marks them ``interrupted`` and sends them again (at-least-once: at most the
``RECORD_EVERY`` messages sent since the last record go twice; the rest of the batch was never
handed to a provider).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import uuid
from collections import Counter
from datetime import datetime, timedelta

import sqlalchemy as sa

from backend.clock import get_clock
from backend.extensions import db
from backend.notify.channels import Channels, get_channels
from backend.notify.claim import SendJob, claim_due_deliveries
from backend.notify.record import Outcome, only_sent, record_outcomes, record_sent_on
from backend.notify.settings import OutboxSettings, outbox_settings
from notifications import SendResult, Session, TransportError, open_session

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
# Outcomes are recorded (and committed) after every this many sends: what a crash or a database
# outage can send twice. One commit per send was the old cost (a reminder batch spent most of
# its time committing); one per batch of 100 let an outage send 100 messages twice. Ten keeps
# the commits a tenth of the sends and a duplicate to a handful of patients at worst.
RECORD_EVERY = 10
# A send starts only with this many provider timeouts left on its lease (an SMTP exchange is
# several socket operations, each with its own timeout).
LEASE_MARGIN_TIMEOUTS = 3


def send_due_deliveries(now: datetime, limit: int | None = None) -> int:
    """One batch (``limit``, else ``SCHEDULER_BATCH_SIZE``): claim (commit), send outside any
    transaction, record every ``RECORD_EVERY`` sends (commit)."""
    settings = outbox_settings()
    channels = get_channels()
    claim = claim_due_deliveries(
        now, worker=worker_id(), settings=settings, channels=channels, limit=limit
    )
    db.session.commit()
    if not claim.jobs:
        return claim.handled
    # PostgreSQL: a chunk of accepted sends (nearly every one) is recorded on a connection held
    # for the batch, in a transaction of its own as before, without the session's per-chunk
    # transaction, pool checkout and ping; anything else goes through the session. (A session
    # bound to a caller's connection, as the tests' rolled-back one, keeps the session's way:
    # another connection would not see that caller's uncommitted rows.)
    bind = db.session.get_bind()
    engine = bind if isinstance(bind, sa.Engine) and bind.dialect.name == "postgresql" else None
    connection: sa.Connection | None = None
    with Sender(channels, settings) as sender, contextlib.ExitStack() as closing:
        for start in range(0, len(claim.jobs), RECORD_EVERY):
            outcomes = sender.send(claim.jobs[start : start + RECORD_EVERY])
            try:
                if engine is not None and only_sent(outcomes):
                    if connection is None:
                        connection = closing.enter_context(engine.connect())
                    record_sent_on(connection, outcomes, now=get_clock().now())
                    connection.commit()
                else:
                    record_outcomes(outcomes, now=get_clock().now(), settings=settings)
                    db.session.commit()
            except Exception as exc:  # noqa: BLE001 - the batch's leases will bring it back
                # The database is likely down: stop sending. The leases run out and the next
                # worker takes the rest up, sending again only what this chunk sent.
                db.session.rollback()
                if connection is not None:
                    with contextlib.suppress(sa.exc.SQLAlchemyError):
                        connection.rollback()
                log.error(
                    "could not record delivery outcomes; the rest of the batch is left to its "
                    "leases",
                    extra={
                        "error_type": type(exc).__name__,
                        "left": len(claim.jobs) - start,
                    },
                )
                break
    return claim.handled


class Sender:
    """Sends jobs over one provider session per route, kept open across the chunks of a batch;
    counts consecutive failures per route (the circuit breaker)."""

    def __init__(self, channels: Channels, settings: OutboxSettings) -> None:
        self.channels = channels
        self.clock = get_clock()
        self.margin = timedelta(seconds=LEASE_MARGIN_TIMEOUTS * settings.timeout_seconds)
        self.failures: Counter[str] = Counter()  # consecutive transient failures per route
        self.sessions: dict[str, Session] = {}

    def __enter__(self) -> Sender:
        return self

    def __exit__(self, *_exc: object) -> None:
        for session in self.sessions.values():
            try:
                session.close()
            except Exception as exc:  # noqa: BLE001 - what was sent is sent
                log.warning("could not close a provider session (%s)", type(exc).__name__)
        self.sessions.clear()

    def send(self, jobs: list[SendJob]) -> list[Outcome]:
        if db.session().in_transaction():
            raise RuntimeError("a provider call must never happen inside a database transaction")
        outcomes: list[Outcome] = []
        for job in jobs:
            if self.clock.now() + self.margin >= job.lease_until:
                # Too slow: another worker may hold this delivery by now. Leave it to the next.
                outcomes.append(Outcome(job, abandoned=True))
                continue
            if self.failures[job.route] >= CIRCUIT_BREAKER_FAILURES:
                skipped = TransportError(
                    f"{job.route}: not tried, the provider failed "
                    f"{self.failures[job.route]} times in a row",
                    permanent=False,
                    code="circuit_open",
                )
                outcomes.append(Outcome(job, error=skipped))
                continue
            session = self.sessions.get(job.route)
            if session is None:
                transport = self.channels.transport(job.route)
                assert transport is not None
                session = self.sessions[job.route] = open_session(transport)
            error, result = _send(session, job)
            failed = error is not None and not error.permanent
            self.failures[job.route] = self.failures[job.route] + 1 if failed else 0
            outcomes.append(Outcome(job, result=result, error=error))
        return outcomes


def _send(session: Session, job: SendJob) -> tuple[TransportError | None, SendResult | None]:
    try:
        return None, session.send(job.message)
    except TransportError as exc:
        return exc, None
    except Exception as exc:  # noqa: BLE001 - a transport bug must not stop the others
        log.error("transport raised %s", type(exc).__name__)
        error = TransportError(
            f"{job.route}: unexpected {type(exc).__name__}", permanent=False, code="internal"
        )
        return error, None
