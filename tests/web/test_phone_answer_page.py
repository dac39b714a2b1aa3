"""Answers given over the phone, on the nurse's pages: the instrument's own form, the API's
validation next to each field, one answer per form however often it is sent, then the advice
to read out and the alerts raised.

Nurse Ada (Lyon) calls Marcel, 86, sacroiliac screws (the ward of tests/web/conftest.py).
"""

from __future__ import annotations

import re
import uuid

import pytest

from backend.alerts.models import Alert
from backend.alerts.services import EMERGENCY_ADVICE
from backend.audit.models import AuditEvent
from backend.auth.models import User
from backend.extensions import db
from backend.questionnaires.models import Assignment, Instrument, Response
from backend.questionnaires.services import get_instrument
from tests.web.conftest import Pages

FIELD = re.compile(r'name="(answers-[a-z_]+)"')
HIDDEN = re.compile(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">')


@pytest.fixture
def ada(ada_pages, nurse_ada):
    db.session.get(User, nurse_ada.id).full_name = "Ada Martin"
    db.session.commit()
    return ada_pages


def form_of(pages: Pages, path: str) -> tuple[str, dict[str, str]]:
    response = pages.get(path)
    assert response.status_code == 200
    html = Pages.text(response)
    hidden = {k: v for k, v in HIDDEN.findall(html) if k != "csrf_token"}
    return html, hidden


def calm(**changes: object) -> dict[str, object]:
    """Marcel's answers on the phone: better, no symptom."""
    answers: dict[str, object] = {
        "answers-pain_rest": "2",
        "answers-pain_walking": "3",
        "answers-analgesics": "non_opioid",
        "answers-walking_aid": "cane",
        "answers-fell": "false",
        "answers-change": "much_improved",
        "answers-call_request": "false",
    }
    answers.update(changes)
    return {k: v for k, v in answers.items() if v is not None}


def count(patient) -> int:
    return db.session.execute(
        db.select(db.func.count()).select_from(Response).filter_by(patient_id=patient.id)
    ).scalar_one()


def field_error(html: str, field: str) -> str | None:
    match = re.search(rf'<p class="error" id="{re.escape(field)}-error">([^<]*)</p>', html)
    return match.group(1) if match else None


def test_the_form_has_every_item_of_the_instruments_versioned_definition(ada, ward):
    html, hidden = form_of(ada, f"/patients/{ward.marcel.id}/answers/new")
    checkin: Instrument = get_instrument("checkin")
    assert (hidden["instrument"], hidden["version"]) == ("checkin", str(checkin.version))
    assert hidden["assignment_id"] == "" and uuid.UUID(hidden["form_token"])
    assert sorted(set(FIELD.findall(html))) == sorted(
        f"answers-{item['id']}" for item in checkin.definition["items"]
    )
    assert "How much pain do you have now, at rest?" in html  # the definition's own text
    # An open follow-up questionnaire brings its own instrument and version.
    followup = Assignment(
        patient_id=ward.marcel.id,
        procedure_id=ward.marcel.current_procedure.id,
        instrument_key="followup",
        instrument_version=1,
        day=30,
        reason="protocol",
        opens_at=ward.red_flag.created_at,
        closes_at=ward.red_flag.created_at.replace(year=2027),
        status="open",
        status_changed_at=ward.red_flag.created_at,
        created_at=ward.red_flag.created_at,
    )
    db.session.add(followup)
    db.session.commit()
    html, hidden = form_of(ada, f"/patients/{ward.marcel.id}/answers/new?assignment={followup.id}")
    assert (hidden["instrument"], hidden["assignment_id"]) == ("followup", str(followup.id))
    assert "answers-pms_shopping" in FIELD.findall(html)


def test_a_nurse_records_a_red_flag_over_the_phone_and_reads_out_the_advice(ada, ward, nurse_ada):
    _, hidden = form_of(ada, f"/patients/{ward.marcel.id}/answers/new")
    posted = ada.post(
        f"/patients/{ward.marcel.id}/answers/new",
        {**hidden, **calm(), "answers-symptoms": ["chest_pain", "fever"]},
    )
    assert posted.status_code == 303, Pages.text(posted)
    response = db.session.execute(
        db.select(Response).filter_by(patient_id=ward.marcel.id, source="nurse")
    ).scalar_one()
    assert response.entered_by_id == nurse_ada.id
    assert response.answers["symptoms"] == ["chest_pain", "fever"]
    assert posted.headers["Location"] == f"/patients/{ward.marcel.id}/answers/{response.id}"
    result = Pages.text(ada.get(posted.headers["Location"]))
    assert "Red flag: tell the patient now" in result
    assert EMERGENCY_ADVICE["fr"].replace("'", "&#39;") in result  # Marcel's language
    red_flag = db.session.execute(
        db.select(Alert).filter_by(patient_id=ward.marcel.id, kind="red_flag")
    ).scalar_one()
    assert f'href="/alerts/{red_flag.id}"' in result
    assert "Entered by Ada Martin after a phone call" in result
    # The patient page and the alert's evidence say who entered it.
    assert "Entered by Ada Martin after a phone call" in Pages.text(
        ada.get(f"/patients/{ward.marcel.id}")
    )
    assert "Entered by Ada Martin after a phone call" in Pages.text(
        ada.get(f"/alerts/{red_flag.id}")
    )
    audited = db.session.execute(
        db.select(AuditEvent.action).filter_by(patient_id=ward.marcel.id, actor_id=nurse_ada.id)
    ).scalars()
    assert {"response.create", "response.read"} <= set(audited)


def test_a_form_sent_twice_stores_one_answer_and_shows_it_again(ada, ward):
    _, hidden = form_of(ada, f"/patients/{ward.marcel.id}/answers/new")
    before = count(ward.marcel)
    first = ada.post(f"/patients/{ward.marcel.id}/answers/new", {**hidden, **calm()})
    second = ada.post(f"/patients/{ward.marcel.id}/answers/new", {**hidden, **calm()})
    assert (first.status_code, second.status_code) == (303, 303)
    assert first.headers["Location"] == second.headers["Location"]
    assert count(ward.marcel) == before + 1
    # Back, another answer, sent again with the same form: refused, said, nothing stored.
    changed = ada.post(
        f"/patients/{ward.marcel.id}/answers/new", {**hidden, **calm(**{"answers-pain_rest": "7"})}
    )
    assert changed.status_code == 422
    assert "This form was already sent with other answers" in Pages.text(changed)
    assert count(ward.marcel) == before + 1


def test_every_bad_answer_is_shown_next_to_its_field_and_nothing_is_stored(ada, ward):
    _, hidden = form_of(ada, f"/patients/{ward.marcel.id}/answers/new")
    before = count(ward.marcel)
    posted = ada.post(
        f"/patients/{ward.marcel.id}/answers/new",
        {
            **hidden,
            **calm(**{"answers-pain_rest": None, "answers-pain_walking": "11"}),
            "answers-change": "fine",
        },
    )
    assert posted.status_code == 422
    html = Pages.text(posted)
    assert field_error(html, "answers-pain_rest") == "Required."
    assert field_error(html, "answers-pain_walking") == "Enter a value from 0 to 10."
    assert field_error(html, "answers-change") == "Choose one of the options."
    assert "3 answers need a correction" in html
    assert 'name="answers-walking_aid" value="cane" checked' in html  # the rest is kept
    assert count(ward.marcel) == before
    french = Pages(ada.client, language="fr")
    html = Pages.text(
        french.post(
            f"/patients/{ward.marcel.id}/answers/new",
            {**hidden, **calm(**{"answers-fell": None})},
        )
    )
    assert field_error(html, "answers-fell") == "Obligatoire."


def test_an_answered_questionnaire_refuses_a_second_form_and_says_why(ada, ward, clock):
    day = db.session.execute(
        db.select(Assignment).filter_by(patient_id=ward.robert.id).order_by(Assignment.opens_at)
    ).scalars()
    open_one = next(a for a in day if a.effective_status(clock.now()) == "open")
    path = f"/patients/{ward.robert.id}/answers/new?assignment={open_one.id}"
    _, first = form_of(ada, path)
    _, second = form_of(ada, path)
    answers = calm()
    if open_one.instrument_key == "followup":
        answers.update(
            {"answers-pms_indoors": "3", "answers-pms_outdoors": "2", "answers-pms_shopping": "1"}
        )
    assert (
        ada.post(f"/patients/{ward.robert.id}/answers/new", {**first, **answers}).status_code == 303
    )
    again = ada.post(f"/patients/{ward.robert.id}/answers/new", {**second, **answers})
    assert again.status_code == 409
    assert "This questionnaire has already been answered." in Pages.text(again)
