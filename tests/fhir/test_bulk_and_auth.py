"""Bulk Data export end to end as a system client, SMART Backend Services, search and errors.

Personas: Lyon's record system (care) and research warehouse (research); Marcel, 86, sacroiliac
screws, who consented to research; Josette, 91, who did not.
"""

from __future__ import annotations

import json
from datetime import timedelta

from backend.audit.models import AuditEvent
from backend.extensions import db
from backend.fhir.bulk import expire_exports, run_exports
from backend.fhir.models import BulkExport
from backend.leases import claim_next
from tests.conftest import bearer, login
from tests.factories import checkin_answers, make_patient, make_procedure, record
from tests.fhir.conftest import FHIR
from tests.fhir.helpers import PREFER, path_of, run_export, search_all
from tests.research.conftest import give_research_consent

IDENTITY = ("Marcel", "Dupont", "Josette", "Lefèvre", "MRN-", "1940-03-02", "+3361", "@")


def _cohort(nurse, clock):
    marcel = make_patient(nurse, email="marcel@example.org")
    make_procedure(nurse, marcel)
    josette = make_patient(nurse, given_name="Josette", family_name="Lefèvre")
    make_procedure(nurse, josette)
    record(marcel, clock.now(), answers=checkin_answers(call_request=True, pain_walking=7))
    record(josette, clock.now(), answers=checkin_answers())
    give_research_consent(marcel, clock.now().date())
    return marcel, josette


def test_a_system_exports_its_site_and_the_research_group_carries_no_identity(
    client, nurse_ada, ehr_lyon, warehouse_lyon, clock
):
    marcel, josette = _cohort(nurse_ada, clock)
    client.application.config["RESEARCH_PSEUDONYM_KEY"] = "p" * 40
    care = run_export(client, ehr_lyon.headers(client), "LYON", clock.now())
    assert {p["name"][0]["family"] for p in care["Patient"]} == {"Dupont", "Lefèvre"}
    assert len(care["QuestionnaireResponse"]) == 2 and care["Task"][0]["priority"] == "urgent"

    research = run_export(client, warehouse_lyon.headers(client), "LYON-research", clock.now())
    research.pop("_status_url")
    from backend.research.export import pseudonym

    assert [p["id"] for p in research["Patient"]] == [pseudonym("p" * 40, marcel.id)]
    assert all(p["meta"]["security"][0]["code"] == "PSEUDED" for p in research["Patient"])
    text = json.dumps(research, ensure_ascii=False)
    for identity in (*IDENTITY, str(marcel.id), str(josette.id), marcel.mrn):
        assert identity not in text, identity
    assert "birthDate" not in text and "telecom" not in text and "authored" not in text
    # Every system read is audited like a staff read of the patient.
    reads = (
        db.session.execute(
            db.select(AuditEvent).filter_by(action="patient.read", actor_type="system")
        )
        .scalars()
        .all()
    )
    assert {e.patient_id for e in reads} == {marcel.id, josette.id}
    assert {e.details["access"] for e in reads if e.patient_id == josette.id} == {"care"}


def test_type_and_since_narrow_an_export_and_delete_cancels_it(client, nurse_ada, ehr_lyon, clock):
    marcel, _ = _cohort(nurse_ada, clock)
    since = clock.now()
    clock.advance(timedelta(hours=1))
    record(marcel, clock.now(), answers=checkin_answers())
    headers = ehr_lyon.headers(client)
    query = (
        f"?_type=QuestionnaireResponse,Patient&_since={since.isoformat().replace('+00:00', 'Z')}"
    )
    files = run_export(client, headers, "LYON", clock.now(), query)
    status_url = files.pop("_status_url")
    assert set(files) == {"QuestionnaireResponse"}  # the patients did not change since
    assert len(files["QuestionnaireResponse"]) == 1
    assert client.delete(status_url, headers=headers).status_code == 202
    assert client.get(status_url, headers=headers).status_code == 404
    # Cancelled before the worker runs: it never builds it.
    kick = client.get(f"{FHIR}/Group/LYON/$export", headers={**headers, **PREFER})
    client.delete(path_of(kick.headers["Content-Location"]), headers=headers)
    assert run_exports(clock.now()) == 0


