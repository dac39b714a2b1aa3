"""The kept rule state (``RuleState``): after every answer, in any order, it is the whole
evaluation of the procedure's answers, and the alerts are the ones a whole evaluation at every
answer gives (same kinds, severities, evidence, summaries, history), through a nurse's
resolution and a rule-version switch."""

from __future__ import annotations

import json
import random
import re
from datetime import date, timedelta

import pytest

from backend.alerts import services as alerts
from backend.alerts import versions
from backend.alerts.models import Alert, AlertEvent, RuleState
from backend.alerts.rules import ENGINE, Fold, RuleSet, evaluate
from backend.extensions import db
from backend.patients.models import Procedure
from backend.questionnaires.models import Response
from tests.alerts.test_alert_engine import DISCHARGE, at_day
from tests.alerts.test_incremental_rules import canonical
from tests.factories import checkin_answers, make_patient, make_procedure, principal_of, record


def history_of(procedure: Procedure) -> list:
    rows = db.session.execute(
        db.select(
            Response.id, Response.answered_at, Response.day, Response.answers, Response.scores
        ).filter_by(procedure_id=procedure.id)
    ).all()
    return [alerts.response_facts(r) for r in rows]


def kept_state(procedure: Procedure, rules: RuleSet) -> Fold:
    row = db.session.get(RuleState, procedure.id, populate_existing=True)
    assert row is not None and row.engine == ENGINE and row.rule_version == rules.version
    return Fold.load(row.data(), alerts.procedure_facts(procedure), rules)


def answers(rng: random.Random) -> dict:
    return checkin_answers(
        pain_walking=rng.choice([1, 2, 2, 3, 3, 4, 6, 7, 8]),
        pain_rest=rng.randint(0, 4),
        symptoms=rng.choice([[], [], [], [], ["clicking"], ["fever"], ["numbness"]]),
        call_request=rng.random() < 0.1,
        walking_aid=rng.choice(["none", "cane", "cane", "walker"]),
        analgesics=rng.choice(["none", "non_opioid", "non_opioid", "weak_opioid"]),
    )


def days_arriving(rng: random.Random, count: int) -> list[int]:
    """Answer days in arrival order: mostly in order, a few held back by an offline phone."""
    days = list(range(1, count + 1))
    for _ in range(3):
        late = days.pop(rng.randrange(count - 1))
        days.insert(min(count - 1, days.index(late + 1) + rng.randint(1, 4)), late)
    return days


@pytest.fixture
def marcel(app, nurse_ada):
    patient = make_patient(nurse_ada)
    make_procedure(nurse_ada, patient, performed_on=date(2026, 11, 20), discharged_on=DISCHARGE)
    return patient


def test_the_kept_state_is_the_whole_evaluation_after_every_answer_in_any_order(
    marcel, monkeypatch
):
    whole = []
    real_fold = alerts.fold
    monkeypatch.setattr(alerts, "fold", lambda *a: whole.append(1) or real_fold(*a))
    rng = random.Random(17)
    procedure = marcel.current_procedure
    days = days_arriving(rng, 24)
    for n, day in enumerate(days, start=1):
        record(
            marcel,
            at_day(day),
            now=at_day(max(days[:n])) + timedelta(hours=1),
            answers=answers(rng),
        )
        history = history_of(procedure)
        state = kept_state(procedure, versions.site_rules(marcel.site_id)[0])
        assert state.count == len(history) == n
        expected = evaluate(alerts.procedure_facts(procedure), history)
        assert canonical(state.finish()) == canonical(expected), day
    late = sum(1 for n, day in enumerate(days) if day < max(days[: n + 1]))
    assert len(whole) == 1 + late  # the first answer and each late one; the others one step


