"""`make run`'s demo: on first start the queue and the charts show something real."""

from __future__ import annotations

from backend.alerts.models import Alert
from backend.alerts.services import queue
from backend.auth.models import User
from backend.auth.services import staff_principal
from backend.demo import DEMO_PATIENT_MRN, DEMO_USERS, seed
from backend.extensions import db
from backend.patients.models import Patient
from backend.questionnaires.models import Assignment, Response
from tests.conftest import T0


def by_name(given_name: str) -> Patient:
    return db.session.execute(db.select(Patient).filter_by(given_name=given_name)).scalar_one()


def test_the_demo_queue_has_a_red_flag_on_top_then_loosening_a_call_and_a_missed_month(app):
    assert seed()
    nurse = db.session.execute(db.select(User).filter_by(email=DEMO_USERS[0][0])).scalar_one()
    alerts, _next = queue(
        staff_principal(nurse, nurse.id),
        T0,
        statuses=("open", "acknowledged"),
        severity=None,
        kind=None,
        patient_id=None,
        limit=50,
    )
    shown = [(a.kind, db.session.get(Patient, a.patient_id).given_name, a.status) for a in alerts]
    assert shown == [
        ("red_flag", "Robert", "open"),
        ("possible_screw_loosening", "Gisèle", "open"),
        ("call_request", "Paulette", "acknowledged"),
        ("no_response", "Lucienne", "open"),
    ]
    assert alerts[1].is_overdue(T0)  # raised five days ago, not acknowledged


def test_the_demo_histories_went_through_the_real_services(app):
    seed()
    gisele = by_name("Gisèle")
    confirmation = db.session.execute(
        db.select(Assignment).filter_by(patient_id=gisele.id, reason="confirmation")
    ).scalar_one()
    assert (confirmation.day, confirmation.status) == (45, "completed")
    lucienne = by_name("Lucienne")
    missed = db.session.execute(
        db.select(Assignment).filter_by(patient_id=lucienne.id, status="missed")
    ).scalar_one()
    assert missed.day == 30
    for improving in ("Josette", "Henri"):
        patient = by_name(improving)
        assert db.session.execute(db.select(Alert).filter_by(patient_id=patient.id)).first() is None
        answers = db.session.execute(db.select(Response).filter_by(patient_id=patient.id)).scalars()
        walking = [r.answers["pain_walking"] for r in sorted(answers, key=lambda r: r.answered_at)]
        assert walking[0] > walking[-1] and len(walking) >= 5


def test_the_demo_keeps_marcel_for_the_phone_flow(app):
    seed()
    marcel = db.session.execute(db.select(Patient).filter_by(mrn=DEMO_PATIENT_MRN)).scalar_one()
    assert marcel.given_name == "Marcel"
    assert db.session.execute(db.select(Response).filter_by(patient_id=marcel.id)).first() is None
