"""Statement budgets of the hot paths: the statements a request runs do not grow with the number
of items it shows or reads (a later change that brings back a query per row fails here).

Each test measures the same request over a small and a large data set and asserts that the counts
are equal, and below a budget that names what the request needs.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from backend.alerts import services as alerts
from backend.alerts.models import Alert
from backend.extensions import db
from tests.conftest import bearer, login
from tests.factories import checkin_answers, make_patient, make_procedure, principal_of, record
from tests.statements import counted_statements

# The session with its user and site in one statement, the queue with its patients in one, the
# staff it names in one, the one audit row of the list read.
QUEUE_BUDGET = 4
# The phone's session with its patient (one statement), the patient's lock with the current
# procedure, the daily limit, the response with its audit row (one statement on PostgreSQL: a
# data-modifying CTE; two on SQLite), what the rules read and write (the site's rule versions
# with the missed questionnaires, the kept rule state locked, the alerts with the count of
# answers the state must have folded, the state's update). Not: the idempotency key (looked up
# only on a conflict), the instrument (read once per process), the history (the kept state
# stands for it), the red flag for the advice (known from the evaluation), the pending
# confirmations (one UPDATE, only while an alert that they would confirm is open).
RESPONSE_BUDGET = {"postgresql": 8, "sqlite": 9}


def red_flags(nurse, clock, count: int, acknowledged: int = 0) -> list[Alert]:
    """``count`` patients with an urgent alert each; the first ``acknowledged`` acknowledged."""
    raised = []
    for n in range(count):
        patient = make_patient(nurse, given_name=f"P{n}", mrn=f"B-{uuid.uuid4().hex[:10]}")
        make_procedure(nurse, patient)
        record(patient, clock.now(), answers=checkin_answers(symptoms=["chest_pain"]))
        raised.append(
            db.session.execute(db.select(Alert).filter_by(patient_id=patient.id)).scalar_one()
        )
    for alert in raised[:acknowledged]:
        alerts.acknowledge(principal_of(nurse), alert, clock.now())
    db.session.commit()
    return raised


def statements_of(client, path: str, headers: dict[str, str]) -> tuple[dict, list[str]]:
    with counted_statements() as seen:
        response = client.get(path, headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json(), seen


def shown(statements: list[str]) -> str:
    return "\n".join(" ".join(s.split())[:140] for s in statements)


def test_the_alert_queue_runs_as_many_statements_for_twelve_alerts_as_for_two(
    client, nurse_ada, clock
):
    headers = bearer(login(client, nurse_ada)["access_token"])
    red_flags(nurse_ada, clock, 2, acknowledged=1)
    few_page, few = statements_of(client, "/api/v1/alerts", headers)
    red_flags(nurse_ada, clock, 10, acknowledged=5)
    many_page, many = statements_of(client, "/api/v1/alerts", headers)
    assert (len(few_page["items"]), len(many_page["items"])) == (2, 12)
    assert len(many) == len(few), shown(many)
    assert len(many) <= QUEUE_BUDGET, shown(many)


def test_a_deep_page_of_the_queue_costs_what_the_first_page_costs(client, nurse_ada, clock):
    raised = red_flags(nurse_ada, clock, 9, acknowledged=3)
    clock.set(clock.now() + timedelta(days=1))  # the six open ones are now overdue
    headers = bearer(login(client, nurse_ada)["access_token"])
    first, at_first = statements_of(client, "/api/v1/alerts?limit=3", headers)
    second, _ = statements_of(
        client, f"/api/v1/alerts?limit=3&cursor={first['next_cursor']}", headers
    )
    third, at_third = statements_of(
        client, f"/api/v1/alerts?limit=3&cursor={second['next_cursor']}", headers
    )
    pages = [first, second, third]
    assert [len(p["items"]) for p in pages] == [3, 3, 3] and third["next_cursor"] is None
    seen = [a["id"] for p in pages for a in p["items"]]
    assert sorted(seen) == sorted(str(a.id) for a in raised)  # each alert once, none skipped
    # Overdue first within the severity: the three acknowledged ones (never overdue) come last.
    assert [a["overdue"] for p in pages for a in p["items"]] == [True] * 6 + [False] * 3
    assert {a["status"] for a in third["items"]} == {"acknowledged"}
    # The same statements, but for the staff the last page names (who acknowledged).
    assert len(at_first) <= len(at_third) <= QUEUE_BUDGET, shown(at_third)


def test_an_alert_read_on_its_own_refuses_to_load_its_patient_by_itself(nurse_ada, clock):
    """``Alert.patient`` is the queue's (read with its alerts); touched elsewhere it would be a
    query per alert: it raises instead."""
    import sqlalchemy as sa

    (raised,) = red_flags(nurse_ada, clock, 1)
    alert_id, patient_id = raised.id, raised.patient_id
    db.session.expunge_all()
    alert = db.session.get(Alert, alert_id)
    with pytest.raises(sa.exc.InvalidRequestError, match="lazy='raise'"):
        _ = alert.patient
    page, _cursor = alerts.queue(
        principal_of(nurse_ada),
        clock.now(),
        statuses=("open",),
        severity=None,
        kind=None,
        patient_id=patient_id,
        limit=5,
    )
    assert [a.patient.id for a in page] == [patient_id]


def test_a_cursor_that_is_not_one_is_refused_naming_the_parameter(client, nurse_ada):
    headers = bearer(login(client, nurse_ada)["access_token"])
    response = client.get("/api/v1/alerts?cursor=not-a-cursor", headers=headers)
    assert response.status_code == 422
    assert [e["parameter"] for e in response.get_json()["errors"]] == ["cursor"]


def enrolled_phone(client, nurse_ada, patient) -> dict[str, str]:
    nurse = bearer(login(client, nurse_ada)["access_token"])
    code = client.post(f"/api/v1/patients/{patient.id}/enrollment-codes", headers=nurse).get_json()[
        "code"
    ]
    device = {"platform": "ios", "push_token": "tok", "locale": "fr", "timezone": "Europe/Paris"}
    tokens = client.post("/api/v1/enrollment/claim", json={"code": code, "device": device})
    return bearer(tokens.get_json()["access_token"])


def statements_of_an_answer(client, nurse_ada, clock, history: int) -> list[str]:
    patient = make_patient(nurse_ada, mrn=f"HIST-{history:04d}")
    make_procedure(nurse_ada, patient)
    for days_ago in range(history, 0, -1):  # one check-in a day until yesterday
        when = clock.now() - timedelta(days=days_ago)
        record(patient, when, answers=checkin_answers(pain_walking=3))
    phone = enrolled_phone(client, nurse_ada, patient)
    body = {
        "assignment_id": None,
        "instrument": "checkin",
        "version": 1,
        "answered_at": clock.now().isoformat(),
        "source": "patient",
        "answers": checkin_answers(pain_walking=4),
    }
    headers = {**phone, "Idempotency-Key": str(uuid.uuid4())}
    with counted_statements() as seen:
        response = client.post("/api/v1/me/responses", json=body, headers=headers)
    assert response.status_code == 201, response.get_json()
    return seen


@pytest.mark.usefixtures("app")
def test_recording_an_answer_runs_as_many_statements_after_twenty_answers_as_after_one(
    client, nurse_ada, clock
):
    clock.set(clock.now() + timedelta(days=30))  # a month after discharge
    few = statements_of_an_answer(client, nurse_ada, clock, history=1)
    many = statements_of_an_answer(client, nurse_ada, clock, history=20)
    assert len(many) == len(few), shown(many)
    assert len(many) == RESPONSE_BUDGET[db.engine.dialect.name], shown(many)


# Signing in (session and principal), the site's alerts of the period in one statement (the
# columns the figures need), its patients' follow-up periods in one, the audit row.
METRICS_BUDGET = 5


def test_the_team_metrics_run_as_many_statements_for_twelve_alerts_as_for_two(
    client, nurse_ada, clock
):
    red_flags(nurse_ada, clock, 2, acknowledged=1)
    headers = bearer(login(client, nurse_ada)["access_token"])
    few_report, few = statements_of(client, "/api/v1/reports/team?weeks=4", headers)
    red_flags(nurse_ada, clock, 10, acknowledged=5)
    many_report, many = statements_of(client, "/api/v1/reports/team?weeks=4", headers)
    assert (few_report["totals"]["alerts"], many_report["totals"]["alerts"]) == (2, 12)
    assert len(many) == len(few), shown(many)
    assert len(many) <= METRICS_BUDGET, shown(many)


def page_statements(client, path: str) -> list[str]:
    with counted_statements() as seen:
        response = client.get(path)
    assert response.status_code == 200
    return seen


@pytest.mark.parametrize("path", ["/", "/team", "/handover"])
def test_the_queue_team_and_handover_pages_do_not_grow_with_the_queue(
    client, nurse_ada, clock, path
):
    from tests.web.conftest import Pages

    pages = Pages(client)
    pages.sign_in(nurse_ada)
    raised = red_flags(nurse_ada, clock, 2, acknowledged=1)
    few = page_statements(client, path)
    more = red_flags(nurse_ada, clock, 10, acknowledged=5)
    from backend.alerts import workflow

    for alert in (raised + more)[::3]:  # some owned, so the pages name their owners
        workflow.set_owner(principal_of(nurse_ada), alert, nurse_ada.id, None, clock.now())
    db.session.commit()
    many = page_statements(client, path)
    assert len(many) == len(few), shown(many)
    assert len(many) <= PAGE_BUDGETS[path], shown(many)


# The pages: the signed-in session with its user and site (one), then what each shows.
PAGE_BUDGETS = {
    # the queue statement with its patients, its counts per severity, the staff it names, the
    # audit row
    "/": 5,
    # the site's alerts and patients for the figures, the audit row
    "/team": 4,
    # this sign-in and the previous one, the counts, four lists, the notes, the patients and
    # staff they name, the audit row
    "/handover": 11,
}
