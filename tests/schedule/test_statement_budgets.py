"""Statement budgets of the reminder pipeline: a batch costs the same statements at any size.

Each step (open a batch of questionnaires, enqueue their reminders, claim, send and record a
batch of e-mails) is counted with 2 and with 8 patients due at once: a per-row query brought
back anywhere in it makes the counts differ and fails here, long before a benchmark sees it.
"""

from __future__ import annotations

from backend.extensions import db
from backend.notify import jobs as notify_jobs
from backend.schedule import jobs
from tests.factories import make_patient, make_procedure
from tests.statements import counted_statements


def due_patients(nurse, n: int) -> None:
    for i in range(n):
        patient = make_patient(
            nurse,
            given_name=f"Patient {i}",
            contact_channels=["email"],
            email=f"patient{i}@example.org",
        )
        make_procedure(nurse, patient)
    db.session.commit()


def pipeline_statements(clock) -> dict[str, int]:
    """Statements of each step for what is due now, the outbox's send included."""
    counts = {}
    for step in (jobs.open_questionnaires, jobs.enqueue_reminders, notify_jobs.send_due_deliveries):
        with counted_statements() as seen:
            handled = step(clock.now())
            db.session.commit()
        assert handled > 0, step.__name__
        counts[step.__name__] = len(seen)
    return counts


def test_opening_enqueueing_and_sending_a_batch_costs_the_same_statements_at_any_size(
    app, nurse_ada, clock, memory_channels
):
    due_patients(nurse_ada, 2)
    small = pipeline_statements(clock)
    assert len(memory_channels.email.sent) == 2

    due_patients(nurse_ada, 8)
    large = pipeline_statements(clock)
    assert len(memory_channels.email.sent) == 10

    assert large == small
    print(f"\nstatements per batch: {small}")
    # What a batch costs, whatever its size: the claim 8 (lapsed leases; due deliveries, read
    # as columns with their notifications' and whether other channels wait; the patients and
    # their phones; the questionnaires' verdict; the lease; the attempts; the answer links),
    # then the record 4 (ours, attempts, deliveries, notifications), one statement on
    # PostgreSQL (data-modifying CTEs).
    postgresql = db.engine.dialect.name == "postgresql"
    assert small["send_due_deliveries"] == (9 if postgresql else 12)
    # Opening: the claim (with the patients' zones), the UPDATE, the ladder's INSERT.
    assert small["open_questionnaires"] <= 3
