"""No input crashes the service: each bad value is a 4xx problem naming it (issue 9, defect 1).

The shared field types (``backend.fields``) decide what the database can store, once for every
schema; these tests send what PostgreSQL refuses (NUL, unpaired surrogates, integers past
``integer``, instants before year 1) and what Python's parser cannot take (a 100,000-deep
array) through the endpoints where they were found, on both databases.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import marshmallow as ma
import pytest

from backend import fields
from backend.alerts.models import Alert
from backend.audit.models import AuditEvent
from backend.extensions import db
from backend.patients.models import Patient
from backend.questionnaires.models import Assignment, Response
from tests.conftest import bearer, login
from tests.factories import followup_answers, make_patient, make_procedure

NUL = "Dupont\u0000"
SURROGATE = "Dupont\ud800"


def pointers(response) -> set[str]:
    return {e.get("pointer") or e.get("parameter") for e in response.get_json()["errors"]}


@pytest.fixture
def marcel(app, nurse_ada):
    """Marcel, 86, sacroiliac screws, discharged 2026-11-22 in Paris."""
    patient = make_patient(nurse_ada)
    make_procedure(nurse_ada, patient)
    return patient


def enroll(client, headers, patient) -> dict[str, str]:
    code = client.post(
        f"/api/v1/patients/{patient.id}/enrollment-codes", headers=headers
    ).get_json()["code"]
    claim = client.post(
        "/api/v1/enrollment/claim", json={"code": code, "device": {"platform": "android"}}
    )
    return bearer(claim.get_json()["access_token"])


# --- text the database cannot store ------------------------------------------------------------


@pytest.mark.parametrize("bad", [NUL, SURROGATE], ids=["nul", "surrogate"])
def test_a_login_with_a_nul_or_a_lone_surrogate_is_a_422_naming_the_field(client, bad):
    response = client.post("/api/v1/auth/login", json={"email": f"ada{bad}@x.fr", "password": bad})
    assert response.status_code == 422, response.get_json()
    assert response.mimetype == "application/problem+json"
    assert pointers(response) == {"/email", "/password"}


def test_a_nul_in_the_patient_search_is_a_422_naming_the_parameter(client, ada_headers, marcel):
    response = client.get("/api/v1/patients?q=Mar%00cel", headers=ada_headers)
    assert response.status_code == 422, response.get_json()
    assert pointers(response) == {"q"}


@pytest.mark.parametrize(
    ("method", "path", "body", "pointer"),
    [
        ("POST", "/api/v1/patients", {"family_name": NUL}, "/family_name"),
        ("PATCH", "/api/v1/patients/{patient}", {"given_name": SURROGATE}, "/given_name"),
        ("POST", "/api/v1/alerts/{alert}/notes", {"text": "Called\u0000"}, "/text"),
    ],
    ids=["patient-create", "patient-update", "note"],
)
def test_unstorable_text_in_a_staff_body_is_a_422_and_nothing_is_written(
    client, ada_headers, marcel, clock, method, path, body, pointer
):
    from tests.factories import checkin_answers, record

    record(marcel, clock.now() + timedelta(days=1), answers=checkin_answers(call_request=True))
    alert = db.session.execute(db.select(Alert)).scalars().first()
    audit_rows = db.session.query(AuditEvent).count()
    url = path.format(patient=marcel.id, alert=alert.id)
    response = client.open(url, method=method, json=body, headers=ada_headers)
    assert response.status_code == 422, response.get_json()
    assert pointer in pointers(response)
    assert db.session.query(Patient).count() == 1
    assert db.session.query(AuditEvent).count() == audit_rows


def test_a_nul_in_a_push_token_is_a_422(client, ada_headers, marcel):
    phone = enroll(client, ada_headers, marcel)
    response = client.put(
        "/api/v1/me/device", json={"platform": "ios", "push_token": "tok\u0000"}, headers=phone
    )
    assert response.status_code == 422, response.get_json()
    assert pointers(response) == {"/push_token"}


def test_a_nul_in_the_nurse_pages_search_is_a_400_page_not_a_500(app, nurse_ada, marcel):
    from tests.web.conftest import Pages

    pages = Pages(app.test_client())
    assert pages.sign_in(nurse_ada).status_code == 303
    response = pages.get("/patients?q=Mar%00cel")
    assert response.status_code == 400
    assert response.mimetype == "text/html"
    assert pages.get("/patients?q=Marcel").status_code == 200


def test_a_nul_on_the_sign_in_page_is_a_wrong_password_not_a_500(app, nurse_ada):
    from tests.web.conftest import Pages

    pages = Pages(app.test_client())
    response = pages.post("/login", {"email": "ada@lyon.example\u0000", "password": "x\u0000"})
    assert response.status_code == 401
    assert "Wrong e-mail or password" in pages.text(response)


# --- numbers and instants past what the columns hold ------------------------------------------


def checkin_body(clock, **overrides):
    body = {
        "assignment_id": None,
        "instrument": "checkin",
        "version": 1,
        "answered_at": clock.now().isoformat(),
        "source": "patient",
        "answers": {
            "pain_rest": 2,
            "pain_walking": 3,
            "analgesics": "non_opioid",
            "walking_aid": "cane",
            "fell": False,
            "symptoms": [],
            "change": "much_improved",
            "call_request": False,
        },
    }
    body.update(overrides)
    return body


def post_response(client, phone, body):
    return client.post(
        "/api/v1/me/responses", json=body, headers={**phone, "Idempotency-Key": str(uuid.uuid4())}
    )


@pytest.mark.parametrize(
    ("override", "pointer"),
    [
        ({"version": 2**31}, "/version"),
        ({"version": 1.0}, "/version"),
        ({"version": "1"}, "/version"),
        ({"answered_at": "0001-01-01T00:00:00+14:00"}, "/answered_at"),
        ({"answered_at": "9999-12-31T23:59:59-14:00"}, "/answered_at"),
        ({"instrument": "checkin\u0000"}, "/instrument"),
        ({"answers": {"pain\u0000": 1}}, "/answers"),
    ],
    ids=["int32-overflow", "float", "string", "year-1", "year-10000", "nul-key", "nul-item"],
)
def test_a_response_with_a_value_past_its_column_is_a_422_naming_it(
    client, ada_headers, marcel, clock, override, pointer
):
    clock.advance(timedelta(days=3))
    phone = enroll(client, bearer(login(client, _ada(marcel))["access_token"]), marcel)
    response = post_response(client, phone, checkin_body(clock, **override))
    assert response.status_code == 422, response.get_json()
    assert any(p.startswith(pointer) for p in pointers(response)), response.get_json()
    assert db.session.query(Response).count() == 0


def _ada(marcel):
    from tests.conftest import Staff

    return Staff(
        uuid.uuid4(),
        "ada@lyon.example",
        "long-enough-nurse-password-LYON",
        "nurse",
        uuid.uuid4(),
        "",
    )


def test_an_instrument_version_past_the_column_is_a_404_not_a_500(client, ada_headers):
    assert (
        client.get("/api/v1/instruments/followup/versions/1", headers=ada_headers).status_code
        == 200
    )
    for version in (2**31, 2**63, 10**30):
        response = client.get(
            f"/api/v1/instruments/followup/versions/{version}", headers=ada_headers
        )
        assert response.status_code == 404, version
        assert response.mimetype == "application/problem+json"


def test_an_instrument_key_with_a_nul_is_a_404_not_a_500(client, ada_headers):
    response = client.get("/api/v1/instruments/check%00in", headers=ada_headers)
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"


@pytest.mark.parametrize(
    ("value", "why"),
    [(4.99, "float"), (4.0, "whole float"), ("4", "string"), (True, "boolean")],
)
def test_an_integer_field_refuses_what_is_not_a_json_integer(
    client, ada_headers, marcel, value, why
):
    body = {
        "kind": "cementoplasty",
        "location": "sacrum",
        "etiology": "osteoporotic",
        "performed_on": "2026-11-20",
        "discharged_on": "2026-11-22",
        "baseline": {"pain_rest": value, "pain_walking": 5},
    }
    response = client.post(
        f"/api/v1/patients/{marcel.id}/procedures", json=body, headers=ada_headers
    )
    assert response.status_code == 422, (why, response.get_json())
    assert pointers(response) == {"/baseline/pain_rest"}


def test_nan_and_infinity_are_not_numbers_here(client, ada_headers, marcel):
    body = (
        '{"kind": "cementoplasty", "location": "sacrum", "etiology": "osteoporotic",'
        ' "performed_on": "2026-11-20", "discharged_on": "2026-11-22", "cement_volume_ml": NaN,'
        ' "baseline": {"pain_rest": 4, "pain_walking": 5}}'
    )
    response = client.post(
        f"/api/v1/patients/{marcel.id}/procedures",
        data=body,
        content_type="application/json",
        headers=ada_headers,
    )
    assert response.status_code == 422, response.get_json()
    assert pointers(response) == {"/cement_volume_ml"}


def test_a_procedure_dated_at_the_end_of_the_calendar_is_a_422_not_an_overflow(
    client, ada_headers, marcel
):
    body = {
        "kind": "cementoplasty",
        "location": "sacrum",
        "etiology": "osteoporotic",
        "performed_on": "9999-12-30",
        "discharged_on": "9999-12-31",
        "baseline": {"pain_rest": 4, "pain_walking": 5},
    }
    response = client.post(
        f"/api/v1/patients/{marcel.id}/procedures", json=body, headers=ada_headers
    )
    assert response.status_code == 422, response.get_json()
    assert pointers(response) == {"/performed_on", "/discharged_on"}


# --- bodies Python's parser cannot take --------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/auth/login", "/api/v1/enrollment/claim"])
@pytest.mark.parametrize("depth", [100_000, 990, 33])
def test_a_deeply_nested_body_is_a_400_problem_without_authentication(client, path, depth):
    response = client.post(path, data="[" * depth + "]" * depth, content_type="application/json")
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    assert "levels deep" in response.get_json()["detail"]


def test_a_body_nested_32_levels_is_parsed_as_usual(client):
    nested = "[" * 31 + "]" * 31
    response = client.post(
        "/api/v1/auth/login",
        data=f'{{"email": "a@b.fr", "password": {nested}}}',
        content_type="application/json",
    )
    assert response.status_code == 422  # parsed; the password is not a string


# --- the patient's free-text comment -----------------------------------------------------------


def month1_phone(client, marcel, clock):
    """Marcel's phone an hour after his month-1 follow-up opened, and that follow-up."""
    month1 = db.session.execute(
        db.select(Assignment).filter_by(patient_id=marcel.id, day=30)
    ).scalar_one()
    clock.set(month1.opens_at + timedelta(hours=1))
    return enroll(client, bearer(login(client, _ada(marcel))["access_token"]), marcel), month1


