"""Research personas and the one helper that gives or withdraws research consent.

Consent is being reshaped (consent records with a purpose); every research test sets consent
through ``give_research_consent`` / ``withdraw_research_consent`` and reads inclusion through
``research.services.included_patients``, so the switch changes these two helpers and that one
function, not the tests.
"""

from __future__ import annotations

from datetime import date

import pytest

from backend.extensions import db
from backend.patients.models import Patient
from tests.conftest import Staff, bearer, login, make_staff


def give_research_consent(patient: Patient, on: date) -> None:
    patient.consent_given_on = on
    db.session.commit()


def withdraw_research_consent(patient: Patient, on: date) -> None:
    patient.consent_withdrawn_on = on
    db.session.commit()


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
