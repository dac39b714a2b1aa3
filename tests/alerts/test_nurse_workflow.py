"""The nurses' work at ward scale, through the API, on SQLite and PostgreSQL: ownership (and two
nurses taking one alert at once), snooze and its expiry as the clock moves, renegotiated
targets, bulk acknowledge of exactly the selected alerts, call attempts, read state, handover."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import orm

from backend.alerts.models import SEVERITY_RANK, Alert
from backend.audit.models import AuditEvent
from backend.extensions import db
from tests.conftest import Staff, bearer, login, make_staff
from tests.factories import make_patient

KINDS = {"urgent": "red_flag", "high": "possible_screw_loosening", "routine": "call_request"}
TARGET_HOURS = {"urgent": 4, "high": 24, "routine": 72}


def make_alert(
    staff: Staff,
    severity: str,
    created_at: datetime,
    kind: str | None = None,
    patient: Any = None,
    **fields: Any,
) -> Alert:
    """An alert as the engine stores one (the rules are tested elsewhere), of its own patient."""
    patient = patient or make_patient(staff, mrn=f"W-{uuid.uuid4().hex[:10]}")
    values: dict[str, Any] = {
        "patient_id": patient.id,
        "site_id": patient.site_id,
        "kind": kind or KINDS[severity],
        "severity": severity,
        "severity_rank": SEVERITY_RANK[severity],
        "status": "open",
        "rule_key": kind or KINDS[severity],
        "rule_version": 1,
        "summary": {"fr": "Résumé", "en": "Summary"},
        "evidence": {"signals": []},
        "created_at": created_at,
        "updated_at": created_at,
        "due_at": created_at + timedelta(hours=TARGET_HOURS[severity]),
    }
    alert = Alert(**{**values, **fields})
    db.session.add(alert)
    db.session.commit()
    return alert


@pytest.fixture
def nurse_bea(any_app: Any) -> Staff:
    """Nurse Béa, Lyon's other nurse on the same shift as Ada."""
    return make_staff("bea@lyon.example", "nurse", "LYON")


def signed_in(client, nurse: Staff) -> dict[str, str]:
    """A fresh access token (they live 15 minutes: after the clock moves, sign in again)."""
    return bearer(login(client, nurse)["access_token"])


def audit_actions(action: str) -> list[AuditEvent]:
    return list(db.session.execute(db.select(AuditEvent).filter_by(action=action)).scalars())


# --- ownership ----------------------------------------------------------------------------------


def test_a_nurse_takes_an_alert_and_the_queue_shows_her_as_owner_and_filters_on_it(
    client, nurse_ada, nurse_bea, ada_headers, clock
):
    taken = make_alert(nurse_ada, "high", clock.now())
    shared = make_alert(nurse_ada, "high", clock.now() + timedelta(minutes=1))
    response = client.post(f"/api/v1/alerts/{taken.id}/owner", json={}, headers=ada_headers)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["owner"]["id"] == str(nurse_ada.id) and body["owned_since"]
    assert [e["action"] for e in body["history"]] == ["taken"]
    mine = client.get("/api/v1/alerts?owner=me", headers=ada_headers).get_json()["items"]
    unassigned = client.get("/api/v1/alerts?owner=none", headers=ada_headers).get_json()["items"]
    assert [a["id"] for a in mine] == [str(taken.id)]
    assert [a["id"] for a in unassigned] == [str(shared.id)]
    bea = bearer(login(client, nurse_bea)["access_token"])
    of_bea = client.get("/api/v1/alerts?owner=me", headers=bea).get_json()["items"]
    assert of_bea == []
    assert len(audit_actions("alert.owner")) == 1