def followup_body(clock, month1, **answers):
    return {
        "assignment_id": str(month1.id),
        "instrument": "followup",
        "version": 1,
        "answered_at": clock.now().isoformat(),
        "source": "patient",
        "answers": followup_answers(**answers),
    }


def test_a_red_flag_followup_with_a_nul_in_the_comment_is_stored_alerts_and_advises_calling_15(
    client, marcel, clock
):
    """Month 1: leg weakness and bladder trouble (a red flag), and a comment with a NUL a
    keyboard slipped in. The answer is kept, the comment loses only its control characters."""
    phone, month1 = month1_phone(client, marcel, clock)
    body = followup_body(
        clock,
        month1,
        symptoms=["leg_weakness", "bladder_bowel"],
        comment="Je ne sens\u0000 plus ma jambe\u001b[0m\nmerci",
    )
    response = post_response(client, phone, body)
    assert response.status_code == 201, response.get_json()
    advice = response.get_json()["advice"]
    assert advice["emergency"] is True and "15" in advice["message"]
    stored = db.session.execute(db.select(Response)).scalar_one()
    assert stored.answers["symptoms"] == ["leg_weakness", "bladder_bowel"]
    assert stored.answers["comment"] == "Je ne sens plus ma jambe[0m\nmerci"
    [alert] = db.session.execute(db.select(Alert).filter_by(patient_id=marcel.id)).scalars()
    assert alert.kind == "red_flag"
    # The phone's retry (same key, same body) replays the stored answer.
    key = str(uuid.uuid4())
    first = client.post(
        "/api/v1/me/responses", json=body, headers={**phone, "Idempotency-Key": key}
    )
    assert first.status_code == 409  # the questionnaire is answered: nothing doubled


