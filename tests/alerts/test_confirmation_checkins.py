"""Confirmation check-ins on the database (clinical.md, "Confirmation check-in"): when one is
planned, when a scheduled questionnaire makes it needless, its window, its cancellation and its
place in ``no_response``.

Marcel, 86, sacroiliac screws, discharged in Paris on 2026-11-22; his walking pain settles at
2/10, then one report at 5/10 meets the pain-recurrence criterion without confirming it.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from backend.alerts.models import Alert
from backend.extensions import db
from backend.questionnaires.models import Assignment
from backend.schedule.worker import run_pass
from tests.factories import checkin_answers, make_patient, make_procedure, record

DISCHARGE = date(2026, 11, 22)
PARIS = ZoneInfo("Europe/Paris")


def local(day: int, hour: int = 10, minute: int = 0) -> datetime:
    """Day ``day`` after discharge at ``hour``:``minute`` in Paris, as a UTC instant."""
    on = DISCHARGE + timedelta(days=day)
    return datetime(on.year, on.month, on.day, hour, minute, tzinfo=PARIS).astimezone(
        ZoneInfo("UTC")
    )


@pytest.fixture
def marcel(app, nurse_ada):
    patient = make_patient(nurse_ada)
    make_procedure(nurse_ada, patient, performed_on=date(2026, 11, 20), discharged_on=DISCHARGE)
    return patient


def walk(patient, *days_pains: tuple[int, int]) -> None:
    """Unscheduled check-ins, each answered and received at 11:00 local on its day."""
    for day, pain in days_pains:
        when = local(day, 11)
        record(patient, when, now=when, answers=checkin_answers(pain_walking=pain))


def confirmations(patient) -> list[Assignment]:
    return list(
        db.session.execute(
            db.select(Assignment)
            .filter_by(patient_id=patient.id, reason="confirmation")
            .order_by(Assignment.opens_at)
        ).scalars()
    )


def alerts_of(patient) -> list[Alert]:
    return list(db.session.execute(db.select(Alert).filter_by(patient_id=patient.id)).scalars())


SETTLED = ((1, 6), (7, 3), (14, 2), (21, 2), (28, 2))


def test_a_relapse_in_the_sparse_months_gets_a_check_in_three_days_later_open_for_three_days(
    marcel,
):
    # Day 100: no scheduled questionnaire until day 180, the window of which is 7 days; the
    # confirmation check-in keeps the 3-day window clinical.md gives it.
    walk(marcel, *SETTLED, (60, 2), (100, 5))
    [confirmation] = confirmations(marcel)
    assert (confirmation.day, confirmation.instrument_key) == (103, "checkin")
    assert confirmation.opens_at == local(103)
    assert confirmation.closes_at == local(106)
    assert confirmation.status == "pending"
    assert alerts_of(marcel) == []


def test_a_scheduled_questionnaire_opening_before_the_check_in_would_makes_it_needless(marcel):
    # Day 53: the check-in would open on day 56 at 10:00, when the scheduled day-56 one opens.
    walk(marcel, *SETTLED, (42, 2), (53, 5))
    assert confirmations(marcel) == []


def test_a_scheduled_questionnaire_opening_after_the_check_in_would_does_not_replace_it(marcel):
    # Day 52: the check-in opens on day 55, a day before the scheduled day-56 questionnaire.
    walk(marcel, *SETTLED, (42, 2), (52, 5))
    [confirmation] = confirmations(marcel)
    assert confirmation.opens_at == local(55)


def test_a_later_answer_that_confirms_nothing_plans_no_second_check_in_for_the_same_report(
    marcel,
):
    walk(marcel, *SETTLED, (60, 2), (100, 5), (101, 2))
    [confirmation] = confirmations(marcel)
    assert (confirmation.day, confirmation.status) == (103, "pending")


def test_the_pending_check_in_is_cancelled_once_the_alert_it_would_confirm_is_open(marcel):
    walk(marcel, *SETTLED, (60, 2), (100, 5), (101, 5))
    [alert] = alerts_of(marcel)
    assert (alert.kind, alert.status) == ("possible_screw_loosening", "open")
    [confirmation] = confirmations(marcel)
    assert confirmation.status == "cancelled"


def test_a_missed_confirmation_check_in_is_not_counted_towards_no_response(marcel, clock):
    walk(marcel, *SETTLED, (60, 2), (100, 5))
    [confirmation] = confirmations(marcel)
    for moment in (confirmation.opens_at, confirmation.closes_at):
        clock.set(moment)
        run_pass()
    db.session.refresh(confirmation)
    assert confirmation.status == "missed"
    # The scheduled questionnaires Marcel never opened (he sent check-ins of his own) are
    # missed too and raise no_response; the missed confirmation check-in is not among them,
    # although from day 30 on a single missed scheduled questionnaire would count.
    [alert] = alerts_of(marcel)
    assert alert.kind == "no_response"
    missed = {m["assignment_id"] for s in alert.evidence["signals"] for m in s["missed"]}
    assert missed and str(confirmation.id) not in missed
    days = {m["day"] for s in alert.evidence["signals"] for m in s["missed"]}
    assert 103 not in days
