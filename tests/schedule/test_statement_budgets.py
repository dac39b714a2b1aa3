"""Statement budgets of the reminder pipeline: a batch costs the same statements at any size.

Each step (open a batch of questionnaires, enqueue their reminders, claim, send and record a
batch of e-mails) is counted with 2 and with 8 patients due at once: a per-row query brought
back anywhere in it makes the counts differ and fails here, long before a benchmark sees it.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from backend.extensions import db
from backend.notify import jobs as notify_jobs
from backend.schedule import jobs
from tests.conftest import T0
from tests.factories import make_patient, make_procedure
from tests.statements import counted_statements


def due_patients(nurse, n: int, discharged_on: date = date(2026, 11, 22)) -> None:
    for i in range(n):
        patient = make_patient(
            nurse,
            given_name=f"Patient {i}",
            contact_channels=["email"],
            email=f"patient{i}@example.org",
        )
        make_procedure(nurse, patient, discharged_on=discharged_on)
    db.session.commit()


def counted(step, clock, counts: dict[str, int], name: str) -> None:
    with counted_statements() as seen:
        handled = step(clock.now())
        db.session.commit()
    assert handled > 0, name
    counts[name] = len(seen)


def pipeline_statements(clock, opens_at: datetime) -> dict[str, int]:
    """Statements of each step for what is due: the questionnaires opening (with their first
    reminders) and sent, then a day later their second reminders enqueued and sent."""
    counts: dict[str, int] = {}
    clock.set(opens_at)
    counted(jobs.open_questionnaires, clock, counts, "open_questionnaires")
    counted(notify_jobs.send_due_deliveries, clock, counts, "send_due_deliveries")
    clock.set(opens_at + timedelta(days=1))
    counted(jobs.enqueue_reminders, clock, counts, "enqueue_reminders")
    counted(notify_jobs.send_due_deliveries, clock, counts, "send_later")
    return counts


def test_opening_enqueueing_and_sending_a_batch_costs_the_same_statements_at_any_size(
    app, nurse_ada, clock, memory_channels
):
    due_patients(nurse_ada, 2, date(2026, 11, 22))  # their day 1 opens at T0
    small = pipeline_statements(clock, T0)
    assert len(memory_channels.email.sent) == 4

    due_patients(nurse_ada, 8, date(2026, 11, 23))  # a day later
    large = pipeline_statements(clock, T0 + timedelta(days=1))
    # The first ones' third reminders went with the second ones' second.
    assert len(memory_channels.email.sent) == 4 + 8 + 10

    assert large == small
    print(f"\nstatements per batch: {small}")
    # What a batch costs, whatever its size: the claim 8 (lapsed leases; due deliveries, read
    # as columns with their notifications' and whether other channels wait; the patients and
    # their phones; the questionnaires' verdict; the lease; the attempts; the answer links),
    # then the record 4 (ours, attempts, deliveries, notifications), one statement on
    # PostgreSQL (data-modifying CTEs).
    postgresql = db.engine.dialect.name == "postgresql"
    assert small["send_due_deliveries"] == small["send_later"] == (9 if postgresql else 12)
    # Opening: the claim (with the patients'), the UPDATE, the first reminders' notifications
    # and deliveries, the ladder's INSERT.
    assert small["open_questionnaires"] == 5
    # Enqueueing the later rungs: the claim, their questionnaires, patients and later rungs,
    # the notifications and deliveries, the reminders' UPDATE, the last rungs they carried
    # (written now rather than at opening: migration 0020).
    assert small["enqueue_reminders"] == 8
