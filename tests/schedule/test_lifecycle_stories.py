"""A patient's follow-up outside the happy path, walked day by day with the clock moved.

Marcel, 86, sacroiliac screws, lives in Lyon (Europe/Paris, UTC+1 all winter) and was discharged
on 2026-11-22: the questionnaire of day d opens at 10:00 local (09:00 UTC) on 22 November + d
days and closes three days later. Nurse Ada follows him. Each story asserts what Marcel
receives, what Ada sees (alerts, queue) and what the audit log holds.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from backend.alerts.models import Alert
from backend.audit.models import AuditEvent
from backend.extensions import db
from backend.questionnaires.models import Assignment
from backend.schedule.models import Reminder
from backend.schedule.worker import run_pass
from notifications import TransportError
from tests.conftest import bearer, login
from tests.factories import checkin_answers, make_patient, make_procedure, record
from tests.notify.conftest import notifications_of

DISCHARGE = date(2026, 11, 22)


def day(n: int, hour: int = 9, minute: int = 0) -> datetime:
    """Day ``n`` after the discharge at ``hour``:``minute`` UTC (09:00 UTC is 10:00 in Lyon)."""
    return datetime(2026, 11, 22, hour, minute, tzinfo=UTC) + timedelta(days=n)


def walk(clock: Any, first: int, last: int) -> None:
    """A scheduler pass at 10:00 local every day from ``first`` to ``last``: every opening,
    reminder and closing of the protocol falls on one of them."""
    for n in range(first, last + 1):
        clock.set(day(n))
        run_pass()


def schedule_of(patient: Any) -> dict[int, Assignment]:
    db.session.expire_all()
    rows = db.session.execute(
        db.select(Assignment).filter_by(patient_id=patient.id, reason="protocol")
    ).scalars()
    by_day: dict[int, Assignment] = {}
    for a in sorted(rows, key=lambda a: a.created_at):
        if a.status != "cancelled" or a.day not in by_day:
            by_day[a.day] = a
    return by_day


def alerts_of(patient: Any) -> list[Alert]:
    db.session.expire_all()
    return list(
        db.session.execute(
            db.select(Alert).filter_by(patient_id=patient.id).order_by(Alert.created_at)
        ).scalars()
    )


def reminded_days(patient: Any) -> list[int]:
    """The days whose questionnaire the patient was reminded of (a message accepted)."""
    days = []
    for n in notifications_of(patient.id):
        if n.status == "sent" and n.wanted_key is not None:
            # The schedule's key for the questionnaire a reminder is about (wanted_key).
            assignment_id = uuid.UUID(hex=n.wanted_key.removeprefix("questionnaire:"))
            assignment = db.session.get(Assignment, assignment_id)
            assert assignment is not None
            days.append(assignment.day)
    return days


def audit(patient: Any, action: str) -> list[AuditEvent]:
    return list(
        db.session.execute(
            db.select(AuditEvent)
            .filter_by(patient_id=patient.id, action=action)
            .order_by(AuditEvent.occurred_at)
        ).scalars()
    )


def ada(client: Any, nurse_ada: Any) -> dict[str, str]:
    """Ada signs in at the clock's time (an access token lives 15 minutes)."""
    return bearer(login(client, nurse_ada)["access_token"])


def queue(client: Any, nurse_ada: Any) -> list[dict[str, Any]]:
    return list(client.get("/api/v1/alerts", headers=ada(client, nurse_ada)).get_json()["items"])


def enroll_phone(client: Any, nurse_ada: Any, patient: Any) -> dict[str, Any]:
    code = client.post(
        f"/api/v1/patients/{patient.id}/enrollment-codes", headers=ada(client, nurse_ada)
    ).get_json()["code"]
    claim = client.post(
        "/api/v1/enrollment/claim",
        json={"code": code, "device": {"platform": "android", "push_token": "fcm-marcel"}},
    )
    assert claim.status_code == 201, claim.get_json()
    return dict(claim.get_json())


