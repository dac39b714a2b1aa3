"""A patient followed after two procedures (the second on the other side, three days later):
each procedure has its own schedule, and the one no_response alert of the patient gathers the
missed questionnaires of both. Evaluating one procedure never takes the other's missed
questionnaires out of the alert, nor calls them answered late.

Marcel, 86: left sacroiliac screws discharged on 2026-11-22 (P1), right ones on 2026-11-25 (P2),
Paris time. Every questionnaire opens and closes at 10:00 local (09:00 UTC).
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from backend.alerts.models import Alert, AlertEvent
from backend.extensions import db
from backend.questionnaires.models import Assignment
from backend.schedule.worker import run_pass
from tests.factories import make_patient, make_procedure, record


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
def marcel(app, nurse_ada, clock):
    patient = make_patient(nurse_ada)
    first = make_procedure(
        nurse_ada, patient, performed_on=date(2026, 11, 20), discharged_on=date(2026, 11, 22)
    )
    clock.set(utc(2026, 11, 25, 9))
    second = make_procedure(
        nurse_ada,
        patient,
        clock.now(),
        side="right",
        performed_on=date(2026, 11, 24),
        discharged_on=date(2026, 11, 25),
    )
    return patient, first, second


def questionnaire(procedure, day: int) -> Assignment:
    return db.session.execute(
        db.select(Assignment).filter_by(procedure_id=procedure.id, day=day, reason="protocol")
    ).scalar_one()


def no_response(patient) -> Alert:
    return db.session.execute(
        db.select(Alert).filter_by(patient_id=patient.id, kind="no_response")
    ).scalar_one()


def named(alert: Alert) -> set[str]:
    return {m["assignment_id"] for s in alert.evidence["signals"] for m in s["missed"]}


def at(clock, when: datetime) -> None:
    clock.set(when)
    run_pass()


def test_answers_to_one_procedure_do_not_resolve_the_other_procedures_no_response_as_answered_late(
    marcel, clock
):
    patient, first, second = marcel
    at(clock, utc(2026, 11, 26, 9))  # P1 day 1 closes unanswered; P2 day 1 opens
    record(patient, utc(2026, 11, 26, 10), assignment_id=questionnaire(second, 1).id)
    at(clock, utc(2026, 12, 2, 9))  # P1 day 7 closes unanswered: two in a row; P2 day 7 opens
    alert = no_response(patient)
    assert alert.status == "open"
    record(patient, utc(2026, 12, 2, 10), assignment_id=questionnaire(second, 7).id)

    db.session.refresh(alert)
    assert (alert.status, alert.outcome) == ("open", None)
    assert named(alert) == {str(questionnaire(first, 1).id), str(questionnaire(first, 7).id)}
    assert "answered_late" not in str([e.details for e in alert.history])


def test_a_second_procedures_misses_join_the_no_response_alert_without_dropping_the_firsts(
    marcel, clock
):
    patient, first, second = marcel
    at(clock, utc(2026, 11, 26, 9))  # P1 day 1 missed
    at(clock, utc(2026, 11, 29, 9))  # P2 day 1 missed
    at(clock, utc(2026, 12, 2, 9))  # P1 day 7 missed: the alert opens
    at(clock, utc(2026, 12, 5, 9))  # P2 day 7 missed

    alert = no_response(patient)
    assert alert.status == "open"
    assert named(alert) == {
        str(questionnaire(first, 1).id),
        str(questionnaire(first, 7).id),
        str(questionnaire(second, 1).id),
        str(questionnaire(second, 7).id),
    }
    updates = db.session.execute(
        db.select(AlertEvent).filter_by(alert_id=alert.id, action="evidence_updated")
    ).all()
    assert updates == []  # nothing was answered late