def test_assigning_handing_back_and_reassigning_leave_the_whole_history(
    client, nurse_ada, nurse_bea, ada_headers, clock
):
    alert = make_alert(nurse_ada, "routine", clock.now())
    url = f"/api/v1/alerts/{alert.id}/owner"
    to_bea = client.post(url, json={"user_id": str(nurse_bea.id)}, headers=ada_headers)
    assert to_bea.status_code == 200 and to_bea.get_json()["owner"]["id"] == str(nurse_bea.id)
    # Ada takes it back from Béa, saying whom she saw as owner.
    back = client.post(url, json={"expected_owner_id": str(nurse_bea.id)}, headers=ada_headers)
    assert back.get_json()["owner"]["id"] == str(nurse_ada.id)
    released = client.delete(url, headers=ada_headers)
    assert released.status_code == 200 and released.get_json()["owner"] is None
    history = [(e["action"], e["details"]) for e in released.get_json()["history"]]
    assert history == [
        ("assigned", {"from": None, "to": str(nurse_bea.id)}),
        ("taken", {"from": str(nurse_bea.id), "to": str(nurse_ada.id)}),
        ("released", {"from": str(nurse_ada.id), "to": None}),
    ]


def test_an_alert_goes_only_to_an_active_nurse_of_the_site(
    client, nurse_ada, nurse_noe, physician_leon, ada_headers, clock
):
    alert = make_alert(nurse_ada, "routine", clock.now())
    url = f"/api/v1/alerts/{alert.id}/owner"
    for user_id in (nurse_noe.id, physician_leon.id, uuid.uuid4()):
        response = client.post(url, json={"user_id": str(user_id)}, headers=ada_headers)
        assert response.status_code == 422
        assert [e["pointer"] for e in response.get_json()["errors"]] == ["/user_id"]
    db.session.expire_all()
    assert db.session.get(Alert, alert.id).owner_id is None


def test_taking_an_alert_someone_took_since_is_a_409_naming_who_has_it(
    client, nurse_ada, nurse_bea, ada_headers, clock
):
    alert = make_alert(nurse_ada, "high", clock.now())
    bea = bearer(login(client, nurse_bea)["access_token"])
    assert client.post(f"/api/v1/alerts/{alert.id}/owner", json={}, headers=bea).status_code == 200
    late = client.post(f"/api/v1/alerts/{alert.id}/owner", json={}, headers=ada_headers)
    assert late.status_code == 409
    problem = late.get_json()
    assert "already taken by bea@lyon.example" in problem["detail"]
    assert problem["owner"]["id"] == str(nurse_bea.id)


@pytest.mark.parametrize("attempt", range(3))
def test_two_nurses_taking_the_same_alert_at_once_one_wins_the_other_is_told(
    committing_app, nurse_ada, nurse_bea, clock, attempt
):
    alert_id = make_alert(nurse_ada, "urgent", clock.now()).id
    staff_client = committing_app.test_client()
    headers = [
        bearer(login(staff_client, nurse)["access_token"]) for nurse in (nurse_ada, nurse_bea)
    ]
    db.session.commit()
    db.session.remove()  # the test's own session must not hold SQLite's write lock
    barrier = threading.Barrier(2)
    results: dict[int, Any] = {}
    errors: list[BaseException] = []

    def take(n: int) -> None:
        try:
            with committing_app.app_context():
                client = committing_app.test_client()
                barrier.wait()
                results[n] = client.post(
                    f"/api/v1/alerts/{alert_id}/owner", json={}, headers=headers[n]
                )
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=take, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    codes = sorted(r.status_code for r in results.values())
    assert codes == [200, 409], [r.get_json() for r in results.values()]
    winner = next(n for n, r in results.items() if r.status_code == 200)
    loser = results[1 - winner].get_json()
    winner_id = (nurse_ada, nurse_bea)[winner].id
    assert loser["owner"]["id"] == str(winner_id)
    stored = db.session.get(Alert, alert_id)
    assert stored.owner_id == winner_id
    events = [e.action for e in stored.history]
    assert events == ["taken"]  # one event, one owner


# --- two nurses changing one alert at once -------------------------------------------------------


