"""Patients and procedures through the API: validation, uniqueness, site scoping, audit."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import date, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from backend.audit.models import AuditEvent
from backend.extensions import db
from backend.patients import services
from backend.patients.models import Patient, Procedure
from tests.conftest import bearer, login
from tests.factories import principal_of

MARCEL = {
    "mrn": "LY-0001",
    "given_name": "Marcel",
    "family_name": "Dupont",
    "birth_date": "1940-03-02",
    "sex": "male",
    "phone": "+33612345678",
    "locale": "fr",
    "timezone": "Europe/Paris",
    "contact_channels": ["push", "sms"],
    "caregiver_answers": True,
}
SACROILIAC_SCREWS = {
    "kind": "screw_fixation",
    "location": "sacroiliac",
    "side": "left",
    "etiology": "osteoporotic",
    "bone_quality": "osteoporotic",
    "anaesthesia": "local",
    "screw_count": 2,
    "cement_volume_ml": 4.5,
    "performed_on": "2026-11-20",
    "discharged_on": "2026-11-22",
    "study_arm": "cement+screws",
    "baseline": {
        "pain_rest": 6,
        "pain_walking": 8,
        "mobility_score": 6,
        "analgesics": "weak_opioid",
        "walking_aid": "walker",
        "living_situation": "alone",
    },
}


def test_a_nurse_registers_a_patient_and_a_procedure_with_its_schedule(client, ada_headers):
    created = client.post("/api/v1/patients", json=MARCEL, headers=ada_headers)
    assert created.status_code == 201, created.get_json()
    patient = created.get_json()
    assert patient["status"] == "active" and patient["caregiver_answers"] is True
    procedure = client.post(
        f"/api/v1/patients/{patient['id']}/procedures", json=SACROILIAC_SCREWS, headers=ada_headers
    )
    assert procedure.status_code == 201, procedure.get_json()
    body = procedure.get_json()
    assert body["baseline"]["pain_walking"] == 8
    assert body["protocol"] == {"key": "standard", "version": 1}
    assert [s["day"] for s in body["schedule"]] == [1, 7, 14, 21, 30, 42, 56, 90, 180, 365]
    assert body["schedule"][0]["opens_at"] == "2026-11-23T09:00:00+00:00"


def test_a_duplicate_mrn_at_the_same_site_is_a_409_but_another_site_may_reuse_it(
    client, ada_headers, noe_headers
):
    assert client.post("/api/v1/patients", json=MARCEL, headers=ada_headers).status_code == 201
    again = client.post("/api/v1/patients", json=MARCEL, headers=ada_headers)
    assert again.status_code == 409
    assert client.post("/api/v1/patients", json=MARCEL, headers=noe_headers).status_code == 201


def raced_by_an_uncommitted_twin(nurse_ada: Any, clock: Any, send: Any) -> Any:
    """The response to ``send()`` (a request, in a thread) made while a twin holding MARCEL's MRN
    is written and not yet committed: the request's check cannot see it, and its write waits on
    the twin's row until the twin commits."""
    twin = {**MARCEL, "birth_date": date(1940, 3, 2)}
    services.create_patient(principal_of(nurse_ada), twin, now=clock.now())
    holder = db.session.execute(sa.text("SELECT pg_backend_pid()")).scalar()
    results: list = []
    racer = threading.Thread(target=lambda: results.append(send()))
    racer.start()
    wait_until_blocked_by(holder)
    db.session.commit()
    racer.join()
    return results[0]


def wait_until_blocked_by(holder: int) -> None:
    """Until a PostgreSQL backend waits on a lock that backend ``holder`` holds (the racing
    request has reached the twin's row)."""
    waiting = sa.text("SELECT 1 FROM pg_stat_activity WHERE :holder = ANY(pg_blocking_pids(pid))")
    # Autocommit: within a transaction pg_stat_activity is a snapshot, which would never show
    # the racer arriving.
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as watcher:
        deadline = time.monotonic() + 10
        while not watcher.execute(waiting, {"holder": holder}).first():
            assert time.monotonic() < deadline, "the racing request never waited on the twin"
            time.sleep(0.01)


