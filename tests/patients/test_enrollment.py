"""Enrollment codes and the phone's claim."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest

from backend.patients.services import CODE_ALPHABET, CODE_LENGTH
from tests.conftest import bearer
from tests.factories import make_patient, make_procedure

IPHONE = {
    "platform": "ios",
    "push_token": "apns-token-abc",
    "app_version": "1.0.0",
    "locale": "fr",
    "timezone": "Europe/Paris",
}


@pytest.fixture
def marcel(app, nurse_ada):
    patient = make_patient(nurse_ada)
    make_procedure(nurse_ada, patient)
    return patient


def new_code(client, headers, patient) -> dict:
    response = client.post(f"/api/v1/patients/{patient.id}/enrollment-codes", headers=headers)
    assert response.status_code == 201
    return response.get_json()


def test_codes_are_short_unambiguous_and_carry_at_least_40_bits():
    assert CODE_LENGTH * math.log2(len(CODE_ALPHABET)) >= 40
    assert not set("01OIL") & set(CODE_ALPHABET)


def test_a_claim_enrolls_the_phone_and_returns_patient_tokens(client, ada_headers, marcel):
    code = new_code(client, ada_headers, marcel)
    assert len(code["code"].replace("-", "")) >= 8
    claim = client.post("/api/v1/enrollment/claim", json={"code": code["code"], "device": IPHONE})
    assert claim.status_code == 201, claim.get_json()
    body = claim.get_json()
    assert body["patient"] == {
        "id": str(marcel.id),
        "display_name": "Marcel D.",
        "locale": "fr",
        "timezone": "Europe/Paris",
    }
    me = client.get("/api/v1/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200 and me.get_json()["id"] == str(marcel.id)
    refreshed = client.post("/api/v1/auth/refresh", json={"refresh_token": body["refresh_token"]})
    assert refreshed.status_code == 200


def test_a_code_is_single_use_and_case_and_dash_insensitive(client, ada_headers, marcel):
    code = new_code(client, ada_headers, marcel)["code"]
    typed = code.lower().replace("-", " ")
    assert (
        client.post("/api/v1/enrollment/claim", json={"code": typed, "device": IPHONE}).status_code
        == 201
    )
    again = client.post("/api/v1/enrollment/claim", json={"code": code, "device": IPHONE})
    assert again.status_code == 400


def test_wrong_used_and_expired_codes_get_the_same_answer(client, ada_headers, marcel, clock):
    used = new_code(client, ada_headers, marcel)["code"]
    client.post("/api/v1/enrollment/claim", json={"code": used, "device": IPHONE})
    expired = new_code(client, ada_headers, marcel)["code"]
    clock.advance(timedelta(days=14, seconds=1))
    answers = [
        client.post("/api/v1/enrollment/claim", json={"code": c, "device": IPHONE})
        for c in (used, expired, "ZZZZZ-ZZZZZ")
    ]
    assert {r.status_code for r in answers} == {400}
    assert len({r.get_json()["detail"] for r in answers}) == 1


def test_a_new_code_replaces_the_previous_one(client, ada_headers, marcel):
    first = new_code(client, ada_headers, marcel)["code"]
    second = new_code(client, ada_headers, marcel)["code"]
    assert (
        client.post("/api/v1/enrollment/claim", json={"code": first, "device": IPHONE}).status_code
        == 400
    )
    assert (
        client.post("/api/v1/enrollment/claim", json={"code": second, "device": IPHONE}).status_code
        == 201
    )


@pytest.fixture
def app_config():
    return {"ENROLLMENT_CLAIM_LIMIT": "3 per 15 minutes"}


def test_claim_attempts_are_rate_limited(client, ada_headers, marcel):
    for _ in range(3):
        assert (
            client.post(
                "/api/v1/enrollment/claim", json={"code": "WRONG-CODE1", "device": IPHONE}
            ).status_code
            == 400
        )
    good = new_code(client, ada_headers, marcel)["code"]
    limited = client.post("/api/v1/enrollment/claim", json={"code": good, "device": IPHONE})
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0


def test_a_refused_code_does_not_tell_the_phone_to_wait_only_the_rate_limit_does(
    client, ada_headers, marcel
):
    # A mistyped code (400): the patient may type it again at once. A phone honouring
    # Retry-After on it would wait for the whole window.
    typo = client.post("/api/v1/enrollment/claim", json={"code": "WRONG-CODE1", "device": IPHONE})
    assert typo.status_code == 400
    assert "Retry-After" not in typo.headers
    assert int(typo.headers["X-RateLimit-Remaining"]) == 2  # what is left is still said
    for _ in range(2):
        client.post("/api/v1/enrollment/claim", json={"code": "WRONG-CODE1", "device": IPHONE})
    limited = client.post(
        "/api/v1/enrollment/claim", json={"code": "WRONG-CODE1", "device": IPHONE}
    )
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0


def test_the_phone_updates_its_push_token(client, ada_headers, marcel):
    from backend.extensions import db
    from backend.patients.models import Device

    tokens = client.post(
        "/api/v1/enrollment/claim",
        json={"code": new_code(client, ada_headers, marcel)["code"], "device": IPHONE},
    ).get_json()
    response = client.put(
        "/api/v1/me/device",
        headers=bearer(tokens["access_token"]),
        json={"platform": "ios", "push_token": "rotated-token"},
    )
    assert response.status_code == 204
    device = db.session.execute(db.select(Device)).scalar_one()
    assert device.push_token == "rotated-token"


def test_a_withdrawn_patients_phone_loses_access(client, ada_headers, marcel):
    tokens = client.post(
        "/api/v1/enrollment/claim",
        json={"code": new_code(client, ada_headers, marcel)["code"], "device": IPHONE},
    ).get_json()
    client.patch(
        f"/api/v1/patients/{marcel.id}",
        json={"status": "withdrawn", "status_reason": "moved to a nursing home abroad"},
        headers=ada_headers,
    )
    assert client.get("/api/v1/me", headers=bearer(tokens["access_token"])).status_code == 401
