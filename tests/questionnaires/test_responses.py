"""Answers from the phone: validation, idempotency, late offline answers, sources, scores."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import pytest

from backend.audit.models import AuditEvent
from backend.extensions import db
from backend.questionnaires.models import Assignment, Response
from tests.conftest import bearer, login
from tests.factories import checkin_answers, followup_answers, make_patient, make_procedure

IPHONE = {"platform": "ios", "push_token": "tok", "locale": "fr", "timezone": "Europe/Paris"}


class Phone:
    """A patient's enrolled phone: calling it gives fresh headers, refreshing like the app does
    (tests move the clock by days, far past the 15-minute access tokens)."""

    def __init__(self, client, tokens: dict) -> None:
        self.client, self.tokens = client, tokens

    def __call__(self) -> dict[str, str]:
        refreshed = self.client.post(
            "/api/v1/auth/refresh", json={"refresh_token": self.tokens["refresh_token"]}
        )
        assert refreshed.status_code == 200, refreshed.get_json()
        self.tokens = refreshed.get_json()
        return bearer(self.tokens["access_token"])


def enroll(client, nurse_headers, patient) -> Phone:
    code = client.post(
        f"/api/v1/patients/{patient.id}/enrollment-codes", headers=nurse_headers
    ).get_json()["code"]
    tokens = client.post(
        "/api/v1/enrollment/claim", json={"code": code, "device": IPHONE}
    ).get_json()
    return Phone(client, tokens)


@pytest.fixture
def marcel(app, nurse_ada):
    """Marcel, 86, sacroiliac screws, discharged 2026-11-22 in Paris."""
    patient = make_patient(nurse_ada)
    make_procedure(nurse_ada, patient)
    return patient


@pytest.fixture
def day1(marcel) -> Assignment:
    return db.session.execute(
        db.select(Assignment).filter_by(patient_id=marcel.id, day=1)
    ).scalar_one()


@pytest.fixture
def phone(client, nurse_ada, marcel, clock, day1):
    """Marcel's phone, enrolled an hour after his day-1 questionnaire opened."""
    clock.set(day1.opens_at + timedelta(hours=1))
    return enroll(client, bearer(login(client, nurse_ada)["access_token"]), marcel)


def body_for(assignment, answered_at, **overrides):
    body = {
        "assignment_id": str(assignment.id) if assignment else None,
        "instrument": assignment.instrument_key if assignment else "checkin",
        "version": 1,
        "answered_at": answered_at.isoformat(),
        "source": "patient",
        "answers": checkin_answers(),
    }
    body.update(overrides)
    return body


def send(client, phone, body, key=None):
    return client.post(
        "/api/v1/me/responses",
        json=body,
        headers={**phone(), "Idempotency-Key": key or str(uuid.uuid4())},
    )


def count_responses() -> int:
    return len(db.session.execute(db.select(Response)).all())


def test_an_answer_is_stored_with_its_scores_and_completes_the_questionnaire(
    client, phone, day1, clock
):
    response = send(client, phone, body_for(day1, clock.now()))
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["assignment_id"] == str(day1.id)
    assert body["scores"] == {
        "mobility_score": None,
        "analgesic_step": 1,
        "aid_level": 1,
        "pain_rest_band": "mild",
        "pain_walking_band": "mild",
    }
    assignments = client.get("/api/v1/me/assignments?status=completed", headers=phone()).get_json()
    assert [a["id"] for a in assignments["items"]] == [str(day1.id)]


def test_followup_scores_include_the_parker_mobility_score(client, phone, marcel, clock):
    day30 = db.session.execute(
        db.select(Assignment).filter_by(patient_id=marcel.id, day=30)
    ).scalar_one()
    clock.set(day30.opens_at + timedelta(minutes=5))
    answers = followup_answers(
        pain_walking=7,
        pms_indoors=2,
        pms_outdoors=1,
        pms_shopping=0,
        analgesics="strong_opioid",
        walking_aid="unable",
        comment="Ça va.",
    )
    response = send(client, phone, body_for(day30, clock.now(), answers=answers))
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["scores"] == {
        "mobility_score": 3,
        "analgesic_step": 3,
        "aid_level": 5,
        "pain_rest_band": "mild",
        "pain_walking_band": "severe",
    }


