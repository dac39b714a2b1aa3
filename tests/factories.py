"""Factories: patients, procedures and responses built through the real services.

Personas: "Marcel, 86, sacroiliac screws" (Lyon, Europe/Paris), "Josette, 91, vertebroplasty",
"Léonie, 79, Fort-de-France" (America/Martinique).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Any

from backend.auth.principal import Principal
from backend.extensions import db
from backend.patients import services as patients
from backend.patients.models import Patient, Procedure
from backend.questionnaires import services as questionnaires
from tests.conftest import T0, Staff


def principal_of(staff: Staff) -> Principal:
    return Principal(
        kind="staff", id=staff.id, site_id=staff.site_id, session_id=uuid.uuid4(), role=staff.role
    )


def make_patient(staff: Staff, now: datetime = T0, **overrides: Any) -> Patient:
    data: dict[str, Any] = {
        "mrn": f"MRN-{uuid.uuid4().hex[:8]}",
        "given_name": "Marcel",
        "family_name": "Dupont",
        "birth_date": date(1940, 3, 2),
        "sex": "male",
        "phone": "+33612345678",
        "email": None,
        "locale": "fr",
        "timezone": "Europe/Paris",
        "contact_channels": ["push", "sms"],
        "caregiver_answers": False,
        # Care consent signed on paper before the procedure (an enrollment code needs it).
        "consent_given_on": (now - timedelta(days=4)).date(),
        "consent_method": "paper",
    }
    data.update(overrides)
    patient = patients.create_patient(principal_of(staff), data, now=now)
    db.session.commit()
    return patient


def make_procedure(
    staff: Staff,
    patient: Patient,
    now: datetime = T0,
    baseline: dict[str, Any] | None = None,
    **overrides: Any,
) -> Procedure:
    data: dict[str, Any] = {
        "kind": "screw_fixation",
        "location": "sacroiliac",
        "side": "left",
        "etiology": "osteoporotic",
        "bone_quality": "osteoporotic",
        "anaesthesia": "local",
        "screw_count": 2,
        "performed_on": date(2026, 11, 20),
        "discharged_on": date(2026, 11, 22),
        "baseline": baseline
        or {
            "pain_rest": 6,
            "pain_walking": 8,
            "mobility_score": 6,
            "analgesics": "weak_opioid",
            "walking_aid": "walker",
        },
    }
    data.update(overrides)
    procedure = patients.create_procedure(principal_of(staff), patient, data, now=now)
    db.session.commit()
    return procedure


def checkin_answers(**overrides: Any) -> dict[str, Any]:
    answers: dict[str, Any] = {
        "pain_rest": 2,
        "pain_walking": 3,
        "analgesics": "non_opioid",
        "walking_aid": "cane",
        "fell": False,
        "symptoms": [],
        "change": "much_improved",
        "call_request": False,
    }
    answers.update(overrides)
    return answers


def followup_answers(**overrides: Any) -> dict[str, Any]:
    answers = checkin_answers(pms_indoors=3, pms_outdoors=2, pms_shopping=1)
    answers.update(overrides)
    return answers


def record(
    patient: Patient,
    answered_at: datetime,
    *,
    now: datetime | None = None,
    assignment_id: uuid.UUID | None = None,
    instrument: str = "checkin",
    answers: dict[str, Any] | None = None,
    source: str = "patient",
    key: str | None = None,
) -> Any:
    """Record a response through the real service, as the patient's phone would."""
    principal = patients.patient_principal(patient, uuid.uuid4())
    body = {
        "assignment_id": assignment_id,
        "instrument": instrument,
        "version": 1,
        "answered_at": answered_at,
        "source": source,
        "answers": answers
        or (followup_answers() if instrument == "followup" else checkin_answers()),
    }
    result = questionnaires.record_response(
        principal,
        patient,
        body,
        now=now or answered_at,
        idempotency_key=key,
        fingerprint=questionnaires.request_fingerprint(body),
    )
    db.session.commit()
    return result.response