def answer(patient: Any, n: int, **answers: Any) -> None:
    """Marcel answers the questionnaire of day ``n`` two hours after it opened."""
    assignment = schedule_of(patient)[n]
    record(
        patient,
        assignment.opens_at + timedelta(hours=2),
        assignment_id=assignment.id,
        instrument=assignment.instrument_key,
        answers=checkin_answers(**answers) if assignment.instrument_key == "checkin" else None,
    )


@pytest.fixture
def marcel(app: Any, nurse_ada: Any, clock: Any) -> Any:
    clock.set(day(0, 15))
    patient = make_patient(nurse_ada, clock.now(), contact_channels=["sms"])
    make_procedure(nurse_ada, patient, clock.now(), discharged_on=DISCHARGE)
    return patient


# --- death at week 3 -----------------------------------------------------------------------


def test_a_death_at_week_3_ends_the_follow_up_and_nobody_calls_the_family(
    client, marcel, nurse_ada, clock, memory_channels
):
    phone = enroll_phone(client, nurse_ada, marcel)
    walk(clock, 1, 1)
    answer(marcel, 1)
    walk(clock, 2, 17)  # days 7 and 14 missed: no_response when day 14 closes (day 17)
    clock.set(day(18, 11))
    record(marcel, clock.now(), answers=checkin_answers(call_request=True))  # a clinical alert
    no_response, call = sorted(alerts_of(marcel), key=lambda a: a.kind != "no_response")
    assert (no_response.kind, no_response.status) == ("no_response", "open")
    assert (call.kind, call.status) == ("call_request", "open")
    reminded_before = reminded_days(marcel)

    clock.set(day(19, 15))
    died = client.post(
        f"/api/v1/patients/{marcel.id}/status",
        json={"status": "deceased", "reason": "Died at home, the daughter called the ward"},
        headers=ada(client, nurse_ada),
    )
    assert died.status_code == 201, died.get_json()
    walk(clock, 20, 70)

    # Marcel's family receives nothing more, and his phone is signed out.
    assert reminded_days(marcel) == reminded_before
    assert memory_channels.sms.sent and all(m.to == marcel.phone for m in memory_channels.sms.sent)
    assert client.get("/api/v1/me", headers=bearer(phone["access_token"])).status_code == 401
    refreshed = client.post("/api/v1/auth/refresh", json={"refresh_token": phone["refresh_token"]})
    assert refreshed.status_code == 401
    # Nothing is owed or missed after the death: every later questionnaire is cancelled.
    later = {n: a for n, a in schedule_of(marcel).items() if n >= 21}
    assert later and {(a.status, a.status_reason) for a in later.values()} == {
        ("cancelled", "patient_deceased")
    }
    assert not db.session.execute(
        db.select(Reminder).filter_by(patient_id=marcel.id, status="pending")
    ).first()
    # Ada sees the clinical alert still to close, never escalated; the no_response is gone.
    no_response, call = sorted(alerts_of(marcel), key=lambda a: a.kind != "no_response")
    assert (no_response.status, no_response.outcome) == ("resolved", "follow_up_ended")
    assert no_response.resolved_by_id is None
    assert no_response.history[-1].details == {
        "outcome": "follow_up_ended",
        "reason": "patient_deceased",
        "by": "system",
    }
    assert call.status == "open" and call.escalated_at is None and clock.now() > call.due_at
    assert [a["kind"] for a in queue(client, nurse_ada)] == ["call_request"]
    # The audit log holds who recorded the death, when, and the before and after.
    [change] = audit(marcel, "patient.status.change")
    assert change.actor_id == nurse_ada.id and change.occurred_at == day(19, 15)
    assert (change.details["before"], change.details["after"]) == ("active", "deceased")
    history = client.get(
        f"/api/v1/patients/{marcel.id}/status", headers=ada(client, nurse_ada)
    ).get_json()["items"]
    assert [(h["to_status"], h["reason"], h["changed_by"]["id"]) for h in history] == [
        ("deceased", "Died at home, the daughter called the ward", str(nurse_ada.id))
    ]
    # And the follow-up cannot be restarted by mistake.
    again = client.post(
        f"/api/v1/patients/{marcel.id}/status",
        json={"status": "active", "reason": "wrong patient"},
        headers=ada(client, nurse_ada),
    )
    assert again.status_code == 409