class HeldCommit:
    """Holds the first request's transaction open, its changes flushed, until the second request
    waits for it, then lets it commit: the two transactions overlap every time, not by luck.

    PostgreSQL: "waits" is seen, a backend blocked by the first one's (``pg_blocking_pids``).
    SQLite: the second waits at ``BEGIN IMMEDIATE``, which shows nowhere; a pause stands in."""

    def __init__(self) -> None:
        self.holding = threading.Event()
        self.second_seen_waiting = False
        self.done = False

    def __call__(self, session: orm.Session) -> None:
        if threading.current_thread().name != "first" or self.done:
            return
        self.done = True
        session.flush()
        connection = session.connection()
        self.holding.set()
        if connection.dialect.name != "postgresql":
            time.sleep(0.3)
            return
        pid = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        blocked = sa.text(
            "SELECT count(*) FROM pg_stat_activity WHERE :pid = ANY(pg_blocking_pids(pid))"
        )
        deadline = time.monotonic() + 10
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as watcher:
            while time.monotonic() < deadline:
                if watcher.execute(blocked, {"pid": pid}).scalar():
                    self.second_seen_waiting = True
                    return
                time.sleep(0.01)


def overlapping(app, requests: list[tuple[str, dict[str, Any], dict[str, str]]]) -> list[Any]:
    """The two requests (url, body, headers), each in its own thread and transaction, the second
    sent while the first's transaction holds its changes uncommitted; their responses."""
    db.session.commit()
    db.session.remove()  # the test's own session must not hold SQLite's write lock
    held = HeldCommit()
    results: dict[int, Any] = {}
    errors: list[BaseException] = []

    def send(n: int) -> None:
        try:
            with app.app_context():
                url, body, headers = requests[n]
                results[n] = app.test_client().post(url, json=body, headers=headers)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    sa.event.listen(orm.Session, "before_commit", held)
    try:
        first = threading.Thread(target=send, args=(0,), name="first")
        first.start()
        assert held.holding.wait(10), "the first request never reached its commit"
        second = threading.Thread(target=send, args=(1,), name="second")
        second.start()
        first.join()
        second.join()
    finally:
        sa.event.remove(orm.Session, "before_commit", held)
    assert not errors, errors
    if db.engine.dialect.name == "postgresql":
        assert held.second_seen_waiting, "the second request never waited for the first"
    return [results[0], results[1]]


@pytest.fixture
def two_nurses(committing_app, nurse_ada, nurse_bea) -> list[dict[str, str]]:
    client = committing_app.test_client()
    return [signed_in(client, nurse) for nurse in (nurse_ada, nurse_bea)]


@pytest.mark.parametrize(
    ("action", "bodies", "events", "audited"),
    [
        ("acknowledge", ({}, {}), ["acknowledged"], "alert.acknowledge"),
        (
            "resolve",
            ({"outcome": "false_alarm"}, {"outcome": "advice_given"}),
            ["acknowledged", "resolved"],
            "alert.resolve",
        ),
    ],
)
def test_two_nurses_making_the_same_change_at_once_one_wins_the_other_gets_a_409(
    committing_app, nurse_ada, nurse_bea, two_nurses, clock, action, bodies, events, audited
):
    alert_id = make_alert(nurse_ada, "high", clock.now()).id
    url = f"/api/v1/alerts/{alert_id}/{action}"
    won, lost = overlapping(
        committing_app, [(url, bodies[0], two_nurses[0]), (url, bodies[1], two_nurses[1])]
    )
    assert won.status_code == 200, won.get_json()
    assert lost.status_code == 409, lost.get_json()
    assert lost.mimetype == "application/problem+json"
    problem = lost.get_json()
    assert problem["status"] == 409 and problem["title"] == "Conflict" and problem["detail"]
    stored = db.session.get(Alert, alert_id)
    assert [(e.action, e.actor_id) for e in stored.history] == [(e, nurse_ada.id) for e in events]
    assert stored.acknowledged_by_id == nurse_ada.id
    if action == "resolve":
        assert (stored.outcome, stored.resolved_by_id) == ("false_alarm", nurse_ada.id)
    rows = audit_actions(audited)
    assert [(r.actor_id, r.resource_id) for r in rows] == [(nurse_ada.id, str(alert_id))]


