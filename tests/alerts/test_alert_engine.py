"""The alert engine on the database: trajectories through the API, dedupe, order independence,
replays, resolution then relapse, confirmation check-ins, red-flag advice, triage and report."""

from __future__ import annotations

import random
import uuid
from datetime import date, datetime, timedelta

import pytest

from backend.alerts.models import Alert
from backend.alerts.services import escalate_overdue
from backend.extensions import db
from backend.questionnaires.models import Assignment
from tests.conftest import bearer, login
from tests.factories import checkin_answers, make_patient, make_procedure, record

DISCHARGE = date(2026, 11, 22)


def at_day(day: int, hour: int = 10) -> datetime:
    from zoneinfo import ZoneInfo

    local = datetime.combine(DISCHARGE + timedelta(days=day), datetime.min.time()).replace(
        hour=hour, tzinfo=ZoneInfo("Europe/Paris")
    )
    return local.astimezone(ZoneInfo("UTC"))


def alerts_of(patient) -> list[Alert]:
    return list(
        db.session.execute(
            db.select(Alert).filter_by(patient_id=patient.id).order_by(Alert.created_at)
        ).scalars()
    )


@pytest.fixture
def marcel(app, nurse_ada):
    """Marcel, 86, sacroiliac screws (high risk of loosening in weeks 1-8)."""
    patient = make_patient(nurse_ada)
    make_procedure(nurse_ada, patient, performed_on=date(2026, 11, 20), discharged_on=DISCHARGE)
    return patient


def walk(patient, days_pains: list[tuple[int, int]], **extra):
    """Unscheduled check-ins with the given walking pain on each day (answered then)."""
    responses = []
    for day, pain in days_pains:
        when = at_day(day)
        responses.append(
            record(patient, when, now=when, answers=checkin_answers(pain_walking=pain, **extra))
        )
    return responses


def test_a_screw_patient_who_improves_then_relapses_at_week_6_gets_one_loosening_alert(marcel):
    walk(marcel, [(1, 6), (7, 3), (14, 2), (21, 2), (28, 2), (35, 2), (42, 5)])
    assert alerts_of(marcel) == []
    # The first high report asks for a confirmation check-in three days later at 10:00 local.
    confirmation = db.session.execute(
        db.select(Assignment).filter_by(patient_id=marcel.id, reason="confirmation")
    ).scalar_one()
    assert confirmation.opens_at == at_day(45)
    walk(marcel, [(45, 5)])
    [alert] = alerts_of(marcel)
    assert (alert.kind, alert.severity, alert.status) == (
        "possible_screw_loosening",
        "high",
        "open",
    )
    assert alert.rule_key == "possible_screw_loosening" and alert.rule_version == 1
    assert "5/10" in alert.summary["en"] and alert.summary["fr"]
    assert alert.due_at == alert.created_at + timedelta(hours=24)
    # The confirmation check-in answered was completed; nothing pending is left over.
    db.session.refresh(confirmation)
    assert confirmation.status in {"completed", "cancelled"}


def test_a_single_transient_spike_raises_no_alert(marcel):
    walk(marcel, [(1, 5), (7, 2), (14, 2), (21, 5), (24, 2), (28, 2)])
    assert alerts_of(marcel) == []


def test_new_evidence_joins_the_open_alert_and_severity_never_falls(marcel):
    walk(marcel, [(1, 4), (7, 2), (14, 2), (21, 8)])
    walk(marcel, [(22, 8), (23, 9)])
    [alert] = alerts_of(marcel)
    assert len(alert.evidence["signals"]) >= 2
    assert [e.action for e in alert.history][:2] == ["opened", "evidence_added"]


def test_a_replayed_submission_changes_nothing(marcel):
    walk(marcel, [(1, 4), (7, 2), (14, 2)])
    key = str(uuid.uuid4())
    first = record(marcel, at_day(21), answers=checkin_answers(pain_walking=8), key=key)
    before = [(a.id, a.updated_at, len(a.evidence["signals"])) for a in alerts_of(marcel)]
    again = record(
        marcel,
        at_day(21),
        now=at_day(21) + timedelta(hours=5),
        answers=checkin_answers(pain_walking=8),
        key=key,
    )
    assert again.id == first.id
    assert [(a.id, a.updated_at, len(a.evidence["signals"])) for a in alerts_of(marcel)] == before


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_answers_arriving_in_any_order_give_the_same_alerts(app, nurse_ada, seed):
    trajectory = [(1, 6), (7, 3), (14, 2), (21, 2), (28, 6), (31, 6), (35, 7)]
    kinds = []
    for order in (list(trajectory), random.Random(seed).sample(trajectory, len(trajectory))):
        patient = make_patient(nurse_ada)
        make_procedure(nurse_ada, patient, discharged_on=DISCHARGE, performed_on=date(2026, 11, 20))
        arrival = at_day(40)  # offline phone: everything syncs later, in this order
        for day, pain in order:
            record(patient, at_day(day), now=arrival, answers=checkin_answers(pain_walking=pain))
            arrival += timedelta(minutes=1)
        kinds.append(
            sorted(
                (a.kind, a.severity, a.opened_by_response_id is not None)
                for a in alerts_of(patient)
            )
        )
    assert kinds[0] == kinds[1] and kinds[0]