def test_a_comment_of_control_characters_only_is_dropped_and_the_answer_kept(client, marcel, clock):
    phone, month1 = month1_phone(client, marcel, clock)
    response = post_response(client, phone, followup_body(clock, month1, comment="\u0000\u0007"))
    assert response.status_code == 201, response.get_json()
    stored = db.session.execute(db.select(Response)).scalar_one()
    assert "comment" not in stored.answers


# --- search and updates ------------------------------------------------------------------------


@pytest.mark.parametrize("wildcard", ["%", "_", "\\"])
def test_percent_underscore_and_backslash_in_a_search_are_characters_not_wildcards(
    client, ada_headers, nurse_ada, wildcard
):
    make_patient(nurse_ada, given_name="Marcel", family_name="Dupont", mrn="MRN-1")
    make_patient(nurse_ada, given_name="Anne", family_name=f"Dupont{wildcard}Roux", mrn="MRN-2")
    response = client.get(f"/api/v1/patients?q={wildcard}".replace("%", "%25"), headers=ada_headers)
    assert response.status_code == 200, response.get_json()
    assert [p["given_name"] for p in response.get_json()["items"]] == ["Anne"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/patients/{patient}", {}),
        ("/api/v1/patients/{patient}/procedures/{procedure}", {}),
        ("/api/v1/patients/{patient}/procedures/{procedure}", {"baseline": {}}),
    ],
    ids=["patient", "procedure", "procedure-empty-baseline"],
)
def test_a_patch_that_changes_nothing_is_a_422_and_writes_no_audit_row(
    client, ada_headers, marcel, path, body
):
    procedure = marcel.current_procedure
    audit_rows = db.session.query(AuditEvent).count()
    response = client.patch(
        path.format(patient=marcel.id, procedure=procedure.id), json=body, headers=ada_headers
    )
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["errors"] == [{"pointer": "/", "detail": "names no field to change"}]
    assert db.session.query(AuditEvent).count() == audit_rows


