"""Answers a nurse enters after a phone call: exactly once, and attributed to her by name.

Nurse Ada (site Lyon) calls Marcel, 86, sacroiliac screws, on day 1 and types in his answers.
"""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import pytest

from backend.alerts.models import Alert
from backend.audit.models import AuditEvent
from backend.auth.models import User
from backend.extensions import db
from backend.questionnaires.models import Assignment, Response
from tests.conftest import bearer, login
from tests.factories import checkin_answers, make_patient, make_procedure
from tests.questionnaires.test_responses import body_for, enroll


def name(staff, full_name: str) -> None:
    db.session.get(User, staff.id).full_name = full_name
    db.session.commit()


def day1_of(patient) -> Assignment:
    return db.session.execute(
        db.select(Assignment).filter_by(patient_id=patient.id, day=1)
    ).scalar_one()


@pytest.fixture
def marcel(app, nurse_ada):
    """Marcel, 86, sacroiliac screws, discharged 2026-11-22; Ada has her name on her account."""
    name(nurse_ada, "Ada Martin")
    patient = make_patient(nurse_ada)
    make_procedure(nurse_ada, patient)
    return patient


@pytest.fixture
def on_the_phone(marcel, clock):
    """Day 1, three hours after the questionnaire opened: Ada calls Marcel."""
    day1 = day1_of(marcel)
    clock.set(day1.opens_at + timedelta(hours=3))
    return day1


@pytest.fixture
def ada(client, nurse_ada, on_the_phone):
    """Ada's API headers, signed in during the call."""
    return bearer(login(client, nurse_ada)["access_token"])


def nurse_body(assignment, clock, **answers):
    body = body_for(assignment, clock.now(), answers=checkin_answers(**answers))
    del body["source"]
    return body


def enter(client, headers, patient, body, key):
    return client.post(
        f"/api/v1/patients/{patient.id}/responses",
        json=body,
        headers={**headers, "Idempotency-Key": key},
    )


def responses_of(patient) -> int:
    return db.session.execute(
        db.select(db.func.count()).select_from(Response).filter_by(patient_id=patient.id)
    ).scalar_one()


def test_a_nurses_retried_answer_returns_the_first_response_and_raises_one_alert(
    client, ada, nurse_ada, marcel, on_the_phone, clock
):
    body = nurse_body(on_the_phone, clock, symptoms=["chest_pain"])  # a red flag
    key = str(uuid.uuid4())
    first = enter(client, ada, marcel, body, key)
    assert first.status_code == 201, first.get_json()
    assert first.headers["Idempotent-Replayed"] == "false"
    assert first.get_json()["advice"]["emergency"] is True  # tell Marcel to call 15 now
    clock.advance(timedelta(seconds=30))  # the page timed out; Ada presses again
    again = enter(client, ada, marcel, body, key)
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json()["id"] == first.get_json()["id"]
    assert responses_of(marcel) == 1
    [alert] = db.session.execute(db.select(Alert).filter_by(patient_id=marcel.id)).scalars()
    assert alert.kind == "red_flag" and len(alert.evidence["signals"]) == 1
    created = db.session.execute(
        db.select(AuditEvent).filter_by(action="response.create", patient_id=marcel.id)
    ).scalars()
    assert [(e.actor_id, e.details) for e in created] == [
        (nurse_ada.id, {"source": "nurse", "channel": "phone"})
    ]


def test_the_same_key_with_other_answers_is_a_422_and_stores_nothing_more(
    client, ada, marcel, on_the_phone, clock
):
    key = str(uuid.uuid4())
    assert enter(client, ada, marcel, nurse_body(on_the_phone, clock), key).status_code == 201
    other = enter(client, ada, marcel, nurse_body(on_the_phone, clock, pain_rest=9), key)
    assert other.status_code == 422
    assert other.get_json()["errors"] == [
        {"header": "Idempotency-Key", "detail": "was already used with another body"}
    ]
    assert responses_of(marcel) == 1


def test_a_nurses_answer_without_an_idempotency_key_is_refused_and_names_the_header(
    client, ada, marcel, on_the_phone, clock
):
    response = client.post(
        f"/api/v1/patients/{marcel.id}/responses",
        json=nurse_body(on_the_phone, clock),
        headers=ada,
    )
    assert response.status_code == 422
    assert response.get_json()["errors"] == [
        {"header": "Idempotency-Key", "detail": "Missing data for required field."}
    ]
    assert responses_of(marcel) == 0