def test_the_same_key_and_body_replays_the_first_result_without_a_second_row(
    client, phone, day1, clock
):
    key = str(uuid.uuid4())
    body = body_for(day1, clock.now())
    first = send(client, phone, body, key)
    second = send(client, phone, body, key)
    assert first.status_code == second.status_code == 201
    assert first.get_json() == second.get_json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert count_responses() == 1


def test_the_same_key_with_another_body_is_a_422(client, phone, day1, clock):
    key = str(uuid.uuid4())
    send(client, phone, body_for(day1, clock.now()), key)
    other = send(
        client, phone, body_for(day1, clock.now(), answers=checkin_answers(pain_walking=9)), key
    )
    assert other.status_code == 422
    assert other.get_json()["errors"][0]["header"] == "Idempotency-Key"
    assert count_responses() == 1


def test_a_retried_checkin_replays_through_the_unique_key_without_a_second_row(
    client, phone, clock
):
    # An unscheduled check-in passes every check again on a retry: the unique (patient, key)
    # constraint finds the first, which replays; another body under the key is still a 422.
    key = str(uuid.uuid4())
    body = body_for(None, clock.now())
    first = send(client, phone, body, key)
    second = send(client, phone, body, key)
    assert first.status_code == second.status_code == 201, second.get_json()
    assert first.get_json() == second.get_json()
    assert second.headers["Idempotent-Replayed"] == "true"
    other = send(
        client, phone, body_for(None, clock.now(), answers=checkin_answers(fell=True)), key
    )
    assert other.status_code == 422
    assert other.get_json()["errors"][0]["header"] == "Idempotency-Key"
    assert count_responses() == 1
    # The response and its audit row are inserted together (one statement on PostgreSQL): the
    # retry left out by the unique key wrote no second audit row.
    created = db.session.execute(
        db.select(AuditEvent.resource_id).filter_by(action="response.create")
    ).scalars()
    assert list(created) == [first.get_json()["id"]]


def test_a_missing_or_malformed_idempotency_key_is_named(client, phone, day1, clock):
    response = client.post(
        "/api/v1/me/responses",
        json=body_for(day1, clock.now()),
        headers={**phone(), "Idempotency-Key": "not-a-uuid"},
    )
    assert response.status_code == 422
    assert response.get_json()["errors"] == [
        {"header": "Idempotency-Key", "detail": "Not a valid UUID."}
    ]


def test_a_missing_idempotency_key_and_the_bodys_bad_fields_are_named_in_one_problem(
    client, phone, nurse_ada, marcel, day1, clock
):
    body = {**body_for(day1, clock.now()), "source": "robot", "version": 0}
    nurse = bearer(login(client, nurse_ada)["access_token"])
    for path, headers in (
        ("/api/v1/me/responses", phone()),
        (f"/api/v1/patients/{marcel.id}/responses", nurse),
    ):
        response = client.post(path, json=body, headers=headers)
        assert response.status_code == 422
        named = [e.get("header") or e["pointer"] for e in response.get_json()["errors"]]
        assert sorted(named) == ["/source", "/version", "Idempotency-Key"], path
    assert count_responses() == 0


def test_every_invalid_answer_is_listed_and_nothing_is_stored(client, phone, day1, clock):
    answers = {
        "pain_rest": 11,
        "pain_walking": "7",
        "analgesics": "aspirin",
        "walking_aid": "cane",
        "fell": "no",
        "symptoms": ["clicking", "hiccups"],
        "call_request": False,
        "mood": "good",
    }
    response = send(client, phone, body_for(day1, clock.now(), answers=answers))
    assert response.status_code == 422
    pointers = {e["pointer"] for e in response.get_json()["errors"]}
    assert pointers == {
        "/answers/pain_rest",
        "/answers/pain_walking",
        "/answers/analgesics",
        "/answers/fell",
        "/answers/symptoms",
        "/answers/change",
        "/answers/mood",
    }
    assert count_responses() == 0
    assert db.session.get(Assignment, day1.id).status == "pending"