def test_resolving_while_another_nurse_acknowledges_keeps_who_acknowledged(
    committing_app, nurse_ada, nurse_bea, two_nurses, clock
):
    alert_id = make_alert(nurse_ada, "high", clock.now()).id
    base = f"/api/v1/alerts/{alert_id}"
    acknowledged, resolved = overlapping(
        committing_app,
        [
            (f"{base}/acknowledge", {}, two_nurses[0]),
            (f"{base}/resolve", {"outcome": "advice_given"}, two_nurses[1]),
        ],
    )
    assert (acknowledged.status_code, resolved.status_code) == (200, 200)
    stored = db.session.get(Alert, alert_id)
    assert [(e.action, e.actor_id) for e in stored.history] == [
        ("acknowledged", nurse_ada.id),
        ("resolved", nurse_bea.id),
    ]
    assert (stored.acknowledged_by_id, stored.resolved_by_id) == (nurse_ada.id, nurse_bea.id)


def test_two_call_attempts_recorded_at_once_are_numbered_one_and_two(
    committing_app, nurse_ada, nurse_bea, two_nurses, clock
):
    alert_id = make_alert(nurse_ada, "routine", clock.now()).id
    url = f"/api/v1/alerts/{alert_id}/calls"
    first, second = overlapping(
        committing_app,
        [(url, {"result": "no_answer"}, two_nurses[0]), (url, {"result": "spoke"}, two_nurses[1])],
    )
    assert (first.status_code, second.status_code) == (201, 201)
    calls = [(c["attempt"], c["result"]) for c in second.get_json()["calls"]]
    assert calls == [(1, "no_answer"), (2, "spoke")]


# --- snooze and target --------------------------------------------------------------------------


def queue_ids(client, headers, query: str = "") -> list[str]:
    response = client.get(f"/api/v1/alerts{query}", headers=headers)
    assert response.status_code == 200, response.get_json()
    return [a["id"] for a in response.get_json()["items"]]