def test_two_workers_never_claim_the_same_export_and_files_expire(
    client, nurse_ada, ehr_lyon, clock
):
    _cohort(nurse_ada, clock)
    headers = ehr_lyon.headers(client)
    kick = client.get(f"{FHIR}/Group/LYON/$export", headers={**headers, **PREFER})
    status_url = path_of(kick.headers["Content-Location"])
    first = claim_next(BulkExport, clock.now())
    assert first is not None and claim_next(BulkExport, clock.now()) is None
    clock.advance(timedelta(seconds=301))  # the first worker died: its lease has passed
    assert run_exports(clock.now()) == 1
    headers = ehr_lyon.headers(client)
    manifest = client.get(status_url, headers=headers).get_json()
    file_url = path_of(manifest["output"][0]["url"])
    assert client.get(file_url, headers=headers).status_code == 200
    assert client.get(file_url, headers={}).status_code == 401
    clock.advance(timedelta(hours=25))
    headers = ehr_lyon.headers(client)
    assert expire_exports(clock.now()) == 1
    assert client.get(file_url, headers=headers).status_code == 404
    assert client.get(status_url, headers=headers).status_code == 404


def test_kick_off_refuses_what_the_bulk_data_ig_refuses(client, nurse_ada, ehr_lyon, ada_headers):
    headers = ehr_lyon.headers(client)
    cases = [
        ("/Group/LYON/$export", {}, 400),  # no Prefer: respond-async
        ("/Group/LYON/$export?_type=Observation", PREFER, 400),
        ("/Group/LYON/$export?_since=yesterday", PREFER, 400),
        ("/Group/LYON/$export?_outputFormat=text/csv", PREFER, 400),
        ("/Group/LYON/$export?_typeFilter=x", PREFER, 400),
        ("/Group/NANTES/$export", PREFER, 404),
        ("/Group/LYON-research/$export", PREFER, 404),  # a care client's group is its site
        ("/Group/LYON/$export", {**PREFER, "Accept": "application/xml"}, 406),
    ]
    for path, extra, status in cases:
        response = client.get(FHIR + path, headers={**headers, **extra})
        assert response.status_code == status, (path, response.get_json())
        assert response.mimetype == "application/fhir+json"
        assert response.get_json()["resourceType"] == "OperationOutcome"
    staff = client.get(f"{FHIR}/Group/LYON/$export", headers={**ada_headers, **PREFER})
    assert staff.status_code == 403


def test_assertions_are_signed_fresh_for_us_and_used_once(client, ehr_lyon, clock):
    now = clock.now()
    assertion = ehr_lyon.assertion(now)
    assert ehr_lyon.token_request(client, assertion).status_code == 200
    replay = ehr_lyon.token_request(client, assertion)
    assert replay.status_code == 401 and "already used" in replay.get_json()["error_description"]
    from tests.fhir.conftest import RSA_KEY, System

    refused = {
        "expired": ehr_lyon.assertion(now, exp=int((now - timedelta(minutes=2)).timestamp())),
        "too long": ehr_lyon.assertion(now, exp=int((now + timedelta(hours=1)).timestamp())),
        "other audience": ehr_lyon.assertion(now, aud="https://elsewhere.example/token"),
        "other key": System("ehr-lyon", RSA_KEY, "ehr-lyon-key", "RS384").assertion(now),
        "sub differs": ehr_lyon.assertion(now, sub="someone-else"),
        "HS256": __import__("jwt").encode(
            {"iss": "ehr-lyon", "sub": "ehr-lyon", "aud": "x", "exp": 1, "jti": "j"}, "k" * 32
        ),
    }
    for why, bad in refused.items():
        response = ehr_lyon.token_request(client, bad)
        assert response.status_code == 401, why
        assert response.get_json()["error"] == "invalid_client", why
    scope = ehr_lyon.token_request(client, scope="system/*.write")
    assert scope.status_code == 400 and scope.get_json()["error"] == "invalid_scope"


def test_system_tokens_are_short_lived_and_end_with_their_client(client, runner, ehr_lyon, clock):
    headers = ehr_lyon.headers(client)
    assert client.get(f"{FHIR}/Patient", headers=headers).status_code == 200
    clock.advance(timedelta(seconds=301))
    assert client.get(f"{FHIR}/Patient", headers=headers).status_code == 401
    headers = ehr_lyon.headers(client)
    assert runner.invoke(args=["fhir", "disable-client", "ehr-lyon"]).exit_code == 0
    response = client.get(f"{FHIR}/Patient", headers=headers)
    assert response.status_code == 401
    assert response.get_json()["issue"][0]["code"] == "login"


