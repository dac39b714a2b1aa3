"""A lost phone is cut off: staff list a patient's phones and revoke one, audited."""

from __future__ import annotations

import uuid

import pytest

from backend.audit.models import AuditEvent
from backend.extensions import db
from tests.conftest import bearer
from tests.factories import make_patient, make_procedure

ANDROID = {"platform": "android", "push_token": "fcm-old-phone", "app_version": "1.0.0"}
IPHONE = {"platform": "ios", "push_token": "apns-new-phone", "app_version": "1.1.0"}


@pytest.fixture
def marcel(app, nurse_ada):
    patient = make_patient(nurse_ada)
    make_procedure(nurse_ada, patient)
    return patient


def enroll(client, headers, patient, device, **body) -> dict:
    code = client.post(
        f"/api/v1/patients/{patient.id}/enrollment-codes", headers=headers, json=body or None
    ).get_json()["code"]
    claim = client.post("/api/v1/enrollment/claim", json={"code": code, "device": device})
    assert claim.status_code == 201
    return claim.get_json()


def devices(client, headers, patient) -> list[dict]:
    response = client.get(f"/api/v1/patients/{patient.id}/devices", headers=headers)
    assert response.status_code == 200, response.get_json()
    return list(response.get_json()["items"])


def test_staff_list_a_patients_phones_newest_first_without_their_push_tokens(
    client, ada_headers, marcel, clock
):
    from datetime import timedelta

    enroll(client, ada_headers, marcel, ANDROID)
    clock.advance(timedelta(minutes=5))
    enroll(client, ada_headers, marcel, IPHONE)
    listed = devices(client, ada_headers, marcel)
    assert [(d["platform"], d["status"]) for d in listed] == [
        ("ios", "active"),
        ("android", "active"),
    ]
    assert "push_token" not in listed[0] and "fcm-old-phone" not in str(listed)
    assert db.session.execute(
        db.select(AuditEvent).filter_by(action="patient.devices.read", patient_id=marcel.id)
    ).scalar_one()


def test_revoking_the_lost_phone_ends_its_tokens_at_once_and_spares_the_new_one(
    client, ada_headers, marcel
):
    old = enroll(client, ada_headers, marcel, ANDROID)
    new = enroll(client, ada_headers, marcel, IPHONE)
    lost = next(d for d in devices(client, ada_headers, marcel) if d["platform"] == "android")
    assert client.get("/api/v1/me", headers=bearer(old["access_token"])).status_code == 200

    revoked = client.post(
        f"/api/v1/patients/{marcel.id}/devices/{lost['id']}/revoke", headers=ada_headers
    )

    assert revoked.status_code == 200
    assert revoked.get_json()["status"] == "revoked" and revoked.get_json()["revoked_at"]
    # Its access token stops now (not in 15 minutes), and its refresh chain is over.
    assert client.get("/api/v1/me", headers=bearer(old["access_token"])).status_code == 401
    refresh = client.post("/api/v1/auth/refresh", json={"refresh_token": old["refresh_token"]})
    assert refresh.status_code == 401
    # The new phone goes on.
    assert client.get("/api/v1/me", headers=bearer(new["access_token"])).status_code == 200
    audit = db.session.execute(
        db.select(AuditEvent).filter_by(action="device.revoke", resource_id=lost["id"])
    ).scalar_one()
    assert audit.patient_id == marcel.id and audit.actor_type == "user"
    # Again: nothing changes, nothing more is audited.
    again = client.post(
        f"/api/v1/patients/{marcel.id}/devices/{lost['id']}/revoke", headers=ada_headers
    )
    assert (
        again.status_code == 200
        and again.get_json()["revoked_at"] == (revoked.get_json()["revoked_at"])
    )
    assert (
        len(db.session.execute(db.select(AuditEvent).filter_by(action="device.revoke")).all()) == 1
    )


def test_a_revoked_phone_gets_no_more_pushes(client, ada_headers, marcel):
    from backend.patients.models import Device

    enroll(client, ada_headers, marcel, ANDROID)
    lost = devices(client, ada_headers, marcel)[0]
    client.post(f"/api/v1/patients/{marcel.id}/devices/{lost['id']}/revoke", headers=ada_headers)
    device = db.session.get(Device, uuid.UUID(lost["id"]))
    assert device.push_disabled_at is not None and device.push_disabled_reason == "revoked"


def test_a_new_code_may_cut_off_every_phone_enrolled_before(client, ada_headers, marcel):
    first = enroll(client, ada_headers, marcel, ANDROID)
    second = enroll(client, ada_headers, marcel, ANDROID)
    third = enroll(client, ada_headers, marcel, IPHONE, revoke_devices=True)
    assert client.get("/api/v1/me", headers=bearer(first["access_token"])).status_code == 401
    assert client.get("/api/v1/me", headers=bearer(second["access_token"])).status_code == 401
    assert client.get("/api/v1/me", headers=bearer(third["access_token"])).status_code == 200
    assert sorted(d["status"] for d in devices(client, ada_headers, marcel)) == [
        "active",
        "revoked",
        "revoked",
    ]


def test_a_new_code_leaves_the_enrolled_phones_alone_by_default(client, ada_headers, marcel):
    first = enroll(client, ada_headers, marcel, ANDROID)
    enroll(client, ada_headers, marcel, IPHONE)
    assert client.get("/api/v1/me", headers=bearer(first["access_token"])).status_code == 200


def test_another_patients_phone_cannot_be_revoked_through_this_patient(
    client, ada_headers, marcel, nurse_ada
):
    josette = make_patient(nurse_ada, given_name="Josette", family_name="Lefèvre")
    make_procedure(nurse_ada, josette)
    hers = enroll(client, ada_headers, josette, IPHONE)
    device = devices(client, ada_headers, josette)[0]
    wrong = client.post(
        f"/api/v1/patients/{marcel.id}/devices/{device['id']}/revoke", headers=ada_headers
    )
    assert wrong.status_code == 404
    assert client.get("/api/v1/me", headers=bearer(hers["access_token"])).status_code == 200