def test_a_snoozed_alert_leaves_the_queue_and_comes_back_on_time_at_the_top_of_its_severity(
    client, nurse_ada, ada_headers, clock
):
    start = clock.now()
    older = make_alert(nurse_ada, "high", start - timedelta(hours=30))  # overdue already
    snoozed = make_alert(nurse_ada, "high", start)
    routine = make_alert(nurse_ada, "routine", start - timedelta(hours=1))
    until = start + timedelta(hours=3)
    response = client.post(
        f"/api/v1/alerts/{snoozed.id}/snooze",
        json={"until": until.isoformat(), "reason": "Patient at the GP until noon."},
        headers=ada_headers,
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["snoozed"] is True
    assert queue_ids(client, ada_headers) == [str(older.id), str(routine.id)]
    assert queue_ids(client, ada_headers, "?snoozed=true") == [str(snoozed.id)]

    clock.set(until - timedelta(seconds=1))
    ada_headers = signed_in(client, nurse_ada)
    assert str(snoozed.id) not in queue_ids(client, ada_headers)
    clock.set(until)
    ada_headers = signed_in(client, nurse_ada)
    assert queue_ids(client, ada_headers) == [str(snoozed.id), str(older.id), str(routine.id)]
    back = client.get(f"/api/v1/alerts/{snoozed.id}", headers=ada_headers).get_json()
    assert back["back_from_snooze"] is True and back["snoozed"] is False
    # The target did not move while it slept.
    assert back["due_at"] == (start + timedelta(hours=24)).isoformat()
    [event] = audit_actions("alert.snooze")
    assert event.details["reason"] == "Patient at the GP until noon."
    # Acknowledging it is acting on it: it takes its usual place again.
    client.post(f"/api/v1/alerts/{snoozed.id}/acknowledge", headers=ada_headers)
    assert queue_ids(client, ada_headers) == [str(older.id), str(snoozed.id), str(routine.id)]


def test_the_overdue_clock_keeps_running_while_an_alert_is_snoozed(
    client, nurse_ada, ada_headers, clock
):
    alert = make_alert(nurse_ada, "high", clock.now() - timedelta(hours=20))
    client.post(
        f"/api/v1/alerts/{alert.id}/snooze",
        json={"until": (clock.now() + timedelta(hours=10)).isoformat(), "reason": "Asleep"},
        headers=ada_headers,
    )
    clock.advance(timedelta(hours=5))  # its 24 h target passed meanwhile
    ada_headers = signed_in(client, nurse_ada)
    view = client.get(f"/api/v1/alerts/{alert.id}", headers=ada_headers).get_json()
    assert view["snoozed"] is True and view["overdue"] is True
    clock.advance(timedelta(hours=5))
    ada_headers = signed_in(client, nurse_ada)
    assert queue_ids(client, ada_headers) == [str(alert.id)]
    assert client.get(f"/api/v1/alerts/{alert.id}", headers=ada_headers).get_json()["overdue"]


def test_urgent_alerts_cannot_be_snoozed_and_others_only_within_their_maximum(
    client, nurse_ada, ada_headers, clock
):
    urgent = make_alert(nurse_ada, "urgent", clock.now())
    high = make_alert(nurse_ada, "high", clock.now())
    refused = client.post(
        f"/api/v1/alerts/{urgent.id}/snooze",
        json={"until": (clock.now() + timedelta(hours=1)).isoformat(), "reason": "Later"},
        headers=ada_headers,
    )
    assert refused.status_code == 409 and "urgent" in refused.get_json()["detail"]
    too_long = client.post(
        f"/api/v1/alerts/{high.id}/snooze",
        json={"until": (clock.now() + timedelta(hours=12, seconds=1)).isoformat(), "reason": "x"},
        headers=ada_headers,
    )
    assert too_long.status_code == 422
    [error] = too_long.get_json()["errors"]
    assert error["pointer"] == "/until" and "12 hours" in error["detail"]
    no_reason = client.post(
        f"/api/v1/alerts/{high.id}/snooze",
        json={"until": (clock.now() + timedelta(hours=1)).isoformat(), "reason": ""},
        headers=ada_headers,
    )
    assert no_reason.status_code == 422
    assert [e["pointer"] for e in no_reason.get_json()["errors"]] == ["/reason"]
    past = client.post(
        f"/api/v1/alerts/{high.id}/snooze",
        json={"until": (clock.now() - timedelta(minutes=1)).isoformat(), "reason": "x"},
        headers=ada_headers,
    )
    assert past.status_code == 422
    db.session.expire_all()
    assert db.session.get(Alert, high.id).snoozed_until is None
    assert audit_actions("alert.snooze") == []


def test_new_evidence_ends_a_snooze_at_once(client, nurse_ada, ada_headers, clock):
    from tests.factories import checkin_answers, make_procedure, record

    patient = make_patient(nurse_ada)
    make_procedure(nurse_ada, patient)
    record(patient, clock.now(), answers=checkin_answers(call_request=True))
    alert = db.session.execute(db.select(Alert).filter_by(patient_id=patient.id)).scalar_one()
    db.session.commit()
    client.post(
        f"/api/v1/alerts/{alert.id}/snooze",
        json={"until": (clock.now() + timedelta(hours=8)).isoformat(), "reason": "Tomorrow"},
        headers=ada_headers,
    )
    clock.advance(timedelta(hours=1))
    ada_headers = signed_in(client, nurse_ada)
    record(patient, clock.now(), answers=checkin_answers(call_request=True))
    db.session.commit()
    view = client.get(f"/api/v1/alerts/{alert.id}", headers=ada_headers).get_json()
    assert view["back_from_snooze"] is True
    assert "snooze_ended" in [e["action"] for e in view["history"]]
    assert queue_ids(client, ada_headers)[0] == str(alert.id)


def test_a_target_is_renegotiated_only_with_a_reason_and_is_kept_in_the_history(
    client, nurse_ada, ada_headers, clock
):
    alert = make_alert(nurse_ada, "high", clock.now())
    new_due = clock.now() + timedelta(hours=48)
    url = f"/api/v1/alerts/{alert.id}/target"
    missing = client.post(url, json={"due_at": new_due.isoformat()}, headers=ada_headers)
    assert missing.status_code == 422
    assert [e["pointer"] for e in missing.get_json()["errors"]] == ["/reason"]
    agreed = client.post(
        url,
        json={"due_at": new_due.isoformat(), "reason": "Agreed with Dr Léon: call on Monday."},
        headers=ada_headers,
    )
    assert agreed.status_code == 200
    body = agreed.get_json()
    assert body["due_at"] == new_due.isoformat()
    [event] = [e for e in body["history"] if e["action"] == "target_renegotiated"]
    assert event["details"]["from"] == (clock.now() + timedelta(hours=24)).isoformat()
    assert event["details"]["reason"] == "Agreed with Dr Léon: call on Monday."
    clock.advance(timedelta(hours=30))
    ada_headers = signed_in(client, nurse_ada)
    assert (
        client.get(f"/api/v1/alerts/{alert.id}", headers=ada_headers).get_json()["overdue"] is False
    )
    assert len(audit_actions("alert.target")) == 1


# --- bulk acknowledge ---------------------------------------------------------------------------


def test_bulk_acknowledge_touches_exactly_the_selected_alerts_each_audited_with_the_comment(
    client, nurse_ada, ada_headers, clock
):
    picked = [
        make_alert(nurse_ada, "routine", clock.now() + timedelta(minutes=n)) for n in range(3)
    ]
    left = make_alert(nurse_ada, "routine", clock.now() + timedelta(minutes=9))
    response = client.post(
        "/api/v1/alerts/acknowledgements",
        json={"alert_ids": [str(a.id) for a in picked], "comment": "Called back, all fine."},
        headers=ada_headers,
    )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert sorted(a["id"] for a in body["acknowledged"]) == sorted(str(a.id) for a in picked)
    assert body["unchanged"] == []
    db.session.expire_all()
    for alert in picked:
        stored = db.session.get(Alert, alert.id)
        assert stored.status == "acknowledged" and stored.acknowledged_by_id == nurse_ada.id
        assert [n.text for n in stored.notes] == ["Called back, all fine."]
    assert db.session.get(Alert, left.id).status == "open"
    audited = audit_actions("alert.acknowledge")
    assert sorted(e.resource_id for e in audited) == sorted(str(a.id) for a in picked)
    [bulk] = audit_actions("alert.acknowledge.bulk")
    assert sorted(bulk.details["alert_ids"]) == sorted(str(a.id) for a in picked)


def test_bulk_acknowledge_leaves_what_someone_else_did_meanwhile_and_says_so(
    client, nurse_ada, ada_headers, clock
):
    first, second = (make_alert(nurse_ada, "high", clock.now()) for _ in range(2))
    client.post(f"/api/v1/alerts/{second.id}/acknowledge", headers=ada_headers)
    response = client.post(
        "/api/v1/alerts/acknowledgements",
        json={"alert_ids": [str(first.id), str(second.id)], "comment": "Seen."},
        headers=ada_headers,
    )
    body = response.get_json()
    assert [a["id"] for a in body["acknowledged"]] == [str(first.id)]
    assert body["unchanged"] == [{"id": str(second.id), "status": "acknowledged"}]
    assert len(audit_actions("alert.acknowledge")) == 2  # one each, not two for the second


def test_bulk_acknowledge_with_another_sites_alert_changes_nothing_and_names_it(
    client, nurse_ada, nurse_noe, ada_headers, clock
):
    ours = make_alert(nurse_ada, "routine", clock.now())
    theirs = make_alert(nurse_noe, "routine", clock.now())
    response = client.post(
        "/api/v1/alerts/acknowledgements",
        json={"alert_ids": [str(ours.id), str(theirs.id)], "comment": "Seen."},
        headers=ada_headers,
    )
    assert response.status_code == 404
    assert [e["pointer"] for e in response.get_json()["errors"]] == ["/alert_ids/1"]
    db.session.expire_all()
    assert db.session.get(Alert, ours.id).status == "open"
    assert audit_actions("alert.acknowledge") == []


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({"alert_ids": [], "comment": "x"}, "/alert_ids"),
        ({"comment": "x"}, "/alert_ids"),
        ({"alert_ids": ["same", "same"], "comment": "x"}, "/alert_ids"),
        ({"alert_ids": "all", "comment": "x"}, "/alert_ids"),
        ({"alert_ids": ["same"]}, "/comment"),
    ],
)
def test_there_is_no_acknowledge_all_and_every_bulk_needs_ids_and_a_comment(
    client, nurse_ada, ada_headers, clock, body, pointer
):
    alert = make_alert(nurse_ada, "routine", clock.now())
    if isinstance(body.get("alert_ids"), list):
        body = {**body, "alert_ids": [str(alert.id) for _ in body["alert_ids"]]}
    response = client.post("/api/v1/alerts/acknowledgements", json=body, headers=ada_headers)
    assert response.status_code == 422
    assert pointer in [e["pointer"] for e in response.get_json()["errors"]]
    db.session.expire_all()
    assert db.session.get(Alert, alert.id).status == "open"