# --- readmission from day 10 to day 25 ----------------------------------------------------


def test_a_readmission_from_day_10_to_day_25_suspends_then_resumes_the_follow_up(
    client, marcel, nurse_ada, clock, memory_channels
):
    walk(clock, 1, 1)
    answer(marcel, 1)
    walk(clock, 2, 7)
    answer(marcel, 7)
    walk(clock, 8, 9)
    clock.set(day(10, 14))
    readmitted = client.post(
        f"/api/v1/patients/{marcel.id}/status",
        json={"status": "readmitted", "reason": "Readmitted to geriatrics for pneumonia"},
        headers=ada(client, nurse_ada),
    )
    assert readmitted.status_code == 201
    walk(clock, 11, 24)
    clock.set(day(25, 11))
    back = client.post(
        f"/api/v1/patients/{marcel.id}/status",
        json={"status": "active", "reason": "Back home"},
        headers=ada(client, nurse_ada),
    )
    assert back.status_code == 201
    walk(clock, 26, 30)

    schedule = schedule_of(marcel)
    # Days 14 and 21 passed in hospital: not owed, not missed, never reminded.
    assert (schedule[14].status, schedule[14].status_reason) == (
        "cancelled",
        "passed_while_readmitted",
    )
    assert (schedule[21].status, schedule[21].status_reason) == (
        "cancelled",
        "passed_while_readmitted",
    )
    assert not any(a.status == "missed" for a in schedule.values())
    # What resumes: day 30 opened on its day and was reminded at 10:00 local.
    assert schedule[30].status == "open"
    assert reminded_days(marcel) == [1, 7, 30]
    assert alerts_of(marcel) == [] and queue(client, nurse_ada) == []
    assert [
        (e.details["before"], e.details["after"]) for e in audit(marcel, "patient.status.change")
    ] == [("active", "readmitted"), ("readmitted", "active")]


def test_a_pause_until_a_date_ends_by_itself_at_midnight_in_the_patients_zone(
    client, marcel, nurse_ada, clock, memory_channels
):
    walk(clock, 1, 1)
    answer(marcel, 1)
    clock.set(day(5, 12))
    paused = client.post(
        f"/api/v1/patients/{marcel.id}/status",
        json={"status": "paused", "reason": "On holiday", "paused_until": "2026-12-16"},
        headers=ada(client, nurse_ada),
    )
    assert paused.status_code == 201 and paused.get_json()["paused_until"] == "2026-12-16"
    walk(clock, 6, 23)  # 16 December is day 24
    clock.set(datetime(2026, 12, 15, 22, 59, tzinfo=UTC))  # 23:59 in Lyon
    run_pass()
    db.session.expire_all()
    assert marcel.status == "paused"
    clock.set(datetime(2026, 12, 15, 23, 0, tzinfo=UTC))  # midnight in Lyon
    run_pass()
    db.session.expire_all()
    assert marcel.status == "active" and marcel.paused_until is None
    clock.set(datetime(2026, 12, 16, 7, 0, tzinfo=UTC))  # 08:00, the end of quiet hours
    run_pass()
    walk(clock, 24, 31)

    schedule = schedule_of(marcel)
    assert {n: schedule[n].status_reason for n in (7, 14)} == {
        7: "passed_while_paused",
        14: "passed_while_paused",
    }
    # Day 21 (13 to 16 December) was still open when the pause ended at midnight: it opened
    # at once and its one useful reminder left at the end of quiet hours, at 08:00.
    assert schedule[21].status == "missed" and schedule[30].status == "open"
    assert reminded_days(marcel) == [1, 21, 30, 30]
    assert alerts_of(marcel) == []  # one miss after the pause: no no_response
    [resumed] = [
        e for e in audit(marcel, "patient.status.change") if e.details["after"] == "active"
    ]
    assert resumed.actor_type == "system" and resumed.details["cause"] == "pause_ended"
    history = client.get(
        f"/api/v1/patients/{marcel.id}/status", headers=ada(client, nurse_ada)
    ).get_json()["items"]
    assert [(h["to_status"], h["cause"], h["changed_by"]) for h in history][-1] == (
        "active",
        "pause_ended",
        None,
    )


