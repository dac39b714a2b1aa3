"""Randomisation: balanced blocks, concealment, once per patient even on a double click."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from datetime import date
from types import SimpleNamespace

import pytest

from backend.audit.models import AuditEvent
from backend.extensions import db
from backend.research.models import Allocation
from backend.research.randomisation import all_strata, generate_list
from tests.conftest import bearer, login
from tests.factories import make_patient
from tests.research.conftest import give_research_consent

STUDY = {
    "key": "cement-vs-screws",
    "title": "Cement alone vs cement plus screws",
    "arms": ["cement", "cement_screws"],
    "strata": {"etiology": ["osteoporotic", "neoplastic"], "location": ["pelvic_ring", "other"]},
    "block_sizes": [2, 4],
    "list_length": 40,
}
OSTEO_PELVIC = {"etiology": "osteoporotic", "location": "pelvic_ring"}


def test_every_block_is_balanced_and_block_sizes_vary():
    slots = generate_list(b"seed", "etiology=osteoporotic", ["a", "b"], [2, 4], 400)
    blocks: dict[int, list[str]] = {}
    for _, block, _size, arm in slots:
        blocks.setdefault(block, []).append(arm)
    sizes = Counter(len(arms) for arms in list(blocks.values())[:-1])
    assert set(sizes) == {2, 4}
    for arms in list(blocks.values())[:-1]:
        assert arms.count("a") == arms.count("b")
    # Same seed, same list; another stratum or seed, another list.
    assert slots == generate_list(b"seed", "etiology=osteoporotic", ["a", "b"], [2, 4], 400)
    assert slots != generate_list(b"seed", "etiology=neoplastic", ["a", "b"], [2, 4], 400)


def test_strata_are_every_combination_of_the_factors():
    assert all_strata(STUDY["strata"]) == [
        "etiology=osteoporotic|location=pelvic_ring",
        "etiology=osteoporotic|location=other",
        "etiology=neoplastic|location=pelvic_ring",
        "etiology=neoplastic|location=other",
    ]


def consented(staff, name):
    patient = make_patient(staff, given_name=name)
    give_research_consent(patient, date(2026, 11, 20))
    return patient


@pytest.fixture
def study(client, leon_headers):
    response = client.post("/api/v1/research/studies", json=STUDY, headers=leon_headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def randomise(client, headers, study, patient, strata=OSTEO_PELVIC):
    return client.post(
        f"/api/v1/research/studies/{study['id']}/randomisations",
        json={"patient_id": str(patient.id), "strata": strata},
        headers=headers,
    )


def test_patients_get_the_next_arm_of_their_stratum_once_and_it_is_audited(
    client, study, nurse_ada, leon_headers
):
    listed = [
        a.arm
        for a in db.session.execute(
            db.select(Allocation)
            .filter_by(
                study_id=uuid.UUID(study["id"]),
                stratum="etiology=osteoporotic|location=pelvic_ring",
            )
            .order_by(Allocation.position)
        ).scalars()
    ]
    patients = [consented(nurse_ada, f"P{i}") for i in range(6)]
    arms = [randomise(client, leon_headers, study, p).get_json()["arm"] for p in patients]
    assert arms == listed[:6]
    again = randomise(client, leon_headers, study, patients[0]).get_json()
    assert again["arm"] == arms[0] and again["first_time"] is False
    # A second call with other strata cannot move the patient to another list either.
    other = randomise(
        client, leon_headers, study, patients[1], {"etiology": "neoplastic", "location": "other"}
    )
    assert other.get_json()["arm"] == arms[1]
    actions = Counter(
        e.action
        for e in db.session.execute(db.select(AuditEvent)).scalars()
        if e.action.startswith("research.")
    )
    assert actions["research.randomisation.allocated"] == 6
    assert actions["research.randomisation.repeated"] == 2
    assert actions["research.study.created"] == 1


def test_without_research_consent_there_is_no_randomisation(client, study, nurse_ada, leon_headers):
    patient = make_patient(nurse_ada, given_name="Sans")
    response = randomise(client, leon_headers, study, patient)
    assert response.status_code == 409
    assert "consent" in response.get_json()["detail"]


def test_bad_strata_are_named(client, study, nurse_ada, leon_headers):
    patient = consented(nurse_ada, "Paul")
    response = randomise(client, leon_headers, study, patient, {"etiology": "cyst", "shoe": "x"})
    assert response.status_code == 422
    pointers = {e["pointer"] for e in response.get_json()["errors"]}
    assert pointers == {"/strata/etiology", "/strata/location", "/strata/shoe"}


def test_nothing_the_api_shows_depends_on_the_future_allocations(client, leon_headers, nurse_ada):
    """Two studies alike but for their secret seeds (different lists) look the same through
    every endpoint until someone is randomised, and the balance shows no arm of an open block."""
    shown = []
    for key in ("study-a", "study-b"):
        body = {**STUDY, "key": key}
        created = client.post("/api/v1/research/studies", json=body, headers=leon_headers)
        read = client.get(
            f"/api/v1/research/studies/{created.get_json()['id']}", headers=leon_headers
        ).get_json()
        for view in (created.get_json(), read):
            shown.append(
                {
                    k: v
                    for k, v in view.items()
                    if k not in {"id", "key", "seed_sha256", "created_at"}
                }
            )
    assert shown[0] == shown[1] == shown[2] == shown[3]
    assert "position" not in str(shown) and "cement_screws', 'cement" not in str(shown)
    study = client.get(
        f"/api/v1/research/studies/{created.get_json()['id']}", headers=leon_headers
    ).get_json()
    patient = consented(nurse_ada, "Une")
    randomise(client, leon_headers, study, patient)
    balance = client.get(
        f"/api/v1/research/studies/{study['id']}", headers=leon_headers
    ).get_json()["balance"]
    first = balance[0]
    assert first["randomised"] == 1 and first["in_block_in_progress"] == 1
    assert first["arms_in_completed_blocks"] == {"cement": 0, "cement_screws": 0}


def test_the_balance_counts_arms_of_completed_blocks(client, study, nurse_ada, leon_headers):
    for i in range(8):
        randomise(client, leon_headers, study, consented(nurse_ada, f"B{i}"))
    first = client.get(f"/api/v1/research/studies/{study['id']}", headers=leon_headers).get_json()[
        "balance"
    ][0]
    completed = first["arms_in_completed_blocks"]
    assert completed["cement"] == completed["cement_screws"]
    assert sum(completed.values()) + first["in_block_in_progress"] == 8


def test_a_nurse_cannot_randomise_and_other_sites_see_no_study(
    client, study, nurse_ada, ada_headers, physician_nadia
):
    patient = consented(nurse_ada, "Rose")
    assert randomise(client, ada_headers, study, patient).status_code == 403
    nadia = bearer(login(client, physician_nadia)["access_token"])
    assert client.get(f"/api/v1/research/studies/{study['id']}", headers=nadia).status_code == 404


def test_the_command_line_creates_a_study(app, runner, nurse_ada):
    result = runner.invoke(
        args=[
            "research",
            "study",
            "create",
            "trial-1",
            "--site",
            "LYON",
            "--title",
            "Trial",
            "--arm",
            "cement",
            "--arm",
            "cement_screws",
            "--stratum",
            "etiology=osteoporotic,neoplastic",
            "--list-length",
            "20",
        ]
    )
    assert result.exit_code == 0, result.output
    slots = db.session.execute(db.select(db.func.count()).select_from(Allocation)).scalar()
    assert 40 <= slots < 40 + 2 * 4  # two strata of 20 slots or more, in whole blocks
    bad = runner.invoke(
        args=[
            "research",
            "study",
            "create",
            "t2",
            "--site",
            "LYON",
            "--title",
            "T",
            "--arm",
            "a",
            "--arm",
            "b",
            "--block-sizes",
            "3",
        ]
    )
    assert bad.exit_code != 0 and "block_sizes" in bad.output


@pytest.mark.parametrize("attempt", range(2))
def test_a_concurrent_double_click_gives_one_arm(
    committing_app, nurse_ada, physician_leon, attempt
):
    staff_client = committing_app.test_client()
    headers = bearer(login(staff_client, physician_leon)["access_token"])
    study = staff_client.post("/api/v1/research/studies", json=STUDY, headers=headers).get_json()
    patient_id = consented(nurse_ada, "Double").id
    db.session.commit()  # the test's own session must not hold SQLite's write lock
    barrier = threading.Barrier(2)
    results: list = []
    errors: list = []

    def click():
        try:
            with committing_app.app_context():
                client = committing_app.test_client()
                barrier.wait()
                results.append(randomise(client, headers, study, SimpleNamespace(id=patient_id)))
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=click) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert [r.status_code for r in results] == [200, 200], [r.get_json() for r in results]
    assert results[0].get_json()["arm"] == results[1].get_json()["arm"]
    assert sorted(r.get_json()["first_time"] for r in results) == [False, True]
    db.session.remove()
    taken = db.session.execute(
        db.select(db.func.count()).select_from(Allocation).filter_by(patient_id=patient_id)
    ).scalar()
    assert taken == 1
