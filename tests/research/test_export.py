"""The pseudonymised export round-trips: read back with pyarrow, codebook complete, no
identity anywhere, one outcome recomputed from responses.csv equal to the report's."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from datetime import UTC, date, datetime, timedelta

import pyarrow.parquet as pq
import pytest

from backend.audit.models import AuditEvent
from backend.extensions import db
from backend.questionnaires.models import Assignment
from backend.research.export import pseudonym
from backend.research.models import ResearchExport
from backend.schedule.worker import run_pass
from tests.factories import followup_answers, make_patient, make_procedure, record
from tests.research.conftest import give_research_consent

KEY = "research-key-kept-apart-from-every-other-secret-0123"
COMMENT = "Appelez ma fille Josiane Dupont au 06 11 22 33 44"


@pytest.fixture
def app_config(tmp_path):
    return {"RESEARCH_PSEUDONYM_KEY": KEY, "RESEARCH_EXPORT_DIR": str(tmp_path / "exports")}


@pytest.fixture
def gisele(nurse_ada):
    """Gisèle, who wrote a comment naming her daughter and her phone in her month-1 answer."""
    registered = datetime(2026, 10, 1, 14, 0, tzinfo=UTC)  # at discharge: her schedule is planned
    patient = make_patient(
        nurse_ada, now=registered, given_name="Gisèle", email="gisele.dupont@example.org"
    )
    make_procedure(
        nurse_ada,
        patient,
        now=registered,
        kind="cementoplasty",
        location="sacrum",
        performed_on=date(2026, 9, 30),
        discharged_on=date(2026, 10, 1),
        baseline={"pain_rest": 5, "pain_walking": 8},
    )
    give_research_consent(patient, date(2026, 9, 29))
    day30 = db.session.execute(
        db.select(Assignment).filter_by(patient_id=patient.id, day=30)
    ).scalar_one()
    record(
        patient,
        day30.opens_at + timedelta(hours=2),
        assignment_id=day30.id,
        instrument="followup",
        answers=followup_answers(comment=COMMENT, pain_walking=6),
    )
    return patient


def export_now(client, headers, clock):
    accepted = client.post("/api/v1/research/exports", headers=headers)
    assert accepted.status_code == 202, accepted.get_json()
    job = accepted.get_json()
    assert job["status"] == "pending" and job["files"] == []
    # The scheduler's own pass builds it (the job registry), never the request.
    assert run_pass()["run_exports"] == 1
    done = client.get(f"/api/v1/research/exports/{job['id']}", headers=headers).get_json()
    assert done["status"] == "done", done
    return done


def download(client, headers, done, name) -> bytes:
    url = next(f["url"] for f in done["files"] if f["name"] == name)
    response = client.get(url, headers=headers)
    assert response.status_code == 200
    return response.data


def read_csv(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode())))


def test_the_export_round_trips_without_identities(client, cohort, gisele, leon_headers, clock):
    done = export_now(client, leon_headers, clock)
    names = {f["name"] for f in done["files"]}
    tables = ("patients", "responses", "timepoints", "events")
    assert names == {f"{t}.{ext}" for t in tables for ext in ("csv", "parquet")} | {
        "codebook.csv",
        "manifest.json",
    }
    files = {name: download(client, leon_headers, done, name) for name in names}
    manifest = json.loads(files["manifest.json"])
    assert manifest["key_id"] == hashlib.sha256(KEY.encode()).hexdigest()[:8]
    assert manifest["requested_by_role"] == "physician"
    for name, digest in manifest["files"].items():
        assert hashlib.sha256(files[name]).hexdigest() == digest, name

    codebook = {(r["file"], r["name"]) for r in read_csv(files["codebook.csv"])}
    for table in tables:
        rows = read_csv(files[f"{table}.csv"])
        parquet = pq.read_table(io.BytesIO(files[f"{table}.parquet"]))
        assert parquet.num_rows == len(rows) == manifest["row_counts"][table]
        assert parquet.column_names == list(rows[0]) if rows else True
        assert {(f"{table}.csv", c) for c in parquet.column_names} <= codebook

    patients = read_csv(files["patients.csv"])
    assert len(patients) == 17  # the 16 of the cohort and Gisèle
    assert pseudonym(KEY, gisele.id) in {p["pseudonym"] for p in patients}
    assert all(len(p["pseudonym"]) == 16 for p in patients)

    everything = "\n".join(
        [data.decode() for name, data in files.items() if not name.endswith(".parquet")]
        + [
            str(pq.read_table(io.BytesIO(data)).to_pylist())
            for name, data in files.items()
            if name.endswith(".parquet")
        ]
    )
    for identity in (
        "Gisèle",
        "Marcel",
        "Dupont",
        "Josiane",
        gisele.mrn,
        "1940-03-02",
        "+33612345678",
        "06 11 22 33 44",
        "gisele.dupont@example.org",
        str(gisele.id),
        "2026-10-31",
        "leon@lyon.example",
    ):
        assert identity not in everything, identity


def test_an_outcome_recomputed_from_responses_csv_matches_the_report(
    client, cohort, leon_headers, clock
):
    done = export_now(client, leon_headers, clock)
    patients = read_csv(download(client, leon_headers, done, "patients.csv"))
    responses = read_csv(download(client, leon_headers, done, "responses.csv"))
    kind = {p["pseudonym"]: p["kind"] for p in patients}
    baseline = {p["pseudonym"]: int(p["baseline_pain_walking"]) for p in patients}
    # Month 1 (days 21-45, closest to day 30) walking pain change, cement plus screws.
    best: dict[str, tuple[int, int]] = {}
    for r in responses:
        day = int(r["day"])
        if r["item"] != "pain_walking" or not 21 <= day <= 45:
            continue
        if kind[r["pseudonym"]] != "screw_fixation_cementoplasty":
            continue
        if r["pseudonym"] not in best or (abs(day - 30), day) < (
            abs(best[r["pseudonym"]][0] - 30),
            best[r["pseudonym"]][0],
        ):
            best[r["pseudonym"]] = (day, int(r["value"]))
    changes = [value - baseline[p] for p, (_, value) in best.items()]
    mean_change = sum(changes) / len(changes)

    report = client.get("/api/v1/research/outcomes?group=kind", headers=leon_headers).get_json()
    group = next(g for g in report["groups"] if g["value"] == "screw_fixation_cementoplasty")
    month_1 = next(t for t in group["time_points"] if t["time_point"] == "month_1")
    assert month_1["outcomes"]["pain_walking"]["change"]["n"] == len(changes) == 5
    assert month_1["outcomes"]["pain_walking"]["change"]["mean"] == pytest.approx(mean_change)


def test_no_key_no_export_and_the_refusal_says_why(client, leon_headers, app):
    app.config["RESEARCH_PSEUDONYM_KEY"] = None
    response = client.post("/api/v1/research/exports", headers=leon_headers)
    assert response.status_code == 409
    assert "RESEARCH_PSEUDONYM_KEY" in response.get_json()["detail"]
    assert db.session.execute(db.select(ResearchExport)).first() is None


def test_the_command_line_writes_the_same_files_and_refuses_without_the_key(
    app, runner, cohort, tmp_path
):
    out = tmp_path / "cli"
    result = runner.invoke(args=["research", "export", "--out", str(out), "--site", "LYON"])
    assert result.exit_code == 0, result.output
    assert "patients=16" in result.output
    assert (out / "manifest.json").exists() and (out / "timepoints.parquet").exists()
    app.config["RESEARCH_PSEUDONYM_KEY"] = None
    refused = runner.invoke(
        args=["research", "export", "--out", str(tmp_path / "b"), "--site", "LYON"]
    )
    assert refused.exit_code != 0 and "RESEARCH_PSEUDONYM_KEY" in refused.output


def test_exports_are_audited_and_scoped_to_the_site(
    client, cohort, leon_headers, physician_nadia, clock
):
    from tests.conftest import bearer, login

    done = export_now(client, leon_headers, clock)
    nadia = bearer(login(client, physician_nadia)["access_token"])
    assert client.get(f"/api/v1/research/exports/{done['id']}", headers=nadia).status_code == 404
    download(client, leon_headers, done, "patients.csv")
    actions = {
        e.action
        for e in db.session.execute(db.select(AuditEvent)).scalars()
        if e.action.startswith("research.export")
    }
    assert actions == {
        "research.export.requested",
        "research.export.completed",
        "research.export.downloaded",
    }


def test_a_second_scheduler_does_not_build_a_claimed_export_until_its_lease_expires(
    client, leon_headers, clock, app
):
    from backend.leases import claim_next
    from backend.research.models import ResearchExport

    client.post("/api/v1/research/exports", headers=leon_headers)
    first = claim_next(ResearchExport, clock.now())
    assert first is not None
    assert claim_next(ResearchExport, clock.now()) is None
    later = clock.now() + timedelta(seconds=app.config["SCHEDULER_LEASE_SECONDS"] + 1)
    again = claim_next(ResearchExport, later)
    assert again is not None and again.id == first.id and again.attempts == 2


def test_a_file_outside_the_manifest_is_not_served(client, cohort, leon_headers, clock):
    done = export_now(client, leon_headers, clock)
    base = f"/api/v1/research/exports/{done['id']}/files/"
    for name in ("..%2F..%2Fetc%2Fpasswd", "other.csv"):
        assert client.get(base + name, headers=leon_headers).status_code == 404