def test_a_pause_needs_a_reason_and_a_date_to_come(client, marcel, nurse_ada, clock):
    clock.set(day(3, 12))
    bad = client.post(
        f"/api/v1/patients/{marcel.id}/status",
        json={"status": "readmitted", "reason": " ", "paused_until": "2026-11-24"},
        headers=ada(client, nurse_ada),
    )
    assert bad.status_code == 422
    assert {e["pointer"] for e in bad.get_json()["errors"]} == {"/reason", "/paused_until"}
    past = client.post(
        f"/api/v1/patients/{marcel.id}/status",
        json={"status": "paused", "reason": "holiday", "paused_until": "2026-11-25"},
        headers=ada(client, nurse_ada),
    )
    assert [e["pointer"] for e in past.get_json()["errors"]] == ["/paused_until"]
    db.session.expire_all()
    assert marcel.status == "active" and audit(marcel, "patient.status.change") == []


# --- withdrawal of care consent ---------------------------------------------------------------


def test_withdrawing_care_consent_stops_every_reminder_at_once(
    client, marcel, nurse_ada, clock, memory_channels
):
    phone = enroll_phone(client, nurse_ada, marcel)
    walk(clock, 1, 1)
    answer(marcel, 1)
    walk(clock, 2, 6)
    # Day 7's reminder cannot leave (the SMS provider is down): it waits in the outbox.
    memory_channels.sms.fail_next(TransportError("unavailable", permanent=False, code="503"), 50)
    clock.set(day(7))
    run_pass()
    [waiting] = [n for n in notifications_of(marcel.id) if n.status == "pending"]

    clock.set(day(7, 15))
    url = f"/api/v1/patients/{marcel.id}/consents"
    wrong = client.post(
        url,
        json={
            "purpose": "care",
            "decision": "withdrawn",
            "decided_on": "2026-11-10",  # before the consent he gave
            "method": "verbal_witnessed",
        },
        headers=ada(client, nurse_ada),
    )
    assert wrong.status_code == 422
    assert {e["pointer"] for e in wrong.get_json()["errors"]} == {"/decided_on", "/witness"}
    future = client.post(
        url,
        json={
            "purpose": "care",
            "decision": "withdrawn",
            "decided_on": "2026-12-02",
            "method": "paper",
        },
        headers=ada(client, nurse_ada),
    )
    assert [e["pointer"] for e in future.get_json()["errors"]] == ["/decided_on"]
    db.session.expire_all()
    assert marcel.status == "active"

    withdrawn = client.post(
        url,
        json={
            "purpose": "care",
            "decision": "withdrawn",
            "decided_on": "2026-11-29",
            "method": "verbal_witnessed",
            "witness": "Dr Léon, on the phone with Marcel",
        },
        headers=ada(client, nurse_ada),
    )
    assert withdrawn.status_code == 201, withdrawn.get_json()
    memory_channels.sms.clear_failures()
    walk(clock, 8, 40)

    db.session.expire_all()
    assert marcel.status == "withdrawn"
    assert (waiting.status, waiting.status_reason) == ("cancelled", "care_consent_withdrawn")
    # Only day 1 was ever reminded (once: answered before the second rung).
    assert reminded_days(marcel) == [1] and len(memory_channels.sms.sent) == 1
    assert {a.status_reason for n, a in schedule_of(marcel).items() if n >= 7} == {
        "care_consent_withdrawn"
    }
    assert client.get("/api/v1/me", headers=bearer(phone["access_token"])).status_code == 401
    consents = client.get(url, headers=ada(client, nurse_ada)).get_json()
    assert consents["current"] == {
        "care": {"state": "withdrawn", "since": "2026-11-29"},
        "research": {"state": "none", "since": None},
    }
    assert [(c["decision"], c["method"]) for c in consents["items"]] == [
        ("given", "paper"),
        ("withdrawn", "verbal_witnessed"),
    ]
    assert consents["items"][1]["recorded_by"]["id"] == str(nurse_ada.id)
    [change] = audit(marcel, "patient.status.change")
    assert change.details["cause"] == "care_consent_withdrawn"
    assert [e.details["decision"] for e in audit(marcel, "consent.record")] == [
        "given",
        "withdrawn",
    ]
    # No new code for a patient who withdrew.
    code = client.post(
        f"/api/v1/patients/{marcel.id}/enrollment-codes", headers=ada(client, nurse_ada)
    )
    assert code.status_code == 409