def test_after_resolution_only_later_answers_open_a_new_alert(client, marcel, nurse_ada, clock):
    walk(marcel, [(1, 4), (7, 2), (14, 2), (21, 8)])
    [alert] = alerts_of(marcel)
    clock.set(at_day(22))
    headers = bearer(login(client, nurse_ada)["access_token"])
    resolved = client.post(
        f"/api/v1/alerts/{alert.id}/resolve",
        headers=headers,
        json={"outcome": "advice_given", "note": "Called, rest advised."},
    )
    assert resolved.status_code == 200
    # A late answer given before the resolution does not reopen it ...
    record(marcel, at_day(21, 18), now=at_day(23), answers=checkin_answers(pain_walking=8))
    assert [a.status for a in alerts_of(marcel)] == ["resolved"]
    # ... a relapse reported after it does.
    walk(marcel, [(30, 8)])
    assert [a.status for a in alerts_of(marcel)] == ["resolved", "open"]


@pytest.mark.parametrize(
    ("symptoms", "extra", "kind"),
    [
        (["leg_weakness"], {}, "red_flag"),
        (["numbness"], {}, "red_flag"),
        (["bladder_bowel"], {}, "red_flag"),
        (["breathlessness"], {}, "red_flag"),
        (["chest_pain"], {}, "red_flag"),
        (["fever", "wound_redness"], {}, "red_flag"),
        (["fever", "wound_discharge"], {}, "red_flag"),
        ([], {"walking_aid": "unable"}, "red_flag"),
        (["fever"], {}, "worsening"),
        ([], {"call_request": True}, "call_request"),
    ],
)
def test_each_red_flag_and_its_neighbours(marcel, symptoms, extra, kind):
    walk(marcel, [(1, 3), (3, 3)])
    record(marcel, at_day(5), answers=checkin_answers(pain_walking=3, symptoms=symptoms, **extra))
    assert kind in {a.kind for a in alerts_of(marcel)}
    if kind != "red_flag":
        assert "red_flag" not in {a.kind for a in alerts_of(marcel)}


def test_a_fall_with_more_pain_is_a_red_flag(marcel):
    walk(marcel, [(1, 3), (3, 3)])
    record(marcel, at_day(5), answers=checkin_answers(pain_walking=5, fell=True))
    [alert] = alerts_of(marcel)
    assert alert.kind == "red_flag" and alert.severity == "urgent"
    assert alert.due_at - alert.created_at == timedelta(hours=4)