def test_a_registration_racing_a_twin_with_the_same_mrn_gets_the_409_not_a_500(
    database_url, committing_app, nurse_ada, clock
):
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite runs one writer at a time: two registrations cannot interleave")
    client = committing_app.test_client()
    headers = bearer(login(client, nurse_ada)["access_token"])
    db.session.commit()
    refused = raced_by_an_uncommitted_twin(
        nurse_ada, clock, lambda: client.post("/api/v1/patients", json=MARCEL, headers=headers)
    )
    assert refused.status_code == 409, refused.get_json()
    assert refused.get_json()["detail"] == services.MRN_TAKEN
    db.session.remove()
    assert db.session.execute(sa.select(sa.func.count()).select_from(Patient)).scalar() == 1


def test_every_bad_patient_field_is_listed_and_nothing_is_stored(client, ada_headers):
    bad = {
        **MARCEL,
        "timezone": "Europe/Lyon",
        "locale": "de",
        "birth_date": "2090-01-01",
        "phone": "0612345678",
        "contact_channels": ["pigeon"],
        "status": "active",
        "site": "NANTES",
        "patient_id": "x",
    }
    response = client.post("/api/v1/patients", json=bad, headers=ada_headers)
    assert response.status_code == 422
    pointers = {e["pointer"] for e in response.get_json()["errors"]}
    assert pointers == {
        "/timezone",
        "/locale",
        "/birth_date",
        "/phone",
        "/contact_channels/0",
        "/status",
        "/site",
        "/patient_id",
    }
    assert db.session.execute(db.select(Patient)).first() is None


def test_sms_without_a_phone_number_is_refused(client, ada_headers):
    body = {**MARCEL, "phone": None, "contact_channels": ["sms"]}
    response = client.post("/api/v1/patients", json=body, headers=ada_headers)
    assert response.status_code == 422
    assert response.get_json()["errors"][0]["pointer"] == "/phone"


def test_a_channel_without_its_contact_point_is_named_beside_the_other_bad_fields(
    client, ada_headers
):
    body = {
        **MARCEL,
        "birth_date": "2090-01-01",
        "phone": None,
        "email": "not-an-address",
        "contact_channels": ["sms", "email"],
    }
    response = client.post("/api/v1/patients", json=body, headers=ada_headers)
    assert response.status_code == 422
    errors = {e["pointer"]: e["detail"] for e in response.get_json()["errors"]}
    assert set(errors) == {"/birth_date", "/phone", "/email"}
    assert errors["/phone"] == "is required when contact_channels includes sms"
    assert "required" not in errors["/email"]  # sent, and refused as it is
    assert db.session.execute(db.select(Patient)).first() is None


def test_every_bad_procedure_field_is_listed_against_the_clinical_value_lists(client, ada_headers):
    patient = client.post("/api/v1/patients", json=MARCEL, headers=ada_headers).get_json()
    bad = {
        **SACROILIAC_SCREWS,
        "kind": "kyphoplasty",
        "location": "skull",
        "etiology": "sad",
        "discharged_on": "2026-11-19",
        "baseline": {
            "pain_rest": 11,
            "pain_walking": -1,
            "mobility_score": 10,
            "walking_aid": "wheelchair",
        },
    }
    response = client.post(
        f"/api/v1/patients/{patient['id']}/procedures", json=bad, headers=ada_headers
    )
    assert response.status_code == 422
    pointers = {e["pointer"] for e in response.get_json()["errors"]}
    assert {
        "/kind",
        "/location",
        "/etiology",
        "/baseline/pain_rest",
        "/baseline/pain_walking",
        "/baseline/mobility_score",
        "/baseline/walking_aid",
    } <= pointers
    assert db.session.execute(db.select(Procedure)).first() is None


def test_a_status_change_through_patch_needs_its_reason_and_ends_for_good(
    client, ada_headers, clock
):
    patient = client.post("/api/v1/patients", json=MARCEL, headers=ada_headers).get_json()
    url = f"/api/v1/patients/{patient['id']}"
    unexplained = client.patch(url, json={"status": "paused"}, headers=ada_headers)
    assert unexplained.status_code == 422
    assert [e["pointer"] for e in unexplained.get_json()["errors"]] == ["/status_reason"]
    for status in ("paused", "readmitted", "active", "deceased"):
        clock.advance(timedelta(minutes=1))
        response = client.patch(
            url, json={"status": status, "status_reason": f"to {status}"}, headers=ada_headers
        )
        assert response.status_code == 200 and response.get_json()["status"] == status
    again = client.patch(url, json={"status": "active", "status_reason": "?"}, headers=ada_headers)
    assert again.status_code == 409
    history = client.get(f"{url}/status", headers=ada_headers).get_json()["items"]
    assert [(h["from_status"], h["to_status"]) for h in history] == [
        ("active", "paused"),
        ("paused", "readmitted"),
        ("readmitted", "active"),
        ("active", "deceased"),
    ]
    assert all(h["changed_by"]["id"] for h in history)
    assert client.patch(url, json={"status": "asleep"}, headers=ada_headers).status_code == 422
    # The consent dates are no longer written through PATCH: consents are records.
    old_style = client.patch(url, json={"consent_given_on": "2026-11-20"}, headers=ada_headers)
    assert old_style.status_code == 422


