"""Who can reach what: every patient-scoped endpoint against every kind of caller.

The matrix is built from the application's URL map: a new /api endpoint without an entry here
fails ``test_every_api_endpoint_has_an_access_rule``. For each endpoint, only the right principals
succeed; the others get 401 (no or expired token) or 404 (learn nothing, not even existence).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from backend.alerts.models import Alert
from backend.extensions import db
from backend.patients.models import Device
from backend.questionnaires.models import Assignment
from tests.conftest import bearer, login
from tests.factories import checkin_answers, make_patient, make_procedure, record

PUBLIC = "public"
STAFF_OF_SITE = "staff_of_site"  # staff of the patient's site only
PATIENT_SELF = "patient_self"  # the patient's own token; answers about the caller only
ANY_PRINCIPAL = "any_principal"  # any valid token (instruments)
ADMIN = "admin"
ANY_STAFF = "any_staff"  # any staff member, answering within their own site only
RESEARCH = "research"  # physicians and admins, within their own site; nurses 403


@dataclass
class World:
    marcel: Any
    procedure: Any
    day1: Any
    alert: Any
    device: Any  # Marcel's first phone, whose tokens have expired
    now: Any
    callers: dict[str, dict[str, str]]
    note: Any  # a handover note of Lyon's night shift


Body = Callable[[World], dict[str, Any] | None]


def procedure_body(world: World) -> dict[str, Any]:
    return {
        "kind": "cementoplasty",
        "location": "vertebra",
        "etiology": "osteoporotic",
        "performed_on": "2026-11-20",
        "discharged_on": "2026-11-22",
        "baseline": {"pain_rest": 5, "pain_walking": 7},
    }


def response_body(world: World) -> dict[str, Any]:
    return {
        "assignment_id": None,
        "instrument": "checkin",
        "version": 1,
        "answered_at": world.now.isoformat(),
        "answers": checkin_answers(),
    }


def patient_response_body(world: World) -> dict[str, Any]:
    return {**response_body(world), "source": "patient"}


def status_body(world: World) -> dict[str, Any]:
    """A pause, or its end: each allowed caller in turn changes something."""
    paused = world.marcel.status == "paused"
    return {"status": "active" if paused else "paused", "reason": "access matrix"}


def consent_body(world: World) -> dict[str, Any]:
    """Research consent given, or withdrawn when it is: each allowed caller in turn records."""
    from backend.patients.lifecycle import current_consent

    latest = current_consent(world.marcel, "research")
    return {
        "purpose": "research",
        "decision": "withdrawn" if latest and latest.decision == "given" else "given",
        "decided_on": world.now.date().isoformat(),
        "method": "paper",
    }


RULES: dict[tuple[str, str], tuple[str, Body | None]] = {
    ("GET", "/api/v1/health"): (PUBLIC, None),
    ("POST", "/api/v1/auth/login"): (PUBLIC, None),
    ("POST", "/api/v1/auth/refresh"): (PUBLIC, None),
    ("POST", "/api/v1/auth/logout"): (PUBLIC, None),
    ("POST", "/api/v1/enrollment/claim"): (PUBLIC, None),
    ("GET", "/api/v1/openapi.json"): (PUBLIC, None),
    ("GET", "/api/v1/users"): (ADMIN, None),
    ("POST", "/api/v1/users"): (ADMIN, None),
    ("GET", "/api/v1/users/<uuid:user_id>"): (ADMIN, None),
    ("GET", "/api/v1/patients"): (ANY_STAFF, None),
    ("POST", "/api/v1/patients"): (ANY_STAFF, None),
    ("GET", "/api/v1/patients/<uuid:patient_id>"): (STAFF_OF_SITE, None),
    ("PATCH", "/api/v1/patients/<uuid:patient_id>"): (
        STAFF_OF_SITE,
        lambda w: {"phone": "+33699999999"},
    ),
    ("POST", "/api/v1/patients/<uuid:patient_id>/procedures"): (STAFF_OF_SITE, procedure_body),
    ("PATCH", "/api/v1/patients/<uuid:patient_id>/procedures/<uuid:procedure_id>"): (
        STAFF_OF_SITE,
        lambda w: {"study_arm": "A"},
    ),
    ("POST", "/api/v1/patients/<uuid:patient_id>/enrollment-codes"): (STAFF_OF_SITE, None),
    ("POST", "/api/v1/patients/<uuid:patient_id>/responses"): (STAFF_OF_SITE, response_body),
    ("GET", "/api/v1/patients/<uuid:patient_id>/timeline"): (STAFF_OF_SITE, None),
    ("GET", "/api/v1/patients/<uuid:patient_id>/devices"): (STAFF_OF_SITE, None),
    ("POST", "/api/v1/patients/<uuid:patient_id>/devices/<uuid:device_id>/revoke"): (
        STAFF_OF_SITE,
        None,
    ),
    ("GET", "/api/v1/patients/<uuid:patient_id>/status"): (STAFF_OF_SITE, None),
    ("POST", "/api/v1/patients/<uuid:patient_id>/status"): (STAFF_OF_SITE, status_body),
    ("GET", "/api/v1/patients/<uuid:patient_id>/consents"): (STAFF_OF_SITE, None),
    ("POST", "/api/v1/patients/<uuid:patient_id>/consents"): (STAFF_OF_SITE, consent_body),
    ("GET", "/api/v1/me"): (PATIENT_SELF, None),
    ("GET", "/api/v1/me/assignments"): (PATIENT_SELF, None),
    ("GET", "/api/v1/me/responses"): (PATIENT_SELF, None),
    ("POST", "/api/v1/me/responses"): (PATIENT_SELF, patient_response_body),
    ("PUT", "/api/v1/me/device"): (PATIENT_SELF, lambda w: {"platform": "ios", "push_token": "t"}),
    ("GET", "/api/v1/alerts"): (ANY_STAFF, None),
    ("GET", "/api/v1/alerts/<uuid:alert_id>"): (STAFF_OF_SITE, None),
    ("POST", "/api/v1/alerts/<uuid:alert_id>/acknowledge"): (STAFF_OF_SITE, None),
    ("POST", "/api/v1/alerts/<uuid:alert_id>/notes"): (
        STAFF_OF_SITE,
        lambda w: {"text": "Called."},
    ),
    ("POST", "/api/v1/alerts/<uuid:alert_id>/resolve"): (
        STAFF_OF_SITE,
        lambda w: {"outcome": "advice_given"},
    ),
    # The nurse workflow (docs/nurse-workflow.md). Hand back first (no owner yet: nothing to do),
    # then take, snooze, renegotiate, call; acknowledge and resolve come last (matrix_order).
    ("DELETE", "/api/v1/alerts/<uuid:alert_id>/owner"): (STAFF_OF_SITE, None),
    ("POST", "/api/v1/alerts/<uuid:alert_id>/owner"): (STAFF_OF_SITE, None),
    ("POST", "/api/v1/alerts/<uuid:alert_id>/snooze"): (
        STAFF_OF_SITE,
        lambda w: {"until": (w.now + timedelta(hours=2)).isoformat(), "reason": "matrix"},
    ),
    ("POST", "/api/v1/alerts/<uuid:alert_id>/target"): (
        STAFF_OF_SITE,
        lambda w: {"due_at": (w.now + timedelta(hours=30)).isoformat(), "reason": "matrix"},
    ),
    ("POST", "/api/v1/alerts/<uuid:alert_id>/calls"): (
        STAFF_OF_SITE,
        lambda w: {"result": "no_answer"},
    ),
    # The ids of the body are the caller's to choose: another site's alert is a 404 naming it.
    ("POST", "/api/v1/alerts/acknowledgements"): (
        STAFF_OF_SITE,
        lambda w: {"alert_ids": [str(w.alert.id)], "comment": "Seen in the matrix."},
    ),
    ("GET", "/api/v1/handover"): (ANY_STAFF, None),
    ("POST", "/api/v1/handover/notes"): (ANY_STAFF, lambda w: {"text": "Quiet night."}),
    ("POST", "/api/v1/handover/notes/<uuid:note_id>/read"): (STAFF_OF_SITE, None),
    ("GET", "/api/v1/reports/team"): (ANY_STAFF, None),
    ("GET", "/api/v1/reports/rules"): (ANY_STAFF, None),
    ("GET", "/api/v1/reports/rules/versions"): (ANY_STAFF, None),
    ("PUT", "/api/v1/reports/rules/versions"): (
        ADMIN,
        lambda w: {"active_version": 1, "candidate_version": 2, "reason": "matrix"},
    ),
    ("GET", "/api/v1/instruments/<key:key>"): (ANY_PRINCIPAL, None),
    (
        "GET",
        "/api/v1/instruments/<key:key>/versions/<int(min=1, max=2147483647):version>",
    ): (ANY_PRINCIPAL, None),
    ("GET", "/api/v1/research/outcomes"): (RESEARCH, None),
    ("POST", "/api/v1/research/exports"): (RESEARCH, None),
    ("GET", "/api/v1/research/exports/<uuid:export_id>"): (RESEARCH, None),
    ("GET", "/api/v1/research/exports/<uuid:export_id>/files/<string:name>"): (RESEARCH, None),
    ("POST", "/api/v1/research/studies"): (
        RESEARCH,
        lambda w: {"key": f"s-{uuid.uuid4().hex[:8]}", "title": "T", "arms": ["a", "b"]},
    ),
    ("GET", "/api/v1/research/studies/<uuid:study_id>"): (RESEARCH, None),
    ("POST", "/api/v1/research/studies/<uuid:study_id>/randomisations"): (
        RESEARCH,
        lambda w: {"patient_id": str(w.marcel.id)},
    ),
}

# Endpoints added by later domains register their rules here (alerts, reports, pages).
EXTRA_RULES: dict[tuple[str, str], tuple[str, Body | None]] = {}


def api_endpoints(app) -> list[tuple[str, str]]:
    endpoints = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/") or rule.endpoint.startswith("api-docs"):
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            endpoints.append((method, rule.rule))
    return endpoints


def all_rules() -> dict[tuple[str, str], tuple[str, Body | None]]:
    return {**RULES, **EXTRA_RULES}


# Changes of an alert's status run last, so that the workflow's actions (take, snooze,
# renegotiate, call) meet the alert still open, as a nurse would.
LAST = ("/acknowledge", "/resolve", "/acknowledgements")


def matrix_order(item: tuple[tuple[str, str], Any]) -> tuple[bool, str, str]:
    (method, path), _ = item
    return (path.endswith(LAST), path, method)


def test_every_api_endpoint_has_an_access_rule(app):
    missing = [e for e in api_endpoints(app) if e not in all_rules()]
    assert not missing, f"add these endpoints to the access matrix: {missing}"


def enroll(client, headers, patient) -> str:
    code = client.post(
        f"/api/v1/patients/{patient.id}/enrollment-codes", headers=headers
    ).get_json()["code"]
    claim = client.post(
        "/api/v1/enrollment/claim", json={"code": code, "device": {"platform": "android"}}
    )
    return claim.get_json()["access_token"]


@pytest.fixture
def world(app, client, nurse_ada, nurse_noe, clock) -> World:
    marcel = make_patient(nurse_ada)
    procedure = make_procedure(nurse_ada, marcel)
    josette = make_patient(nurse_ada, given_name="Josette", family_name="Lefèvre")
    make_procedure(nurse_ada, josette)
    day1 = db.session.execute(
        db.select(Assignment).filter_by(patient_id=marcel.id, day=1)
    ).scalar_one()
    record(marcel, clock.now(), answers=checkin_answers(call_request=True))
    alert = db.session.execute(db.select(Alert).filter_by(patient_id=marcel.id)).scalar_one()
    ada = bearer(login(client, nurse_ada)["access_token"])
    expired_patient = enroll(client, ada, marcel)
    device = db.session.execute(db.select(Device).filter_by(patient_id=marcel.id)).scalar_one()
    clock.advance(timedelta(minutes=16))  # the first tokens have expired
    ada = bearer(login(client, nurse_ada)["access_token"])
    callers = {
        "own_patient": bearer(enroll(client, ada, marcel)),
        "other_patient": bearer(enroll(client, ada, josette)),
        "nurse_same_site": ada,
        "nurse_other_site": bearer(login(client, nurse_noe)["access_token"]),
        "expired_token": bearer(expired_patient),
        "no_token": {},
    }
    from backend.alerts import workflow
    from tests.conftest import make_staff
    from tests.factories import principal_of

    night = make_staff("bea@lyon.example", "nurse", "LYON")
    note = workflow.write_note(principal_of(night), "Marcel asked to be called.", clock.now())
    db.session.commit()
    return World(marcel, procedure, day1, alert, device, clock.now(), callers, note)


def expected(access: str, caller: str) -> set[int] | str:
    """'ok' for success, else the set of acceptable refusal codes."""
    if caller in {"expired_token", "no_token"}:
        return {401}
    if access == STAFF_OF_SITE:
        return "ok" if caller == "nurse_same_site" else {404}
    if access == PATIENT_SELF:
        return "ok" if caller in {"own_patient", "other_patient"} else {404}
    if access == ANY_PRINCIPAL:
        return "ok"
    if access == ANY_STAFF:
        return "ok" if caller.startswith("nurse") else {404}
    raise AssertionError(access)


CALLERS = [
    "own_patient",
    "other_patient",
    "nurse_same_site",
    "nurse_other_site",
    "expired_token",
    "no_token",
]


def concrete(path: str, world: World) -> str:
    path = (
        path.replace("<uuid:patient_id>", str(world.marcel.id))
        .replace("<uuid:procedure_id>", str(world.procedure.id))
        .replace("<uuid:alert_id>", str(world.alert.id))
        .replace("<uuid:device_id>", str(world.device.id))
        .replace("<uuid:note_id>", str(world.note.id))
    )
    return re.sub(r"<[^>]*:version>", "1", re.sub(r"<[^>]*:key>", "checkin", path))


@pytest.mark.parametrize("caller", CALLERS)
def test_patient_data_is_reachable_only_by_the_right_principals(client, world, caller):
    for (method, path), (access, body) in sorted(all_rules().items(), key=matrix_order):
        if access not in {STAFF_OF_SITE, PATIENT_SELF, ANY_PRINCIPAL, ANY_STAFF}:
            continue
        headers = {**world.callers[caller]}
        if path.endswith("/responses") and method == "POST":  # the phone's and the nurse's
            headers["Idempotency-Key"] = str(uuid.uuid4())
        payload = body(world) if body else None
        if path == "/api/v1/patients" and method == "POST":
            payload = {
                "mrn": f"X-{uuid.uuid4().hex[:6]}",
                "given_name": "A",
                "family_name": "B",
                "birth_date": "1940-01-01",
                "locale": "fr",
                "timezone": "Europe/Paris",
            }
        response = client.open(concrete(path, world), method=method, json=payload, headers=headers)
        want = expected(access, caller)
        text = response.get_data(as_text=True)
        if want == "ok":
            assert response.status_code < 400, (method, path, caller, response.get_json())
            if (access == PATIENT_SELF and caller == "other_patient") or (
                access == ANY_STAFF and caller == "nurse_other_site"
            ):
                assert str(world.marcel.id) not in text, (method, path)
                assert "Marcel" not in text and "Dupont" not in text, (method, path)
        else:
            assert response.status_code in want, (method, path, caller, response.status_code)
            assert str(world.marcel.id) not in text and "Dupont" not in text
        # Another site's nurse sees the same 404 as for an id that does not exist.
        if caller == "nurse_other_site" and (
            "<uuid:patient_id>" in path or "alert_id" in path or path.endswith("acknowledgements")
        ):
            assert response.get_json()["detail"] == "The resource does not exist."


SMUGGLED = {
    "patient_id": str(uuid.uuid4()),
    "status": "resolved",
    "role": "admin",
    "site": "NANTES",
}


def table_counts() -> dict[str, int]:
    return {
        table.name: db.session.execute(sa.select(sa.func.count()).select_from(table)).scalar()
        for table in db.metadata.sorted_tables
        if table.name != "audit_events"  # refusals may be audited; nothing else may change
    }


def test_extra_fields_on_any_write_are_refused_and_nothing_changes(client, world):
    writes = [
        (m, p, a, b)
        for (m, p), (a, b) in sorted(all_rules().items())
        if m in {"POST", "PUT", "PATCH"} and a in {STAFF_OF_SITE, PATIENT_SELF, ANY_STAFF}
    ]
    assert len(writes) >= 10
    for method, path, access, body in writes:
        caller = "own_patient" if access == PATIENT_SELF else "nurse_same_site"
        headers = {**world.callers[caller], "Idempotency-Key": str(uuid.uuid4())}
        payload = {**(body(world) if body else {}), **SMUGGLED}
        before = table_counts()
        response = client.open(concrete(path, world), method=method, json=payload, headers=headers)
        assert response.status_code == 422, (method, path, response.status_code)
        refused = {e.get("pointer") for e in response.get_json()["errors"]}
        assert {"/patient_id", "/status", "/role", "/site"} <= refused, (path, refused)
        db.session.expire_all()
        assert table_counts() == before, (method, path)


def research_rules() -> list[tuple[str, str, Body | None]]:
    return [(m, p, b) for (m, p), (a, b) in sorted(all_rules().items()) if a == RESEARCH]


def test_research_is_for_physicians_and_admins_of_the_site_and_refused_to_others(
    client, world, physician_leon, tmp_path
):
    from backend.research.jobs import run_exports
    from tests.conftest import make_staff

    physician = bearer(login(client, physician_leon)["access_token"])
    admin = bearer(login(client, make_staff("iris@lyon.example", "admin", "LYON"))["access_token"])
    client.application.config["RESEARCH_PSEUDONYM_KEY"] = "k" * 40
    client.application.config["RESEARCH_EXPORT_DIR"] = str(tmp_path)
    export_id = client.post("/api/v1/research/exports", headers=physician).get_json()["id"]
    run_exports(world.now)
    study_id = client.post(
        "/api/v1/research/studies",
        json={"key": "s", "title": "T", "arms": ["a", "b"]},
        headers=physician,
    ).get_json()["id"]
    from tests.research.conftest import give_research_consent

    give_research_consent(world.marcel, world.now.date())
    rules = research_rules()
    assert rules
    for method, path, body in rules:
        url = (
            concrete(path, world)
            .replace("<uuid:export_id>", export_id)
            .replace("<string:name>", "patients.csv")
            .replace("<uuid:study_id>", study_id)
        )
        for headers, want in [
            (physician, "ok"),
            (admin, "ok"),
            (world.callers["nurse_same_site"], {403}),
            (world.callers["own_patient"], {404}),
            (world.callers["expired_token"], {401}),
            ({}, {401}),
        ]:
            payload = body(world) if body else None  # each call its own (a study key is unique)
            response = client.open(url, method=method, json=payload, headers=headers)
            if want == "ok":
                assert response.status_code < 400, (method, path, response.get_json())
            else:
                assert response.status_code in want, (method, path, response.status_code)
            assert "Dupont" not in response.get_data(as_text=True)


# --- FHIR (/fhir/R4): the same isolation, with OperationOutcome refusals ------------------------

FHIR_PUBLIC = "public"
FHIR_READ = "fhir_read"  # staff of the site (care) or a system client of the site
FHIR_SYSTEM = "fhir_system"  # registered system clients only (Bulk Data, their own exports)
FHIR_RULES: dict[tuple[str, str], str] = {
    ("GET", "/fhir/R4/metadata"): FHIR_PUBLIC,
    ("GET", "/fhir/R4/.well-known/smart-configuration"): FHIR_PUBLIC,
    ("POST", "/fhir/auth/token"): FHIR_PUBLIC,  # the signed assertion is the credential
    ("GET", "/fhir/R4/<string:name>"): FHIR_READ,
    ("POST", "/fhir/R4/<string:name>/_search"): FHIR_READ,
    ("GET", "/fhir/R4/<string:name>/<string:resource_id>"): FHIR_READ,
    ("GET", "/fhir/R4/Group/<string:group>/$export"): FHIR_SYSTEM,
    ("GET", "/fhir/R4/bulkstatus/<uuid:export_id>"): FHIR_SYSTEM,
    ("DELETE", "/fhir/R4/bulkstatus/<uuid:export_id>"): FHIR_SYSTEM,
    ("GET", "/fhir/R4/bulkfiles/<uuid:export_id>/<string:name>.ndjson"): FHIR_SYSTEM,
    # Everything else under /fhir/R4 answers 404 or 405 (read-only) as an OperationOutcome.
    ("GET", "/fhir/R4/<path:rest>"): FHIR_PUBLIC,
    ("POST", "/fhir/R4/<path:rest>"): FHIR_PUBLIC,
    ("PUT", "/fhir/R4/<path:rest>"): FHIR_PUBLIC,
    ("PATCH", "/fhir/R4/<path:rest>"): FHIR_PUBLIC,
    ("DELETE", "/fhir/R4/<path:rest>"): FHIR_PUBLIC,
    ("GET", "/fhir/R4"): FHIR_PUBLIC,
    ("POST", "/fhir/R4"): FHIR_PUBLIC,
    ("PUT", "/fhir/R4"): FHIR_PUBLIC,
    ("PATCH", "/fhir/R4"): FHIR_PUBLIC,
    ("DELETE", "/fhir/R4"): FHIR_PUBLIC,
}


def fhir_endpoints(app) -> list[tuple[str, str]]:
    return [
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/fhir")
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"})
    ]


def test_every_fhir_endpoint_has_an_access_rule(app):
    missing = [e for e in fhir_endpoints(app) if e not in FHIR_RULES]
    assert not missing, f"add these FHIR endpoints to FHIR_RULES: {missing}"


def _marcel_resources(world: World) -> dict[str, str]:
    from backend.questionnaires.models import Response

    response = (
        db.session.execute(db.select(Response).filter_by(patient_id=world.marcel.id))
        .scalars()
        .first()
    )
    consent = next(c for c in world.marcel.consents if c.decision == "given")
    return {
        "Patient": str(world.marcel.id),
        "Procedure": str(world.procedure.id),
        "QuestionnaireResponse": str(response.id),
        "ClinicalImpression": str(world.alert.id),
        "Task": str(world.alert.id),
        "Consent": str(consent.id),
    }


@pytest.mark.parametrize("caller", CALLERS)
def test_fhir_reads_reach_only_the_site_of_the_caller(client, world, caller):
    want = {
        "nurse_same_site": "ok",
        "nurse_other_site": 404,
        "own_patient": 403,
        "other_patient": 403,
        "expired_token": 401,
        "no_token": 401,
    }[caller]
    headers = world.callers[caller]
    for name, resource_id in _marcel_resources(world).items():
        read = client.get(f"/fhir/R4/{name}/{resource_id}", headers=headers)
        by_patient = client.get(f"/fhir/R4/{name}?patient={world.marcel.id}", headers=headers)
        if name == "Patient":
            by_patient = client.get(f"/fhir/R4/Patient?_id={world.marcel.id}", headers=headers)
        assert read.mimetype == "application/fhir+json"
        if want == "ok":
            assert read.status_code == 200, (name, read.get_json())
            assert by_patient.get_json()["entry"], name
            continue
        assert read.status_code == want, (name, caller, read.status_code)
        assert read.get_json()["resourceType"] == "OperationOutcome"
        if caller == "nurse_other_site":  # another site's resource is one that does not exist
            assert by_patient.status_code == 200 and not by_patient.get_json().get("entry")
        else:
            assert by_patient.status_code == want
        for text in (read.get_data(as_text=True), by_patient.get_data(as_text=True)):
            assert "Dupont" not in text and "Marcel" not in text