def test_research_consent_is_its_own_purpose_and_does_not_touch_the_follow_up(
    client, marcel, nurse_ada, clock
):
    clock.set(day(2, 12))
    url = f"/api/v1/patients/{marcel.id}/consents"
    body = {"purpose": "research", "decided_on": "2026-11-24", "method": "paper"}
    given = client.post(url, json={**body, "decision": "given"}, headers=ada(client, nurse_ada))
    assert given.status_code == 201
    twice = client.post(url, json={**body, "decision": "given"}, headers=ada(client, nurse_ada))
    assert [e["pointer"] for e in twice.get_json()["errors"]] == ["/decision"]
    clock.advance(timedelta(minutes=5))
    gone = client.post(url, json={**body, "decision": "withdrawn"}, headers=ada(client, nurse_ada))
    assert gone.status_code == 201
    patient = client.get(f"/api/v1/patients/{marcel.id}", headers=ada(client, nurse_ada))
    assert patient.get_json()["status"] == "active"
    assert patient.get_json()["consent"]["research"] == {
        "state": "withdrawn",
        "since": "2026-11-24",
    }
    assert patient.get_json()["consent"]["care"]["state"] == "given"


def test_no_enrollment_code_without_recorded_care_consent(client, app, nurse_ada, clock):
    josette = make_patient(
        nurse_ada, given_name="Josette", consent_given_on=None, consent_method=None
    )
    refused = client.post(
        f"/api/v1/patients/{josette.id}/enrollment-codes", headers=ada(client, nurse_ada)
    )
    assert refused.status_code == 409
    assert refused.get_json()["type"].endswith("care-consent-required")
    client.post(
        f"/api/v1/patients/{josette.id}/consents",
        json={
            "purpose": "care",
            "decision": "given",
            "decided_on": clock.now().date().isoformat(),
            "method": "in_app",
        },
        headers=ada(client, nurse_ada),
    )
    issued = client.post(
        f"/api/v1/patients/{josette.id}/enrollment-codes", headers=ada(client, nurse_ada)
    )
    assert issued.status_code == 201


# --- corrections ------------------------------------------------------------------------------