def test_invalid_answers_are_listed_beside_another_refused_field_and_nothing_is_stored(
    client, phone, day1, clock
):
    answers = checkin_answers(pain_rest=11, fell="no", mood="good")
    body = body_for(day1, clock.now(), answers=answers, source="neighbour")
    response = send(client, phone, body)
    assert response.status_code == 422
    pointers = {e["pointer"] for e in response.get_json()["errors"]}
    assert pointers == {"/source", "/answers/pain_rest", "/answers/fell", "/answers/mood"}
    assert count_responses() == 0


def test_answered_at_more_than_five_minutes_ahead_is_refused(client, phone, day1, clock):
    assert (
        send(client, phone, body_for(day1, clock.now() + timedelta(minutes=4))).status_code == 201
    )
    response = send(client, phone, body_for(None, clock.now() + timedelta(minutes=6)))
    assert response.status_code == 422
    assert response.get_json()["errors"][0]["pointer"] == "/answered_at"


def test_an_answer_dated_before_the_discharge_is_refused(client, phone, clock):
    response = send(client, phone, body_for(None, clock.now() - timedelta(days=3)))
    assert response.status_code == 422
    assert response.get_json()["errors"][0]["detail"] == "is before the discharge"


def test_an_answer_without_a_time_zone_offset_is_refused(client, phone, day1, clock):
    body = {**body_for(day1, clock.now()), "answered_at": "2026-11-23T10:00:00"}
    response = send(client, phone, body)
    assert response.status_code == 422
    assert response.get_json()["errors"][0]["pointer"] == "/answered_at"


def test_a_late_offline_answer_given_inside_the_window_is_accepted(client, phone, day1, clock):
    answered = day1.closes_at - timedelta(hours=1)
    clock.set(day1.closes_at + timedelta(days=2))  # the phone was offline for two days
    response = send(client, phone, body_for(day1, answered))
    assert response.status_code == 201
    assert response.get_json()["answered_at"] == answered.isoformat()


def test_an_answer_given_after_the_window_closed_is_a_409(client, phone, day1, clock):
    clock.set(day1.closes_at + timedelta(hours=2))
    response = send(client, phone, body_for(day1, day1.closes_at + timedelta(hours=1)))
    assert response.status_code == 409


@pytest.mark.parametrize(
    ("after_closing", "status"), [(timedelta(0), 201), (timedelta(seconds=1), 409)]
)
def test_an_answer_given_as_the_window_closes_counts_and_one_given_a_second_later_does_not(
    client, phone, day1, clock, after_closing, status
):
    clock.set(day1.closes_at + timedelta(hours=1))  # synced an hour later
    response = send(client, phone, body_for(day1, day1.closes_at + after_closing))
    assert response.status_code == status


@pytest.mark.parametrize(
    ("before_opening", "status"), [(timedelta(0), 201), (timedelta(seconds=1), 422)]
)
def test_an_answer_given_as_the_questionnaire_opens_counts_and_one_a_second_before_does_not(
    client, phone, day1, clock, before_opening, status
):
    response = send(client, phone, body_for(day1, day1.opens_at - before_opening))
    assert response.status_code == status
    if status == 422:
        assert response.get_json()["errors"][0]["pointer"] == "/answered_at"


def test_a_second_answer_to_a_completed_questionnaire_is_a_409(client, phone, day1, clock):
    assert send(client, phone, body_for(day1, clock.now())).status_code == 201
    assert send(client, phone, body_for(day1, clock.now())).status_code == 409
    assert count_responses() == 1


def test_an_unscheduled_check_in_is_accepted_at_any_time(client, phone, clock):
    response = send(client, phone, body_for(None, clock.now()))
    assert response.status_code == 201 and response.get_json()["assignment_id"] is None
    followup = send(
        client,
        phone,
        body_for(None, clock.now(), instrument="followup", answers=followup_answers()),
    )
    assert followup.status_code == 422