def test_a_red_flag_answer_tells_the_patient_to_call_the_emergency_number(
    client, marcel, nurse_ada, clock
):
    clock.set(at_day(3))
    ada = bearer(login(client, nurse_ada)["access_token"])
    code = client.post(f"/api/v1/patients/{marcel.id}/enrollment-codes", headers=ada).get_json()[
        "code"
    ]
    phone = bearer(
        client.post(
            "/api/v1/enrollment/claim", json={"code": code, "device": {"platform": "android"}}
        ).get_json()["access_token"]
    )
    body = {
        "assignment_id": None,
        "instrument": "checkin",
        "version": 1,
        "answered_at": clock.now().isoformat(),
        "source": "patient",
        "answers": checkin_answers(symptoms=["chest_pain"]),
    }
    response = client.post(
        "/api/v1/me/responses", json=body, headers={**phone, "Idempotency-Key": str(uuid.uuid4())}
    )
    advice = response.get_json()["advice"]
    assert advice["emergency"] is True and "15" in advice["message"]
    assert "Appelez" in advice["message"]  # Marcel reads French
    calm = client.post(
        "/api/v1/me/responses",
        json={**body, "answers": checkin_answers()},
        headers={**phone, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert calm.get_json()["advice"] is None


def test_the_queue_is_ordered_by_severity_then_overdue_then_age_and_is_site_isolated(
    client, app, nurse_ada, nurse_noe, clock
):
    patients = [make_patient(nurse_ada, mrn=f"Q{i}") for i in range(3)]
    for patient in patients:
        make_procedure(nurse_ada, patient, discharged_on=DISCHARGE, performed_on=date(2026, 11, 20))
    record(patients[0], at_day(2), answers=checkin_answers(call_request=True))  # high
    record(patients[1], at_day(3), answers=checkin_answers(symptoms=["numbness"]))  # urgent
    record(patients[2], at_day(2, 11), answers=checkin_answers(change="much_worse"))  # routine
    record(patients[0], at_day(4), answers=checkin_answers(symptoms=["chest_pain"]))  # urgent
    clock.set(at_day(4, 12))
    headers = bearer(login(client, nurse_ada)["access_token"])
    queue = client.get("/api/v1/alerts", headers=headers).get_json()["items"]
    assert [(a["severity"], a["patient"]["mrn"]) for a in queue] == [
        ("urgent", "Q1"),
        ("urgent", "Q0"),
        ("high", "Q0"),
        ("routine", "Q2"),
    ]
    assert queue[0]["overdue"] is True and queue[1]["overdue"] is False
    urgent_only = client.get("/api/v1/alerts?severity=urgent", headers=headers).get_json()
    assert len(urgent_only["items"]) == 2
    noe = bearer(login(client, nurse_noe)["access_token"])
    assert client.get("/api/v1/alerts", headers=noe).get_json()["items"] == []
    assert client.get(f"/api/v1/alerts/{queue[0]['id']}", headers=noe).status_code == 404
    assert (
        client.post(f"/api/v1/alerts/{queue[0]['id']}/acknowledge", headers=noe).status_code == 404
    )


def test_triage_transitions_notes_history_and_illegal_moves(client, marcel, nurse_ada, clock):
    record(marcel, at_day(2), answers=checkin_answers(call_request=True))
    [alert] = alerts_of(marcel)
    clock.set(at_day(2, 11))
    headers = bearer(login(client, nurse_ada)["access_token"])
    url = f"/api/v1/alerts/{alert.id}"
    assert (
        client.post(
            f"{url}/notes", json={"text": "No answer, retry at 14:00."}, headers=headers
        ).status_code
        == 201
    )
    acked = client.post(f"{url}/acknowledge", headers=headers)
    assert acked.status_code == 200 and acked.get_json()["status"] == "acknowledged"
    assert acked.get_json()["acknowledged_by"]["id"] == str(nurse_ada.id)
    assert client.post(f"{url}/acknowledge", headers=headers).status_code == 409
    bad = client.post(f"{url}/resolve", json={"outcome": "fixed_it"}, headers=headers)
    assert bad.status_code == 422 and bad.get_json()["errors"][0]["pointer"] == "/outcome"
    done = client.post(f"{url}/resolve", json={"outcome": "advice_given"}, headers=headers)
    assert done.status_code == 200 and done.get_json()["outcome"] == "advice_given"
    assert (
        client.post(f"{url}/resolve", json={"outcome": "other"}, headers=headers).status_code == 409
    )
    detail = client.get(url, headers=headers).get_json()
    assert [h["action"] for h in detail["history"]] == [
        "opened",
        "note",
        "acknowledged",
        "resolved",
    ]
    assert detail["notes"][0]["text"] == "No answer, retry at 14:00."
    assert client.get("/api/v1/alerts", headers=headers).get_json()["items"] == []
    resolved = client.get("/api/v1/alerts?status=resolved", headers=headers).get_json()
    assert len(resolved["items"]) == 1


def test_overdue_alerts_are_escalated_once(marcel, clock):
    record(marcel, at_day(2), answers=checkin_answers(symptoms=["numbness"]))
    [alert] = alerts_of(marcel)
    assert escalate_overdue(at_day(2) + timedelta(hours=3)) == []
    assert escalate_overdue(at_day(2) + timedelta(hours=4)) == [alert]
    assert escalate_overdue(at_day(2) + timedelta(hours=9)) == []
    db.session.flush()
    db.session.refresh(alert)
    assert [e.action for e in alert.history][-1] == "escalated"


def test_the_rule_quality_report_counts_outcomes_and_time_to_acknowledge(
    client, marcel, nurse_ada, clock
):
    record(marcel, at_day(2), answers=checkin_answers(call_request=True))
    [alert] = alerts_of(marcel)
    clock.set(at_day(2) + timedelta(hours=2))
    headers = bearer(login(client, nurse_ada)["access_token"])
    client.post(f"/api/v1/alerts/{alert.id}/acknowledge", headers=headers)
    client.post(
        f"/api/v1/alerts/{alert.id}/resolve", json={"outcome": "false_alarm"}, headers=headers
    )
    report = client.get("/api/v1/reports/rules", headers=headers).get_json()["items"]
    assert report == [
        {
            "rule": {"key": "call_request", "version": 1},
            "alerts": 1,
            "resolved": 1,
            "outcomes": {"false_alarm": 1},
            "false_alarm_share": 1.0,
            "imaging_ordered": 0,
            "loosening_confirmed": 0,
            "revision_planned": 0,
            "median_seconds_to_acknowledge": 7200.0,
        }
    ]