def normalised_alerts(patient) -> str:
    """The patient's alerts and their history, with every id replaced by the answer's day (the
    two runs store the same answers under other ids)."""
    rows = db.session.execute(
        db.select(Alert).filter_by(patient_id=patient.id).order_by(Alert.created_at, Alert.kind)
    ).scalars()
    shown = []
    for alert in rows:
        events = db.session.execute(
            db.select(AlertEvent.action, AlertEvent.details, AlertEvent.occurred_at)
            .filter_by(alert_id=alert.id)
            .order_by(AlertEvent.occurred_at, AlertEvent.action)
        ).all()
        shown.append(
            {
                "kind": alert.kind,
                "severity": alert.severity,
                "status": alert.status,
                "rule": [alert.rule_key, alert.rule_version],
                "summary": alert.summary,
                "evidence": alert.evidence,
                "created_at": alert.created_at.isoformat(),
                "due_at": alert.due_at.isoformat(),
                "events": [[e.action, e.details, e.occurred_at.isoformat()] for e in events],
            }
        )
    text = json.dumps(shown, sort_keys=True)
    days = dict(
        db.session.execute(
            db.select(Response.id, Response.day).filter_by(patient_id=patient.id)
        ).all()
    )
    for response_id, day in days.items():
        text = text.replace(str(response_id), f"answer-of-day-{day}")
    assert not re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-", text.replace(str(patient.id), "")), text
    return text


def run(nurse_ada, seed: int, switched_at):
    """The same answers, resolutions and rule switch for a new patient; its alerts."""
    patient = make_patient(nurse_ada)
    make_procedure(nurse_ada, patient, performed_on=date(2026, 11, 20), discharged_on=DISCHARGE)
    rng = random.Random(seed)
    days = days_arriving(rng, 40)
    for n, day in enumerate(days, start=1):
        now = at_day(max(days[:n])) + timedelta(hours=1)
        record(patient, at_day(day), now=now, answers=answers(rng))
        if n in (12, 25):  # a nurse resolves what is open
            for alert in db.session.execute(
                db.select(Alert).filter(Alert.patient_id == patient.id, Alert.status != "resolved")
            ).scalars():
                alerts.resolve(principal_of(nurse_ada), alert, "advice_given", None, now)
            db.session.commit()
        if n == 30:  # the site moves to version 2
            versions.set_versions(patient.site_id, 2, None, "test", switched_at or now)
            db.session.commit()
    return normalised_alerts(patient)


@pytest.mark.parametrize("seed", [1, 2])
def test_the_alerts_are_the_same_whether_the_answers_are_evaluated_one_by_one_or_whole(
    nurse_ada, monkeypatch, seed
):
    one_by_one = run(nurse_ada, seed, None)
    # The site back on version 1 for the second run, which switches again (the latest row is
    # in force: its switch is dated after this one).
    versions.set_versions(nurse_ada.site_id, 1, None, "test", at_day(100))
    db.session.commit()
    monkeypatch.setattr(alerts, "_incremental", lambda *a: (None, None))
    whole = run(nurse_ada, seed, at_day(200))
    assert '"kind": "' in one_by_one  # the answers did raise alerts
    assert one_by_one == whole


def test_a_changed_baseline_is_evaluated_whole(marcel, nurse_ada, monkeypatch):
    for day in (1, 2, 3):
        record(marcel, at_day(day), answers=checkin_answers(pain_walking=3))
    procedure = marcel.current_procedure
    procedure.baseline_pain_walking = 5
    db.session.commit()
    whole = []
    real_fold = alerts.fold
    monkeypatch.setattr(alerts, "fold", lambda *a: whole.append(1) or real_fold(*a))
    record(marcel, at_day(4), answers=checkin_answers(pain_walking=3))
    record(marcel, at_day(5), answers=checkin_answers(pain_walking=3))
    assert len(whole) == 1  # the day 4 answer; day 5 from the state written then
    state = kept_state(procedure, versions.site_rules(marcel.site_id)[0])
    expected = evaluate(alerts.procedure_facts(procedure), history_of(procedure))
    assert canonical(state.finish()) == canonical(expected)


def test_an_answer_that_adds_no_signal_rewrites_only_the_small_part_of_the_state(marcel):
    from tests.statements import counted_statements

    for day in (1, 2, 3):
        record(marcel, at_day(day), answers=checkin_answers(pain_walking=3))
    with counted_statements() as seen:
        record(marcel, at_day(4), answers=checkin_answers(pain_walking=3))
    updates = [s for s in seen if s.lstrip().upper().startswith("UPDATE RULE_STATES")]
    assert len(updates) == 1 and "state=" in updates[0]
    assert "signals=" not in updates[0] and "requests=" not in updates[0]
    with counted_statements() as seen:  # a red flag: a signal to keep
        record(marcel, at_day(5), answers=checkin_answers(symptoms=["numbness"]))
    updates = [s for s in seen if s.lstrip().upper().startswith("UPDATE RULE_STATES")]
    assert len(updates) == 1 and "signals=" in updates[0]