def test_another_patients_questionnaire_cannot_be_answered(client, phone, nurse_ada, clock):
    josette = make_patient(nurse_ada, given_name="Josette")
    make_procedure(nurse_ada, josette, kind="cementoplasty", location="vertebra")
    hers = db.session.execute(
        db.select(Assignment).filter_by(patient_id=josette.id, day=1)
    ).scalar_one()
    response = send(client, phone, body_for(hers, clock.now()))
    assert response.status_code == 422
    assert response.get_json()["errors"][0]["pointer"] == "/assignment_id"


def test_a_caregiver_answers_on_the_patients_phone(client, phone, day1, clock):
    response = send(client, phone, body_for(day1, clock.now(), source="caregiver"))
    assert response.status_code == 201
    mine = client.get("/api/v1/me/responses", headers=phone()).get_json()["items"]
    assert mine[0]["source"] == "caregiver"
    assert send(client, phone, body_for(None, clock.now(), source="nurse")).status_code == 422


def test_a_nurse_enters_answers_after_a_phone_call(client, nurse_ada, marcel, day1, clock):
    clock.set(day1.opens_at + timedelta(hours=3))
    headers = bearer(login(client, nurse_ada)["access_token"])
    body = body_for(day1, clock.now())
    del body["source"]
    response = client.post(
        f"/api/v1/patients/{marcel.id}/responses",
        json=body,
        headers={**headers, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code == 201, response.get_json()
    row = db.session.get(Response, uuid.UUID(response.get_json()["id"]))
    assert row.source == "nurse" and row.entered_by_id == nurse_ada.id


def test_extra_fields_on_a_response_are_refused(client, phone, day1, clock):
    for extra in (
        {"patient_id": str(uuid.uuid4())},
        {"status": "completed"},
        {"role": "admin"},
        {"site": "NANTES"},
    ):
        response = send(client, phone, {**body_for(day1, clock.now()), **extra})
        assert response.status_code == 422
        assert response.get_json()["errors"][0]["pointer"] == f"/{next(iter(extra))}"
    assert count_responses() == 0


def test_the_phones_questionnaire_list_pages_by_limit_and_cursor_like_every_list(
    client, phone, marcel
):
    everything = client.get("/api/v1/me/assignments", headers=phone()).get_json()
    assert everything["next_cursor"] is None and len(everything["items"]) > 3
    seen, cursor = [], None
    while True:
        query = "limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(f"/api/v1/me/assignments?{query}", headers=phone()).get_json()
        assert len(page["items"]) <= 3
        seen += [a["id"] for a in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [a["id"] for a in everything["items"]]
    pending = client.get(
        "/api/v1/me/assignments?status=pending&limit=2", headers=phone()
    ).get_json()
    assert [a["status"] for a in pending["items"]] == ["pending", "pending"]
    assert pending["next_cursor"] is not None
    for bad in ("limit=201", "limit=0", "cursor=not-a-cursor"):
        refused = client.get(f"/api/v1/me/assignments?{bad}", headers=phone())
        assert refused.status_code == 422, bad
        assert refused.get_json()["errors"][0]["parameter"] == bad.split("=")[0]


def test_the_instrument_is_served_in_the_requested_language(client, phone):
    english = client.get(
        "/api/v1/instruments/checkin", headers={**phone(), "Accept-Language": "en"}
    ).get_json()
    assert english["items"][0]["text"] == "How much pain do you have now, at rest?"
    french = client.get("/api/v1/instruments/followup/versions/1", headers=phone()).get_json()
    assert french["locale"] == "fr"
    assert french["items"][-1]["id"] == "comment"
    assert client.get("/api/v1/instruments/followup/versions/9", headers=phone()).status_code == 404


@pytest.mark.parametrize(
    ("header", "locale"),
    [("en-GB, fr;q=0.9", "en"), ("fr-CA, en;q=0.5", "fr"), ("de-DE, en;q=0.3", "en")],
)
def test_the_instrument_comes_in_the_language_the_phone_prefers_most(client, phone, header, locale):
    # A regional tag asks for its language at its own quality: a less wanted exact match must
    # not win over it.
    served = client.get(
        "/api/v1/instruments/checkin", headers={**phone(), "Accept-Language": header}
    ).get_json()
    assert served["locale"] == locale


@pytest.mark.parametrize("attempt", range(3))
def test_two_concurrent_submissions_with_one_key_store_one_row(
    committing_app, nurse_ada, clock, attempt
):
    patient = make_patient(nurse_ada)
    make_procedure(nurse_ada, patient)
    day1 = db.session.execute(
        db.select(Assignment).filter_by(patient_id=patient.id, day=1)
    ).scalar_one()
    clock.set(day1.opens_at + timedelta(hours=1))
    staff_client = committing_app.test_client()
    phone = enroll(staff_client, bearer(login(staff_client, nurse_ada)["access_token"]), patient)
    body = body_for(day1, clock.now())
    headers = {**phone(), "Idempotency-Key": str(uuid.uuid4())}
    db.session.commit()  # the test's own session must not hold SQLite's write lock
    barrier = threading.Barrier(2)
    results: list = []

    def submit():
        client = committing_app.test_client()
        barrier.wait()
        results.append(client.post("/api/v1/me/responses", json=body, headers=headers))

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r.status_code for r in results] == [201, 201]
    assert results[0].get_json()["id"] == results[1].get_json()["id"]
    patient_id = patient.id
    db.session.remove()
    assert (
        db.session.execute(
            db.select(db.func.count()).select_from(Response).filter_by(patient_id=patient_id)
        ).scalar()
        == 1
    )


@pytest.fixture
def _three_checkins_a_day(app):
    app.config["CHECKIN_LIMIT_PER_DAY"] = 3


def test_unscheduled_checkins_beyond_the_daily_limit_get_a_429_with_retry_after(
    client, phone, clock, _three_checkins_a_day
):
    accepted = []
    for _ in range(3):
        accepted.append(send(client, phone, body_for(None, clock.now())).status_code)
        clock.advance(timedelta(hours=1))
    assert accepted == [201, 201, 201]
    key = str(uuid.uuid4())
    refused = send(client, phone, body_for(None, clock.now()), key)
    assert refused.status_code == 429
    assert refused.content_type == "application/problem+json"
    problem = refused.get_json()
    assert problem["type"].endswith("too-many-checkins") and "call 15" in problem["detail"]
    # The first of the three leaves the 24-hour window 21 hours from now.
    assert int(refused.headers["Retry-After"]) == 21 * 3600
    assert count_responses() == 3
    clock.advance(timedelta(seconds=int(refused.headers["Retry-After"])))
    assert send(client, phone, body_for(None, clock.now()), key).status_code == 201


def test_the_checkin_limit_counts_rows_so_every_worker_sees_it(
    client, phone, clock, marcel, _three_checkins_a_day
):
    """Check-ins stored by another worker (rows in the database) count against this one."""
    from tests.factories import record

    for hours in (1, 2, 3):
        record(marcel, clock.now() - timedelta(hours=hours), answers=checkin_answers())
    db.session.commit()
    assert send(client, phone, body_for(None, clock.now())).status_code == 429


def test_scheduled_answers_and_nurse_entries_are_not_limited(
    client, phone, clock, marcel, day1, nurse_ada, _three_checkins_a_day
):
    for _ in range(3):
        assert send(client, phone, body_for(None, clock.now())).status_code == 201
    assert send(client, phone, body_for(day1, clock.now())).status_code == 201
    nurse = bearer(login(client, nurse_ada)["access_token"])
    entered = client.post(
        f"/api/v1/patients/{marcel.id}/responses",
        json={**body_for(None, clock.now()), "source": "nurse"},
        headers={**nurse, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert entered.status_code == 201, entered.get_json()


def test_a_replay_of_an_accepted_checkin_is_not_refused_by_the_limit(
    client, phone, clock, _three_checkins_a_day
):
    keys = [str(uuid.uuid4()) for _ in range(3)]
    bodies = [body_for(None, clock.now() - timedelta(minutes=n)) for n in range(3)]
    for key, body in zip(keys, bodies, strict=True):
        assert send(client, phone, body, key).status_code == 201
    assert send(client, phone, bodies[0], keys[0]).status_code == 201  # the retry replays