# --- calls and read state -----------------------------------------------------------------------


def test_each_call_attempt_is_recorded_with_its_result(client, nurse_ada, ada_headers, clock):
    alert = make_alert(nurse_ada, "routine", clock.now())
    url = f"/api/v1/alerts/{alert.id}/calls"
    first = client.post(url, json={"result": "no_answer"}, headers=ada_headers)
    assert first.status_code == 201
    clock.advance(timedelta(hours=2))
    ada_headers = signed_in(client, nurse_ada)
    second = client.post(
        url, json={"result": "spoke", "note": "Pain better, no fever."}, headers=ada_headers
    )
    calls = second.get_json()["calls"]
    assert [(c["attempt"], c["result"]) for c in calls] == [(1, "no_answer"), (2, "spoke")]
    assert calls[1]["by"]["id"] == str(nurse_ada.id)
    assert [n["text"] for n in second.get_json()["notes"]] == ["Pain better, no fever."]
    assert len(audit_actions("alert.call")) == 2
    bad = client.post(url, json={"result": "voicemail"}, headers=ada_headers)
    assert bad.status_code == 422 and bad.get_json()["errors"][0]["pointer"] == "/result"


def test_an_alert_is_new_until_someone_of_the_team_opens_it(
    client, nurse_ada, nurse_bea, ada_headers, clock
):
    alert = make_alert(nurse_ada, "high", clock.now())
    [listed] = client.get("/api/v1/alerts", headers=ada_headers).get_json()["items"]
    assert listed["new"] is True  # listing is not opening
    bea = bearer(login(client, nurse_bea)["access_token"])
    opened = client.get(f"/api/v1/alerts/{alert.id}", headers=bea).get_json()
    assert opened["seen_by"]["id"] == str(nurse_bea.id)
    [listed] = client.get("/api/v1/alerts", headers=ada_headers).get_json()["items"]
    assert listed["new"] is False and listed["seen_by"]["id"] == str(nurse_bea.id)
    client.get(f"/api/v1/alerts/{alert.id}", headers=ada_headers)  # the first stays
    assert db.session.get(Alert, alert.id).seen_by_id == nurse_bea.id


