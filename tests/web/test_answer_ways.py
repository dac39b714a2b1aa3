"""The nurse pages show how each patient answers (app, a reminder's SMS or e-mail link, a
phone call), so the ward sees who drifts away from the app.

Marcel (the ward of tests/web/conftest.py) answered six times in the app; on day 28 he answers
from his SMS reminder's link, and on day 35 his daughter from the e-mail's.
"""

from __future__ import annotations

import uuid

from backend.extensions import db
from backend.patients import services as patients
from backend.questionnaires import services as questionnaires
from tests.factories import checkin_answers
from tests.web.conftest import Pages, at_day


def answer_from_a_link(patient, day: int, channel: str, source: str = "patient") -> None:
    questionnaires.record_response(
        patients.patient_principal(patient, uuid.uuid4()),
        patient,
        {
            "assignment_id": None,
            "instrument": "checkin",
            "version": 1,
            "answered_at": at_day(day),
            "source": source,
            "answers": checkin_answers(),
        },
        now=at_day(day),
        idempotency_key=None,
        fingerprint=str(uuid.uuid4()),
        channel=channel,
    )
    db.session.commit()


def test_the_patients_list_shows_the_way_of_each_patients_last_answers(ada_pages, ward):
    answer_from_a_link(ward.marcel, 28, "sms")
    html = Pages.text(ada_pages.get("/patients"))
    assert "Answers by" in html
    row = html[html.index("Dupont, Marcel") :].split("</tr>")[0]
    assert '<span class="way way-sms">SMS link</span>' in row
    assert "last answers: App → App → App → App → SMS link" in row


def test_the_patient_page_counts_each_way_and_names_it_beside_each_answer(ada_pages, ward):
    answer_from_a_link(ward.marcel, 28, "sms")
    answer_from_a_link(ward.marcel, 35, "email", source="caregiver")
    html = Pages.text(ada_pages.get(f"/patients/{ward.marcel.id}"))
    assert "App 6 · E-mail link 1 · SMS link 1" in html
    assert "Sent by the patient from the SMS link" in html
    assert "Sent by a caregiver from the e-mail link" in html
    assert "Sent by the patient in the app" in html


def test_the_ways_are_named_in_the_nurses_language(ada_pages, ward):
    answer_from_a_link(ward.marcel, 28, "sms")
    ada_pages.post("/language", {"language": "fr", "next": "/patients"})
    html = Pages.text(ada_pages.get("/patients"))
    row = html[html.index("Dupont, Marcel") :].split("</tr>")[0]
    assert "Répond par" in html and "Lien par SMS" in row and "Application" in row