def test_each_response_says_who_entered_it_to_the_staff_and_to_the_phone(
    client, ada, nurse_ada, marcel, on_the_phone, clock
):
    phone = enroll(client, ada, marcel)
    by_caregiver = body_for(None, clock.now() - timedelta(hours=2), source="caregiver")
    sent = client.post(
        "/api/v1/me/responses",
        json=by_caregiver,
        headers={**phone(), "Idempotency-Key": str(uuid.uuid4())},
    )
    assert sent.get_json()["entered_by"] == {
        "kind": "caregiver",
        "display_name": None,
        "channel": "app",
    }
    typed = enter(client, ada, marcel, nurse_body(on_the_phone, clock), str(uuid.uuid4()))
    assert typed.get_json()["entered_by"] == {
        "kind": "nurse",
        "display_name": "Ada Martin",
        "user_id": str(nurse_ada.id),
        "channel": "phone",
    }
    timeline = client.get(f"/api/v1/patients/{marcel.id}/timeline", headers=ada)
    assert [r["entered_by"] for r in timeline.get_json()["responses"]] == [
        {"kind": "caregiver", "display_name": None, "user_id": None, "channel": "app"},
        {
            "kind": "nurse",
            "display_name": "Ada Martin",
            "user_id": str(nurse_ada.id),
            "channel": "phone",
        },
    ]
    # The phone shows who typed it in by her name, and nothing else of her account.
    mine = client.get("/api/v1/me/responses", headers=phone()).get_json()["items"]
    assert [r["entered_by"] for r in mine] == [
        {"kind": "caregiver", "display_name": None, "channel": "app"},
        {"kind": "nurse", "display_name": "Ada Martin", "channel": "phone"},
    ]
    assert "advice" not in mine[0]


def test_the_openapi_document_describes_who_entered_a_response(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    schemas = spec["components"]["schemas"]
    staff = schemas["StaffEnteredBy"]["properties"]
    assert set(staff) == {"kind", "display_name", "user_id", "channel"}
    kind = staff["kind"]  # a named enumeration component (backend/openapi.py)
    ref = kind.get("$ref") or kind.get("allOf", [{}])[0].get("$ref")
    kind = schemas[ref.rsplit("/", 1)[1]] if ref else kind
    assert kind["enum"] == ["patient", "caregiver", "nurse"]
    assert set(schemas["EnteredBy"]["properties"]) == {"kind", "display_name", "channel"}
    channel = staff["channel"]
    ref = channel.get("$ref") or channel.get("allOf", [{}])[0].get("$ref")
    channel = schemas[ref.rsplit("/", 1)[1]] if ref else channel
    assert channel["enum"] == ["app", "sms", "email", "phone"]
    timeline = schemas["Timeline"]["properties"]
    assert timeline["responses"]["items"] == {"$ref": "#/components/schemas/Response"}
    assert timeline["alerts"]["items"] == {"$ref": "#/components/schemas/Alert"}
    post = spec["paths"]["/api/v1/patients/{patient_id}/responses"]["post"]
    header = next(p for p in post["parameters"] if p["name"] == "Idempotency-Key")
    assert header["required"] is True


@pytest.mark.parametrize("attempt", range(3))
def test_two_concurrent_submissions_of_one_nurse_answer_store_one_row(
    committing_app, nurse_ada, clock, attempt
):
    patient = make_patient(nurse_ada)
    make_procedure(nurse_ada, patient)
    day1 = day1_of(patient)
    clock.set(day1.opens_at + timedelta(hours=3))
    staff_client = committing_app.test_client()
    headers = {
        **bearer(login(staff_client, nurse_ada)["access_token"]),
        "Idempotency-Key": str(uuid.uuid4()),
    }
    body = nurse_body(day1, clock)
    patient_id = patient.id
    db.session.commit()  # the test's own session must not hold SQLite's write lock
    barrier = threading.Barrier(2)
    results: list = []

    def submit():
        client = committing_app.test_client()
        barrier.wait()
        results.append(
            client.post(f"/api/v1/patients/{patient_id}/responses", json=body, headers=headers)
        )

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.status_code for r in results) == [201, 201]
    assert results[0].get_json()["id"] == results[1].get_json()["id"]
    assert sorted(r.headers["Idempotent-Replayed"] for r in results) == ["false", "true"]
    db.session.remove()
    assert (
        db.session.execute(
            db.select(db.func.count()).select_from(Response).filter_by(patient_id=patient_id)
        ).scalar()
        == 1
    )