def test_each_refresh_of_the_queue_is_one_list_audit_event_however_many_alerts(
    client, nurse_ada, ada_headers, clock
):
    for n in range(5):
        make_alert(nurse_ada, "routine", clock.now() + timedelta(minutes=n))
    for _ in range(3):
        client.get("/api/v1/alerts", headers=ada_headers)
    lists = audit_actions("alert.list")
    assert len(lists) == 3 and all(len(e.details["alert_ids"]) == 5 for e in lists)
    assert audit_actions("alert.read") == []


# --- handover -----------------------------------------------------------------------------------


def test_the_handover_shows_overdue_mine_snoozed_and_new_since_my_last_shift(
    client, nurse_ada, ada_headers, clock
):
    yesterday = clock.now() - timedelta(hours=26)
    overdue = make_alert(nurse_ada, "urgent", yesterday)
    mine = make_alert(nurse_ada, "routine", yesterday, owner_id=nurse_ada.id)
    snoozed = make_alert(
        nurse_ada,
        "high",
        yesterday,
        snoozed_until=clock.now() + timedelta(hours=14),
        snooze_reason="GP visit",
    )
    clock.advance(timedelta(hours=12))  # Ada's next shift
    new = make_alert(nurse_ada, "routine", clock.now() - timedelta(hours=1))
    headers = bearer(login(client, nurse_ada)["access_token"])
    response = client.get("/api/v1/handover", headers=headers)
    assert response.status_code == 200
    body = response.get_json()
    assert body["since"] == (clock.now() - timedelta(hours=12)).isoformat()  # the last sign-in
    # Snoozed, still overdue: its clock kept running.
    assert [a["id"] for a in body["overdue"]] == [str(overdue.id), str(snoozed.id)]
    assert [a["id"] for a in body["mine"]] == [str(mine.id)]
    assert [a["id"] for a in body["snoozed"]] == [str(snoozed.id)]
    assert [a["id"] for a in body["new"]] == [str(new.id)]
    assert {c["severity"]: c["open"] for c in body["open"]} == {
        "urgent": 1,
        "high": 1,
        "routine": 2,
    }
    [listed] = [e for e in audit_actions("alert.list") if e.details.get("via") == "handover"]
    assert len(listed.details["alert_ids"]) == 4


