"""What every scheduler pass runs, in order: the schedule's own jobs, then the other domains'.

A job is a function ``(now) -> int``: it handles at most one small batch of due rows (reading
``SCHEDULER_BATCH_SIZE``), flushes, and returns how many it handled. The runner commits after
each call and calls it again until it returns 0, so a job never holds a long transaction and a
killed scheduler loses at most one uncommitted batch (rolled back, done again by the next pass).

Other domains add theirs through the ``scheduler_jobs`` signal (``backend.signals``: the alert
escalations and digests, the research exports), connected per application. After every job,
the runner flushes the notification outbox (``send_due_deliveries``), so what a
job enqueued leaves in the same pass.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from flask import current_app

from backend import signals
from backend.schedule import services

Job = Callable[[datetime], int]


class PipelineJob(Protocol):
    """A job of the reminder pipeline also takes its batch size (None: ``SCHEDULER_BATCH_SIZE``)."""

    __name__: str

    def __call__(self, now: datetime, limit: int | None = None) -> int: ...


def jobs() -> list[Job]:
    """The current application's jobs: the schedule's own (``OWN``), then those the
    ``scheduler_jobs`` receivers give, each once."""
    found: list[Job] = list(OWN)
    for contributed in signals.send(signals.scheduler_jobs):
        found.extend(job for job in contributed if job not in found)
    return found


def _batch() -> int:
    return int(current_app.config["SCHEDULER_BATCH_SIZE"])


def end_pauses(now: datetime) -> int:
    """Patients paused until today (in their zone) are followed again (first: what closed
    during the pause is then cancelled, not missed)."""
    from backend.patients.lifecycle import resume_due_pauses

    return resume_due_pauses(now, limit=_batch())


def close_windows(now: datetime) -> int:
    """Questionnaires whose window closed unanswered become ``missed``."""
    return services.close_expired_assignments(now, limit=_batch())


def open_questionnaires(now: datetime, limit: int | None = None) -> int:
    """Questionnaires whose time has come open, with their reminder ladder."""
    return services.open_due_assignments(now, limit=limit or _batch())


def enqueue_reminders(now: datetime, limit: int | None = None) -> int:
    """Due reminders become notifications in the outbox (or are skipped, with the reason)."""
    return services.enqueue_due_reminders(now, limit=limit or _batch())


# In this order: what closed during a pause is cancelled, not missed, once the pause ended.
OWN: tuple[Job, ...] = (end_pauses, close_windows, open_questionnaires, enqueue_reminders)

# The reminder pipeline: one batch each per round of a pass, interleaved with the delivery job
# (``backend.schedule.worker.run_pass``), so sending starts with the first opened batch. Its
# jobs also take ``limit``: the runner starts a pass with small batches (the first reminders
# leave within seconds) and doubles them each round up to ``SCHEDULER_BATCH_SIZE`` (few, large
# transactions for the bulk of a busy minute).
PIPELINE: tuple[PipelineJob, ...] = (open_questionnaires, enqueue_reminders)