def test_search_by_name_or_mrn_and_status_with_pagination(client, ada_headers):
    for i in range(5):
        client.post(
            "/api/v1/patients",
            headers=ada_headers,
            json={**MARCEL, "mrn": f"LY-{i}", "family_name": f"Martin{i}"},
        )
    page = client.get("/api/v1/patients?q=martin&limit=2", headers=ada_headers).get_json()
    assert len(page["items"]) == 2 and page["next_cursor"]
    rest = client.get(
        f"/api/v1/patients?q=martin&limit=10&cursor={page['next_cursor']}", headers=ada_headers
    ).get_json()
    assert "items" in rest, rest
    assert len(rest["items"]) == 3 and rest["next_cursor"] is None
    names = {p["family_name"] for p in page["items"] + rest["items"]}
    assert len(names) == 5
    assert (
        client.get("/api/v1/patients?status=paused", headers=ada_headers).get_json()["items"] == []
    )
    assert client.get("/api/v1/patients?cursor=garbage", headers=ada_headers).status_code == 422
    assert client.get("/api/v1/patients?limit=500", headers=ada_headers).status_code == 422


def test_another_sites_patient_is_invisible_and_reads_are_audited(
    client, ada_headers, noe_headers, nurse_ada
):
    patient = client.post("/api/v1/patients", json=MARCEL, headers=ada_headers).get_json()
    assert client.get(f"/api/v1/patients/{patient['id']}", headers=noe_headers).status_code == 404
    assert client.get("/api/v1/patients", headers=noe_headers).get_json()["items"] == []
    client.get(f"/api/v1/patients/{patient['id']}", headers=ada_headers)
    client.get(f"/api/v1/patients/{patient['id']}/timeline", headers=ada_headers)
    actions = [
        e.action
        for e in db.session.execute(
            db.select(AuditEvent)
            .filter_by(patient_id=uuid.UUID(patient["id"]))
            .order_by(AuditEvent.occurred_at)
        ).scalars()
    ]
    assert actions[0] == "patient.create"
    assert "patient.read" in actions and "patient.timeline.read" in actions


def test_a_birth_date_after_the_applications_today_is_refused_by_its_clock_not_the_machines(
    client, ada_headers, clock
):
    # The application's clock says 2026-11-23; a date a week later is in its future (the
    # machine's calendar, whatever it says, is not the one the service decides by).
    later = (clock.now() + timedelta(days=7)).date().isoformat()
    response = client.post(
        "/api/v1/patients", json={**MARCEL, "birth_date": later}, headers=ada_headers
    )
    assert response.status_code == 422
    assert [e["pointer"] for e in response.get_json()["errors"]] == ["/birth_date"]
    today = clock.now().date().isoformat()
    accepted = client.post(
        "/api/v1/patients", json={**MARCEL, "birth_date": today}, headers=ada_headers
    )
    assert accepted.status_code == 201, accepted.get_json()


def test_an_mrn_change_racing_a_twin_given_the_same_mrn_gets_the_409_not_a_500(
    database_url, committing_app, nurse_ada, clock
):
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite runs one writer at a time: two writes cannot interleave")
    client = committing_app.test_client()
    headers = bearer(login(client, nurse_ada)["access_token"])
    renamed = services.create_patient(
        principal_of(nurse_ada), {**MARCEL, "mrn": "OLD-1"}, now=clock.now()
    ).id
    db.session.commit()
    refused = raced_by_an_uncommitted_twin(
        nurse_ada,
        clock,
        lambda: client.patch(
            f"/api/v1/patients/{renamed}", json={"mrn": MARCEL["mrn"]}, headers=headers
        ),
    )
    assert refused.status_code == 409, refused.get_json()
    assert refused.get_json()["detail"] == services.MRN_TAKEN
    db.session.remove()
    mrns = db.session.execute(sa.select(Patient.mrn).order_by(Patient.mrn)).scalars().all()
    assert mrns == sorted(["OLD-1", MARCEL["mrn"]])
