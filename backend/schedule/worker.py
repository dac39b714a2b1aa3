"""The scheduler process: one pass over everything due (``run_pass``), or passes on a timer.

``run_forever`` uses APScheduler only as a timer: the work itself is rows in the database, so a
missed tick loses nothing (``misfire_grace_time=None``: a late tick still runs; ``coalesce``:
a backlog of ticks runs once). SIGTERM or SIGINT stops it cleanly: the current batch finishes
and commits, the next is not started, and the process exits 0.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from types import FrameType

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from flask import Flask, current_app

from backend.clock import get_clock
from backend.extensions import db
from backend.notify.channels import get_channels
from backend.notify.jobs import send_due_deliveries
from backend.schedule import jobs as registry
from backend.schedule.jobs import PipelineJob

log = logging.getLogger(__name__)

# Safety nets against a job that keeps reporting work it does not consume.
MAX_BATCHES_PER_JOB = 10_000
MAX_ROUNDS = MAX_BATCHES_PER_JOB
# The reminder pipeline's first batch in a pass (then doubled each round).
PIPELINE_FIRST_BATCH = 25


def run_pass(stop: threading.Event | None = None) -> dict[str, int]:
    """Run every registered job, then the outbox, in rounds until a round finds nothing (another
    scheduler may have committed work meanwhile, or a job may enqueue for an earlier one).

    In a round, most jobs run until nothing is due; the reminder pipeline (opening
    questionnaires, enqueueing their reminders, sending: ``registry.PIPELINE`` and the delivery
    job) runs one batch each, so the first reminders leave after one batch is opened instead of
    after every questionnaire of the minute. Its batches start at ``PIPELINE_FIRST_BATCH`` and
    double each round up to ``SCHEDULER_BATCH_SIZE``: the first message of a busy minute leaves
    after a small batch, the rest in large ones. Needs an app context. Returns rows handled per
    job.
    """
    stop = stop or threading.Event()
    totals: dict[str, int] = {}
    largest = int(current_app.config["SCHEDULER_BATCH_SIZE"])
    limit = min(PIPELINE_FIRST_BATCH, largest)
    pipeline: tuple[PipelineJob, ...] = (*registry.PIPELINE, send_due_deliveries)
    paced: dict[object, PipelineJob] = {job: job for job in pipeline}
    for _ in range(MAX_ROUNDS):
        found = 0
        for job in [*registry.jobs(), send_due_deliveries]:
            name = job.__name__
            if (pipeline_job := paced.get(job)) is not None:
                handled = _drain(partial(pipeline_job, limit=limit), name, stop, batches=1)
            else:
                handled = _drain(job, name, stop, batches=MAX_BATCHES_PER_JOB)
            totals[name] = totals.get(name, 0) + handled
            found += handled
        if not found or stop.is_set():
            break
        limit = min(limit * 2, largest)
    return totals


def _drain(
    job: Callable[[datetime], int], name: str, stop: threading.Event, *, batches: int
) -> int:
    clock = get_clock()
    total = 0
    for _ in range(batches):
        if stop.is_set():
            break
        try:
            handled = job(clock.now())
            db.session.commit()
        except Exception:
            # One failing job (a bug, a lost connection) must not stop the others.
            db.session.rollback()
            log.exception("scheduler job failed", extra={"job": name})
            break
        total += handled
        if handled == 0:
            break
    return total


def freeze_start_up_objects() -> None:
    """Leave the objects of the process's start-up (the application, its mappers, the imported
    modules: nearly all of a scheduler's heap) out of the garbage collector's passes for good.

    The send loop allocates rows, dicts and tuples by the thousand per batch, so the collector
    runs often, and each older-generation pass walked the whole start-up heap again: about a
    tenth of a scheduler's CPU per reminder (issue 17). Those objects live as long as the
    process, so walking them finds nothing; ``gc.freeze`` moves them to a generation that is
    never collected. Garbage made later is collected as before."""
    import gc

    from sqlalchemy.orm import configure_mappers

    configure_mappers()  # otherwise done by the first query, inside the first pass
    gc.collect()  # what is already garbage is freed, not frozen
    gc.freeze()


def run_forever(app: Flask, interval: float, *, ready: Callable[[], None] | None = None) -> None:
    """Run a pass every ``interval`` seconds until SIGTERM/SIGINT."""
    stop = threading.Event()
    # APScheduler narrates every tick at INFO; our own "scheduler pass" line says what matters.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)

    def tick() -> None:
        with app.app_context():
            started = time.monotonic()
            try:
                totals = run_pass(stop)
            finally:
                db.session.remove()
            handled = {k: v for k, v in totals.items() if v}
            log.info(
                "scheduler pass",
                extra={"handled": handled, "seconds": round(time.monotonic() - started, 3)},
            )

    scheduler = BackgroundScheduler(
        timezone=UTC,
        executors={"default": ThreadPoolExecutor(max_workers=1)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
    )
    # The first pass at once, then one every ``interval`` seconds.
    scheduler.add_job(
        tick,
        IntervalTrigger(seconds=interval, timezone=UTC),
        id="pass",
        next_run_time=datetime.now(UTC),
    )

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("scheduler stopping", extra={"signal": signal.Signals(signum).name})
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        freeze_start_up_objects()
        scheduler.start()
        log.info("scheduler started", extra={"interval_seconds": interval})
        if ready:
            ready()
        while not stop.wait(0.5):
            pass
        # Waits for the pass in progress, which stops after its current batch.
        scheduler.shutdown(wait=True)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        with app.app_context():
            get_channels(app).close()
    log.info("scheduler stopped")