# --- every schema uses the shared field types --------------------------------------------------


def _schema_classes():
    from marshmallow import class_registry

    import backend

    backend.create_app  # noqa: B018 (every domain's schemas are imported with the app)
    seen = set()
    for entries in class_registry._registry.values():
        for cls in entries:
            if cls.__module__.startswith("backend.") and cls not in seen:
                seen.add(cls)
                yield cls


def _leaf_fields(field):
    yield field
    inner = getattr(field, "inner", None) or getattr(field, "value_field", None)
    if inner is not None:
        yield from _leaf_fields(inner)
    key = getattr(field, "key_field", None)
    if key is not None:
        yield from _leaf_fields(key)


def test_every_schema_uses_the_shared_field_types(app):
    offenders = []
    for cls in _schema_classes():
        for name, declared in cls._declared_fields.items():
            for field in _leaf_fields(declared):
                if isinstance(field, fields.GUARDED) and not isinstance(field, fields.OURS):
                    offenders.append(f"{cls.__module__}.{cls.__name__}.{name}")
    assert not offenders, f"use backend.fields, not marshmallow.fields: {offenders}"
    assert isinstance(ma.fields.Email(), ma.fields.String)  # why Email needs its own check


def test_a_422_has_one_title_whether_the_schema_or_the_service_refused_it(client, ada_headers):
    by_schema = client.get("/api/v1/alerts?limit=0", headers=ada_headers)  # webargs refuses
    by_service = client.get("/api/v1/alerts?cursor=not-a-cursor", headers=ada_headers)
    assert by_schema.status_code == by_service.status_code == 422
    assert [e["parameter"] for e in by_schema.get_json()["errors"]] == ["limit"]
    assert [e["parameter"] for e in by_service.get_json()["errors"]] == ["cursor"]
    assert by_schema.get_json()["title"] == by_service.get_json()["title"]
    assert by_schema.get_json()["title"] == "Unprocessable Content"  # RFC 9110's name
