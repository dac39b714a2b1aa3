"""``backend.db.update_rows``: a batch of rows updated by id in one statement (PostgreSQL) or
one executemany (SQLite), each with its own values and the shared ones, nothing else touched."""

from __future__ import annotations

from datetime import timedelta

from backend.db import update_rows
from backend.extensions import db
from backend.schedule.models import Reminder
from tests.factories import make_patient, make_procedure
from tests.statements import counted_statements


def test_each_row_gets_its_own_values_and_the_shared_ones_in_one_statement(app, nurse_ada, clock):
    make_procedure(nurse_ada, make_patient(nurse_ada))
    db.session.commit()
    from backend.schedule.jobs import open_questionnaires

    clock.advance(timedelta(days=2))
    assert open_questionnaires(clock.now()) > 0
    db.session.commit()
    reminders = list(db.session.execute(db.select(Reminder).order_by(Reminder.rung)).scalars())
    assert len(reminders) >= 2
    chosen, untouched = reminders[:2], reminders[2:]
    before = {r.id: (r.status, r.reason) for r in untouched}
    later = clock.now() + timedelta(hours=1)

    with counted_statements() as seen:
        update_rows(
            db.session,
            Reminder.__table__,
            [{"id": r.id, "reason": f"reason {n}"} for n, r in enumerate(chosen)],
            loaded=chosen,
            status="skipped",
            updated_at=later,
        )
    assert len(seen) == 1
    # The loaded rows know their new values and have nothing left to flush.
    assert [(r.status, r.reason) for r in chosen] == [
        ("skipped", "reason 0"),
        ("skipped", "reason 1"),
    ]
    assert not db.session.dirty
    db.session.commit()
    db.session.expire_all()
    stored = {
        r.id: (r.status, r.reason, r.updated_at)
        for r in db.session.execute(db.select(Reminder)).scalars()
    }
    assert stored[chosen[0].id] == ("skipped", "reason 0", later)
    assert stored[chosen[1].id] == ("skipped", "reason 1", later)
    assert {i: stored[i][:2] for i in before} == before


def test_no_rows_is_no_statement(app):
    with counted_statements() as seen:
        update_rows(db.session, Reminder.__table__, [], status="skipped")
    assert seen == []


def test_rows_inserted_together_are_one_statement_whatever_their_number_and_read_back_whole(
    app, nurse_ada, clock
):
    import uuid

    from backend.db import insert_rows
    from backend.questionnaires.models import Assignment

    patient = make_patient(nurse_ada)
    make_procedure(nurse_ada, patient)
    (assignment_id,) = db.session.execute(
        db.select(Assignment.id).filter_by(patient_id=patient.id).limit(1)
    ).scalars()
    now = clock.now()

    def rows(n):
        return [
            {
                "id": uuid.uuid4(),
                "assignment_id": assignment_id,
                "patient_id": patient.id,
                "rung": 10 * n + k,
                "due_at": now + timedelta(minutes=k),
                "status": "pending",
                "reason": None if k % 2 else f"reason {k}",
                "created_at": now,
                "updated_at": now,
            }
            for k in range(n)
        ]

    for n in (1, 7):
        written = rows(n)
        with counted_statements() as seen:
            insert_rows(db.session, Reminder.__table__, written)
        assert len(seen) == 1
        db.session.commit()
        stored = {
            r.id: (r.rung, r.due_at, r.reason)
            for r in db.session.execute(
                db.select(Reminder).where(Reminder.id.in_([w["id"] for w in written]))
            ).scalars()
        }
        assert stored == {w["id"]: (w["rung"], w["due_at"], w["reason"]) for w in written}
    with counted_statements() as seen:
        insert_rows(db.session, Reminder.__table__, [])
    assert seen == []


def test_among_finds_the_rows_of_a_batch_of_ids_and_nothing_else(app, nurse_ada, clock):
    from backend.db import among

    make_procedure(nurse_ada, make_patient(nurse_ada))
    make_procedure(nurse_ada, make_patient(nurse_ada, given_name="Josette"))
    from backend.schedule.jobs import open_questionnaires

    clock.advance(timedelta(days=2))
    assert open_questionnaires(clock.now()) > 0
    db.session.commit()
    ids = list(db.session.execute(db.select(Reminder.id).order_by(Reminder.id)).scalars())
    assert len(ids) >= 3
    chosen = set(ids[::2])

    found = db.session.execute(
        db.select(Reminder.id).where(among(db.session, Reminder.id, chosen))
    ).scalars()
    assert set(found) == chosen
    none = db.session.execute(
        db.select(Reminder.id).where(among(db.session, Reminder.id, []))
    ).scalars()
    assert list(none) == []