def test_a_kind_corrected_on_day_2_brings_the_weekly_screw_checks(
    client, app, nurse_ada, clock, memory_channels
):
    clock.set(day(0, 15))
    marcel = make_patient(nurse_ada, clock.now(), contact_channels=["sms"])
    procedure = make_procedure(
        nurse_ada, marcel, clock.now(), kind="sclerotherapy", discharged_on=DISCHARGE
    )
    assert sorted(schedule_of(marcel)) == [1, 7, 30, 90, 180, 365]
    walk(clock, 1, 1)
    answer(marcel, 1)
    clock.set(day(2, 11))
    corrected = client.patch(
        f"/api/v1/patients/{marcel.id}/procedures/{procedure.id}",
        json={"kind": "screw_fixation_cementoplasty", "screw_count": 2},
        headers=ada(client, nurse_ada),
    )
    assert corrected.status_code == 200, corrected.get_json()
    assert corrected.get_json()["protocol"]["key"] == "standard"
    walk(clock, 3, 21)

    schedule = schedule_of(marcel)
    assert sorted(schedule) == [1, 7, 14, 21, 30, 42, 56, 90, 180, 365]
    assert schedule[1].status == "completed"  # the answer stays where it was
    assert {7, 14, 21} <= set(reminded_days(marcel))
    [event] = audit(marcel, "procedure.update")
    assert event.actor_id == nurse_ada.id
    assert event.details["changes"]["kind"] == {
        "before": "sclerotherapy",
        "after": "screw_fixation_cementoplasty",
    }
    assert event.details["changes"]["protocol"] == {
        "before": "sclerotherapy.v1",
        "after": "standard.v1",
    }
    assert [s["day"] for s in event.details["schedule"]["before"]] == [1, 7, 30, 90, 180, 365]
    assert [s["day"] for s in event.details["schedule"]["after"]] == [
        7,
        14,
        21,
        30,
        42,
        56,
        90,
        180,
        365,
    ]
    assert event.details["schedule"]["kept_days"] == [1]


def test_a_discharge_corrected_after_the_first_questionnaire_opened_moves_it(
    client, marcel, nurse_ada, clock, memory_channels
):
    walk(clock, 1, 1)  # day 1 opened on 23 November and its first reminder left
    assert reminded_days(marcel) == [1]
    opened = schedule_of(marcel)[1]
    procedure = marcel.current_procedure
    clock.set(day(1, 12))
    corrected = client.patch(
        f"/api/v1/patients/{marcel.id}/procedures/{procedure.id}",
        json={"discharged_on": "2026-11-24"},  # he left two days later than entered
        headers=ada(client, nurse_ada),
    )
    assert corrected.status_code == 200, corrected.get_json()
    walk(clock, 2, 3)

    db.session.expire_all()
    # The open one is cancelled with its reason; what was sent about it stays explained.
    assert (opened.status, opened.status_reason) == ("cancelled", "rescheduled")
    rungs = {
        r.rung: (r.status, r.reason)
        for r in db.session.execute(
            db.select(Reminder).filter_by(assignment_id=opened.id)
        ).scalars()
    }
    assert rungs[0][0] == "enqueued"
    assert rungs[1] == ("skipped", "questionnaire_rescheduled")
    assert 2 not in rungs  # the last rung rode on the second's row: never written
    moved = schedule_of(marcel)
    assert moved[1].opens_at == day(3) and moved[1].status == "open"
    assert moved[7].opens_at == day(9)
    assert reminded_days(marcel) == [1, 1]  # the old one once, the moved one on its day
    [event] = audit(marcel, "procedure.update")
    assert event.details["changes"]["discharged_on"] == {
        "before": "2026-11-22",
        "after": "2026-11-24",
    }
    assert event.details["schedule"]["before"][0]["opens_at"] == day(1).isoformat()


def test_a_discharge_corrected_to_earlier_never_creates_a_questionnaire_already_closed(
    client, marcel, nurse_ada, clock, memory_channels
):
    walk(clock, 1, 1)
    procedure = marcel.current_procedure
    clock.set(day(1, 12))
    corrected = client.patch(
        f"/api/v1/patients/{marcel.id}/procedures/{procedure.id}",
        json={"discharged_on": "2026-11-19", "performed_on": "2026-11-18"},
        headers=ada(client, nurse_ada),
    )
    assert corrected.status_code == 200, corrected.get_json()
    walk(clock, 2, 12)

    schedule = schedule_of(marcel)
    # Day 1 would have been 20-23 November: closed already, so not created (and not missed).
    assert schedule[1].status == "cancelled" and schedule[1].status_reason == "rescheduled"
    assert schedule[7].opens_at == datetime(2026, 11, 26, 9, tzinfo=UTC)
    assert not any(a.status == "missed" and a.day == 1 for a in schedule.values())
    assert [a.kind for a in alerts_of(marcel)] == []