def test_register_client_refuses_a_private_key(runner, tmp_path, nurse_ada):
    import jwt
    from cryptography.hazmat.primitives.asymmetric import ec

    private = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(ec.generate_private_key(ec.SECP384R1())))
    path = tmp_path / "private.json"
    path.write_text(json.dumps({**private, "kid": "k"}))
    result = runner.invoke(
        args=["fhir", "register-client", "--name", "x", "--site", "LYON", "--access", "care",
              "--jwks", str(path)]
    )  # fmt: skip
    assert result.exit_code != 0 and "private key" in result.output


def test_search_pages_by_keyset_and_every_error_is_an_operation_outcome(
    client, nurse_ada, ehr_lyon, warehouse_lyon, clock
):
    marcel, _ = _cohort(nurse_ada, clock)
    for _ in range(3):
        clock.advance(timedelta(hours=1))
        record(marcel, clock.now(), answers=checkin_answers())
    headers = ehr_lyon.headers(client)
    page = client.get(f"{FHIR}/QuestionnaireResponse?patient=Patient/{marcel.id}&_count=1",
                      headers=headers)  # fmt: skip
    assert page.mimetype == "application/fhir+json"
    next_url = next(lk["url"] for lk in page.get_json()["link"] if lk["relation"] == "next")
    assert f"patient=Patient%2F{marcel.id}" in next_url and "_cursor=" in next_url
    every = search_all(client, headers, f"QuestionnaireResponse?patient={marcel.id}&_count=1")
    assert len({r["id"] for r in every}) == 4
    assert all(r["questionnaire"].endswith("/Questionnaire/checkin|1") for r in every)
    mrn = client.get(f"{FHIR}/Patient?identifier={marcel.mrn}", headers=headers).get_json()
    assert [e["resource"]["id"] for e in mrn["entry"]] == [str(marcel.id)]
    reads = (
        db.session.execute(
            db.select(AuditEvent).filter_by(action="fhir.read", patient_id=marcel.id)
        )
        .scalars()
        .all()
    )
    assert reads and all(e.actor_type == "system" for e in reads)
    errors = [
        (f"{FHIR}/Patient?name=Dupont", headers, 400),
        (f"{FHIR}/Patient?_count=0", headers, 400),
        (f"{FHIR}/Patient?_lastUpdated=2026-01-01", headers, 400),
        (f"{FHIR}/Observation", headers, 404),
        (f"{FHIR}/Patient/not-an-id", headers, 404),
        (f"{FHIR}/Patient", {}, 401),
        (f"{FHIR}/Patient", {**headers, "Accept": "application/xml"}, 406),
        (f"{FHIR}/Patient", warehouse_lyon.headers(client), 403),
    ]
    for url, h, status in errors:
        response = client.get(url, headers=h)
        assert response.status_code == status, (url, response.get_data(as_text=True))
        assert response.get_json()["resourceType"] == "OperationOutcome", url
    lenient = client.get(
        f"{FHIR}/Patient?name=x", headers={**headers, "Prefer": "handling=lenient"}
    )
    assert lenient.status_code == 200
    post = client.post(f"{FHIR}/Patient/_search", json={"_id": "x"}, headers=headers)
    assert post.status_code == 415 and post.get_json()["resourceType"] == "OperationOutcome"
    write = client.post(f"{FHIR}/Patient", json={"resourceType": "Patient"}, headers=headers)
    assert write.status_code == 405


def test_the_capability_statement_lists_exactly_what_answers(client, nurse_ada, ada_headers):
    from fhir.resources.R4B.capabilitystatement import CapabilityStatement

    statement = client.get(f"{FHIR}/metadata").get_json()
    CapabilityStatement.model_validate(statement)
    resources = statement["rest"][0]["resource"]
    for resource in resources:
        if resource["type"] == "Group":
            continue
        response = client.get(f"{FHIR}/{resource['type']}", headers=ada_headers)
        assert response.status_code == 200, resource["type"]
        for param in resource["searchParam"]:
            probe = {"_id": "x", "_lastUpdated": "gt2020-01-01T00:00:00Z"}.get(param["name"], "x")
            answer = client.get(f"{FHIR}/{resource['type']}?{param['name']}={probe}",
                                headers=ada_headers)  # fmt: skip
            assert answer.status_code == 200, (resource["type"], param["name"])
    smart = client.get(f"{FHIR}/.well-known/smart-configuration").get_json()
    assert smart["token_endpoint"] == "http://localhost/fhir/auth/token"
    # A nurse reads her site through FHIR with her API token; a phone does not.
    assert (
        client.get(
            f"{FHIR}/Patient", headers=bearer(login(client, nurse_ada)["access_token"])
        ).status_code
        == 200
    )