def test_the_next_shift_confirms_the_note_the_previous_one_left(
    client, nurse_ada, nurse_bea, ada_headers, clock
):
    written = client.post(
        "/api/v1/handover/notes", json={"text": "Call Mr Dupont first."}, headers=ada_headers
    )
    assert written.status_code == 201
    note = written.get_json()
    own = client.post(f"/api/v1/handover/notes/{note['id']}/read", headers=ada_headers)
    assert own.status_code == 409
    clock.advance(timedelta(hours=12))
    bea = bearer(login(client, nurse_bea)["access_token"])
    [shown] = client.get("/api/v1/handover", headers=bea).get_json()["notes"]
    assert shown["text"] == "Call Mr Dupont first." and shown["read_at"] is None
    read = client.post(f"/api/v1/handover/notes/{note['id']}/read", headers=bea)
    assert read.status_code == 200
    assert read.get_json()["read_by"]["id"] == str(nurse_bea.id)
    assert read.get_json()["read_at"] == clock.now().isoformat()
    assert len(audit_actions("handover.note.read")) == 1


def test_the_queue_statement_writes_only_alert_statuses_and_small_numbers_into_its_text(any_app):
    """The queue's statement has its statuses, ranks and segment numbers in its text (psycopg
    caches the conversion of a statement under 4,096 characters); the values bound by the
    request (site, now, cursor, filters) stay parameters, and nothing else can be written in."""
    from backend.alerts import services

    statement = services._queue_statement(
        (0, 1, 2),
        ("open", "acknowledged"),
        snoozed=False,
        from_segment=None,
        by_kind=True,
        by_patient=True,
        owner="me",
    )
    assert statement is not None
    with any_app.app_context():
        compiled = statement.compile(dialect=db.engine.dialect)
    bound = {name for name in compiled.params if not name.startswith("param_")}  # SQLite's OFFSET
    assert bound == {"site_id", "now", "limit", "kind", "patient_id", "owner_id"}
    assert "'acknowledged'" in str(compiled) and "'resolved'" in str(compiled)
    for refused in ("open' OR 'x' = 'x", "closed", 100, -1, 1.0, True):
        with pytest.raises(ValueError):
            services._constant(refused)  # type: ignore[arg-type]
