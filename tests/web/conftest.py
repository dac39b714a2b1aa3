"""Fixtures of the nurse pages' tests: a browser-like test client and a small ward.

The ward: Marcel, 86, sacroiliac screws, improved then relapsed (a loosening alert), and Robert,
79, sacral cement, who reported leg weakness this morning (a red flag). Nurse Ada works at Lyon,
nurse Noé at Nantes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from backend.alerts.models import Alert
from backend.extensions import db
from tests.conftest import Staff
from tests.factories import checkin_answers, make_patient, make_procedure, record

DISCHARGE = date(2026, 10, 25)
PARIS = ZoneInfo("Europe/Paris")
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def at_day(day: int, hour: int = 10) -> datetime:
    local = datetime.combine(DISCHARGE + timedelta(days=day), datetime.min.time())
    return local.replace(hour=hour, tzinfo=PARIS).astimezone(ZoneInfo("UTC"))


class Pages:
    """A test client used as a browser would: it reads each form's CSRF token from the page."""

    def __init__(self, client: FlaskClient, language: str = "en") -> None:
        self.client = client
        client.environ_base["HTTP_ACCEPT_LANGUAGE"] = language  # as the nurse's browser sends

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        return self.client.get(path, **kwargs)

    def token(self, path: str = "/login") -> str:
        match = _TOKEN.search(self.client.get(path).get_data(as_text=True))
        assert match, f"no CSRF token on {path}"
        return match.group(1)

    def post(self, path: str, data: dict[str, Any] | None = None, **kwargs: Any) -> TestResponse:
        form = {"csrf_token": self.token(), **(data or {})}
        return self.client.post(path, data=form, **kwargs)

    def sign_in(self, staff: Staff, password: str | None = None) -> TestResponse:
        return self.post("/login", {"email": staff.email, "password": password or staff.password})

    @staticmethod
    def text(response: TestResponse) -> str:
        return response.get_data(as_text=True)


@pytest.fixture
def pages(client: FlaskClient) -> Pages:
    return Pages(client)


@pytest.fixture
def ada_pages(pages: Pages, nurse_ada: Staff) -> Pages:
    """Nurse Ada, signed in to the pages."""
    assert pages.sign_in(nurse_ada).status_code == 303
    return pages


@dataclass
class Ward:
    marcel: Any
    robert: Any
    loosening: Alert
    red_flag: Alert


@pytest.fixture
def ward(any_app: Any, nurse_ada: Staff, clock: Any) -> Ward:
    # Registered at his discharge (a procedure entered later would not plan the questionnaires
    # whose windows had already closed).
    registered = at_day(0, 15)
    marcel = make_patient(
        nurse_ada, registered, given_name="Marcel", family_name="Dupont", mrn="LY-0001"
    )
    make_procedure(
        nurse_ada, marcel, registered, performed_on=date(2026, 10, 23), discharged_on=DISCHARGE
    )
    for day, pain in [(1, 6), (7, 3), (14, 2), (21, 2)]:
        record(marcel, at_day(day), answers=checkin_answers(pain_walking=pain))
    for day in (22, 23):  # walking pain up twice in a row, with clicking: loosening
        record(marcel, at_day(day), answers=checkin_answers(pain_walking=6, symptoms=["clicking"]))
    robert = make_patient(
        nurse_ada,
        given_name="Robert",
        family_name="Moreau",
        mrn="LY-0002",
        birth_date=date(1947, 2, 11),
        phone="+33600000005",
    )
    make_procedure(
        nurse_ada,
        robert,
        kind="cementoplasty",
        location="sacrum",
        performed_on=date(2026, 11, 12),
        discharged_on=date(2026, 11, 14),
    )
    clock.set(datetime(2026, 11, 23, 9, 0, tzinfo=ZoneInfo("UTC")))
    record(
        robert,
        clock.now() - timedelta(hours=1),
        answers=checkin_answers(pain_walking=6, symptoms=["leg_weakness", "numbness"]),
    )
    alerts = {
        a.kind: a
        for a in db.session.execute(
            db.select(Alert).where(Alert.patient_id.in_([marcel.id, robert.id]))
        ).scalars()
    }
    db.session.commit()
    return Ward(marcel, robert, alerts["possible_screw_loosening"], alerts["red_flag"])
