"""Research personas and the one helper that gives or withdraws research consent.

Every research test sets research consent through ``give_research_consent`` /
``withdraw_research_consent`` (the lifecycle's ``record_consent``, purpose ``research``) and
reads inclusion through ``research.services.included_patients``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest

from backend.auth.principal import Principal
from backend.extensions import db
from backend.patients.models import Patient
from tests.conftest import Staff, bearer, login, make_staff
from tests.factories import checkin_answers, make_patient, make_procedure, record


def _research_consent(patient: Patient, decision: str, on: date) -> None:
    from backend.auth.models import User
    from backend.patients.lifecycle import record_consent
    from tests.conftest import T0

    nurse = db.session.execute(
        db.select(User).filter_by(site_id=patient.site_id).limit(1)
    ).scalar_one()
    staff = Principal(
        kind="staff", id=nurse.id, site_id=patient.site_id, session_id=uuid.uuid4(), role=nurse.role
    )
    record_consent(
        staff,
        patient,
        {"purpose": "research", "decision": decision, "decided_on": on, "method": "paper"},
        now=T0,
    )
    db.session.commit()


def give_research_consent(patient: Patient, on: date) -> None:
    _research_consent(patient, "given", on)


def withdraw_research_consent(patient: Patient, on: date) -> None:
    _research_consent(patient, "withdrawn", on)


@pytest.fixture
def admin_iris(any_app) -> Staff:
    """Iris, administrator, site Lyon."""
    return make_staff("iris@lyon.example", "admin", "LYON")


@pytest.fixture
def physician_nadia(any_app) -> Staff:
    """Dr Nadia, physician at Nantes: must never see Lyon's patients, even counted."""
    return make_staff("nadia@nantes.example", "physician", "NANTES")


@pytest.fixture
def leon_headers(client, physician_leon) -> dict[str, str]:
    return bearer(login(client, physician_leon)["access_token"])


# --- the hand-worked cohort of test_outcomes.py (its docstring has the numbers) ---

DISCHARGED = date(2026, 10, 1)
DAY_30 = datetime(2026, 10, 31, 10, 0, tzinfo=UTC)
BASELINE = {"pain_rest": 5, "pain_walking": 8}


def patient_with(staff, kind, walking, *, consent=True, name="Marcel"):
    patient = make_patient(staff, given_name=name)
    make_procedure(
        staff,
        patient,
        kind=kind,
        location="sacrum",
        performed_on=date(2026, 9, 30),
        discharged_on=DISCHARGED,
        baseline=BASELINE,
    )
    if consent:
        give_research_consent(patient, date(2026, 9, 29))
    if walking is not None:
        record(patient, DAY_30, answers=checkin_answers(pain_walking=walking, pain_rest=2))
    return patient


@pytest.fixture
def cohort(nurse_ada):
    for walking in (6, 6, 7, 7, 6):
        patient_with(nurse_ada, "cementoplasty", walking)
    for walking in (3, 2, 4, 3, 3):
        patient_with(nurse_ada, "screw_fixation_cementoplasty", walking)
    for _ in range(5):
        patient_with(nurse_ada, "cementoplasty", None)
    patient_with(nurse_ada, "cementoplasty", 0, consent=False, name="Sans-consentement")
    withdrew = patient_with(nurse_ada, "cementoplasty", None, name="Retrait")
    record(
        withdrew, datetime(2026, 10, 20, 10, tzinfo=UTC), answers=checkin_answers(pain_walking=8)
    )
    withdraw_research_consent(withdrew, date(2026, 10, 26))
    record(withdrew, DAY_30, answers=checkin_answers(pain_walking=0))
    nantes = make_staff("zoe@nantes.example", "nurse", "NANTES")
    patient_with(nantes, "screw_fixation_cementoplasty", 0, name="Nantais")