# --- an offline phone syncs two weeks of answers -----------------------------------------------


def test_an_offline_phone_syncing_two_weeks_of_answers_clears_the_no_response_alert(
    client, marcel, nurse_ada, clock, memory_channels
):
    phone = enroll_phone(client, nurse_ada, marcel)
    walk(clock, 1, 17)  # days 1, 7 and 14 answered offline: the server saw them missed
    [alert] = alerts_of(marcel)
    assert alert.kind == "no_response" and alert.status == "open"
    assert alert.summary["en"] == "2 scheduled questionnaires missed in a row (days 7 and 14)."
    assert [a["kind"] for a in queue(client, nurse_ada)] == ["no_response"]

    clock.set(day(17, 12))
    tokens = client.post(
        "/api/v1/auth/refresh", json={"refresh_token": phone["refresh_token"]}
    ).get_json()
    schedule = schedule_of(marcel)
    for n in (1, 7, 14):
        sent = client.post(
            "/api/v1/me/responses",
            json={
                "assignment_id": str(schedule[n].id),
                "instrument": "checkin",
                "version": 1,
                "answered_at": (schedule[n].opens_at + timedelta(hours=3)).isoformat(),
                "source": "patient",
                "answers": checkin_answers(),
            },
            headers={**bearer(tokens["access_token"]), "Idempotency-Key": str(uuid.uuid4())},
        )
        assert sent.status_code == 201, sent.get_json()
        if n == 1:
            [alert] = alerts_of(marcel)
            assert alert.status == "open"
            assert "days 7 and 14" in alert.summary["en"]
            missed = {m["day"] for s in alert.evidence["signals"] for m in s["missed"]}
            assert missed == {7, 14}

    [alert] = alerts_of(marcel)
    assert (alert.status, alert.outcome, alert.resolved_by_id) == (
        "resolved",
        "answered_late",
        None,
    )
    actions = [(e.action, e.details) for e in alert.history]
    assert ("evidence_updated", {"answered_late_days": [1], "missed_days": [7, 14]}) in actions
    assert actions[-1] == (
        "resolved",
        {"outcome": "answered_late", "reason": "answered_late", "by": "system"},
    )
    # Ada's queue is empty: nobody calls a patient who did answer.
    assert queue(client, nurse_ada) == []
    assert {a.status for n, a in schedule_of(marcel).items() if n <= 14} == {"completed"}
    [resolved] = audit(marcel, "alert.resolve")
    assert resolved.details["by"] == "system" and resolved.details["outcome"] == "answered_late"
    shown = client.get(f"/api/v1/alerts/{alert.id}", headers=ada(client, nurse_ada)).get_json()
    assert shown["outcome"] == "answered_late" and shown["resolved_by"] is None


def test_a_readmission_resolves_the_open_no_response_alert_and_its_escalation_never_comes(
    client, marcel, nurse_ada, clock, memory_channels
):
    walk(clock, 1, 10)  # days 1 and 7 missed: no_response when day 7 closes (day 10)
    [alert] = alerts_of(marcel)
    assert (alert.kind, alert.status) == ("no_response", "open")
    clock.set(day(10, 12))
    client.post(
        f"/api/v1/patients/{marcel.id}/status",
        json={"status": "readmitted", "reason": "Fell at home, readmitted to orthopaedics"},
        headers=ada(client, nurse_ada),
    )
    walk(clock, 11, 30)
    [alert] = alerts_of(marcel)
    assert (alert.status, alert.outcome, alert.escalated_at) == (
        "resolved",
        "follow_up_suspended",
        None,
    )
    assert alert.history[-1].details["reason"] == "patient_readmitted"
    assert queue(client, nurse_ada) == []
    assert {a.status_reason for n, a in schedule_of(marcel).items() if 14 <= n <= 21} == {
        "passed_while_readmitted"
    }
