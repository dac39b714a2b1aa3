"""Answering from a reminder's link: a single-use, hashed capability to one questionnaire.

Marcel, 86, sacroiliac screws, has no app: his reminders come by SMS. His day-1 check-in opens at
T0 (10:00 in Paris) for three days. He was born in 1940 and reads English (the pages follow
the patient's language; Jeanne reads French). The pages are driven with Flask's test
client as a browser would (cookies kept, every form's hidden fields posted back).
"""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient

from backend.audit.models import AuditEvent
from backend.extensions import db
from backend.questionnaires import links
from backend.questionnaires.models import AnswerLink, Assignment, Response
from tests.conftest import T0
from tests.factories import checkin_answers, make_patient, make_procedure, record

_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


@pytest.fixture
def marcel(app, nurse_ada):
    patient = make_patient(nurse_ada, contact_channels=["sms"], locale="en")
    make_procedure(nurse_ada, patient)
    return patient


def assignment_of(patient, day: int) -> Assignment:
    return db.session.execute(
        db.select(Assignment).filter_by(patient_id=patient.id, day=day)
    ).scalar_one()


def issue(patient, day: int = 1, channel: str = "sms") -> str:
    """A reminder's link to that day's questionnaire, as the outbox issues it; the token."""
    url = links.issue(assignment_of(patient, day), channel, now=T0)
    db.session.commit()
    return url.rsplit("/", 1)[1]


def responses_of(patient) -> list[Response]:
    return list(db.session.execute(db.select(Response).filter_by(patient_id=patient.id)).scalars())


class Browser:
    """A phone's browser on the answer pages: it posts back each page's hidden fields."""

    def __init__(self, client: FlaskClient, token: str) -> None:
        self.client, self.token, self.page = client, token, ""

    def open(self) -> Any:
        response = self.client.get(f"/a/{self.token}")
        self.page = response.get_data(as_text=True)
        return response

    def fields(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for name, value in _HIDDEN.findall(self.page):
            found.setdefault(name, []).append(value)
        return found

    def post(self, path: str, **values: Any) -> Any:
        data = self.fields()
        for name, value in values.items():
            data[name] = value if isinstance(value, list) else [str(value)]
        response = self.client.post(path, data=data)
        if response.status_code == 303:
            response = self.client.get(response.headers["Location"])
        self.page = response.get_data(as_text=True)
        return response

    def year(self, year: str) -> Any:
        return self.post(f"/a/{self.token}", year=year)

    def screen(self, go: str = "next", **answers: Any) -> Any:
        fields = {f"answers-{k}" if k != "source" else k: v for k, v in answers.items()}
        return self.post(f"/a/{self.token}/answers", go=go, **fields)


def form_value(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def answer_everything(browser: Browser, source: str = "patient", **overrides: Any) -> Any:
    """Who answers, then one screen per question of the check-in, then the check and send."""
    assert browser.screen(source=source).status_code == 200
    for item, value in checkin_answers(**overrides).items():
        response = browser.screen(**{item: form_value(value)})
        assert response.status_code == 200, browser.page
    assert "Check your answers" in browser.page or "Vérifiez vos réponses" in browser.page
    return browser.screen(go="send")


@pytest.fixture
def browser(app, marcel) -> Browser:
    client = app.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    return Browser(client, issue(marcel))


def test_the_database_keeps_only_the_hash_of_a_high_entropy_token(app, marcel):
    tokens = {issue(marcel) for _ in range(20)}
    assert len(tokens) == 20 and all(len(t) == links.TOKEN_LENGTH for t in tokens)
    rows = db.session.execute(db.select(AnswerLink)).scalars().all()
    stored = {
        str(getattr(row, column))
        for row in rows
        for column in [c.key for c in row.__table__.columns]
    }
    assert not tokens & stored
    assert {row.token_hash for row in rows} == {
        hashlib.sha256(t.encode()).hexdigest() for t in tokens
    }
    assert all(row.expires_at == assignment_of(marcel, 1).closes_at for row in rows)


def test_the_patient_answers_from_the_sms_link_and_the_response_says_so(app, marcel, browser):
    assert browser.open().status_code == 200
    assert "Year of birth of the patient" in browser.page
    assert "pain" not in browser.page.lower()  # nothing of the questionnaire before the check

    response = browser.year("1940")
    assert response.status_code == 200 and "Who is answering?" in browser.page

    done = answer_everything(browser, source="patient", pain_walking=4)
    assert done.status_code == 200 and "Your answers have been sent" in browser.page
    (stored,) = responses_of(marcel)
    assert (stored.source, stored.channel, stored.assignment_id) == (
        "patient",
        "sms",
        assignment_of(marcel, 1).id,
    )
    assert stored.answers == checkin_answers(pain_walking=4)
    assert stored.scores["pain_walking_band"] == "moderate"
    assert stored.attribution == {
        "kind": "patient",
        "display_name": None,
        "user_id": None,
        "channel": "sms",
    }
    assert assignment_of(marcel, 1).status == "completed"
    link = db.session.execute(db.select(AnswerLink)).scalar_one()
    assert (link.used_at, link.response_id) == (T0, stored.id)


def test_a_caregiver_answering_from_an_email_link_is_recorded_as_the_caregiver(app, marcel):
    client = app.test_client()
    browser = Browser(client, issue(marcel, channel="email"))
    browser.open()
    browser.year("1940")
    answer_everything(browser, source="caregiver")
    (stored,) = responses_of(marcel)
    assert (stored.source, stored.channel) == ("caregiver", "email")
    assert "relative or carer" in browser.page or "proche" in browser.page


def test_a_red_flag_shows_the_emergency_advice_at_once(app, marcel, browser):
    browser.open()
    browser.year("1940")
    answer_everything(browser, symptoms=["leg_weakness"])
    assert 'role="alert"' in browser.page
    assert "15" in browser.page and "112" in browser.page and 'href="tel:15"' in browser.page


def test_the_link_cannot_be_reused_after_an_answer(app, marcel, browser):
    browser.open()
    browser.year("1940")
    answer_everything(browser)

    again = browser.open()
    assert again.status_code == 410 and "has been answered" in browser.page
    # Another browser with the same message: the same refusal, nothing of the answers.
    elsewhere = Browser(app.test_client(), browser.token)
    assert elsewhere.open().status_code == 410
    assert len(responses_of(marcel)) == 1


def test_a_replayed_form_stores_nothing_new(app, marcel, browser):
    browser.open()
    browser.year("1940")
    browser.screen(source="patient")
    for item, value in checkin_answers().items():
        browser.screen(**{item: form_value(value)})
    sending = browser.fields()
    path = f"/a/{browser.token}/answers"

    first = browser.client.post(path, data={**sending, "go": "send"})
    second = browser.client.post(path, data={**sending, "go": "send"})  # a double tap, a reload

    assert first.status_code == second.status_code == 303
    assert first.headers["Location"] == second.headers["Location"]
    assert len(responses_of(marcel)) == 1
    # The same form replayed from another browser (neither its CSRF session nor its session
    # of the check): refused, whichever check refuses it first.
    stranger = app.test_client().post(path, data={**sending, "go": "send"})
    assert stranger.status_code in (400, 410)
    assert len(responses_of(marcel)) == 1


def test_the_link_cannot_be_used_once_the_window_has_closed(app, marcel, browser, clock):
    browser.open()
    browser.year("1940")
    browser.screen(source="patient")
    clock.set(assignment_of(marcel, 1).closes_at)

    assert browser.screen(pain_rest="2").status_code == 410
    assert "closed" in browser.page
    assert browser.open().status_code == 410
    assert responses_of(marcel) == []


def test_the_link_answers_its_own_questionnaire_and_no_other(app, marcel, clock):
    """Day 1's link, used while day 7 is open (day 1 answered in the app): refused; and no
    hidden field of the form can point it at another questionnaire."""
    day1_token = issue(marcel, day=1)
    clock.set(assignment_of(marcel, 1).opens_at + timedelta(hours=1))
    day7 = assignment_of(marcel, 7)

    browser = Browser(app.test_client(), day1_token)
    browser.open()
    browser.year("1940")
    browser.screen(source="patient")
    for item, value in checkin_answers().items():
        browser.screen(**{item: form_value(value)})
    browser.post(
        f"/a/{day1_token}/answers",
        go="send",
        assignment_id=str(day7.id),
        instrument="followup",
        **{"answers-pms_indoors": "3"},
    )
    (stored,) = responses_of(marcel)
    assert stored.assignment_id == assignment_of(marcel, 1).id
    assert (stored.instrument_key, "pms_indoors" in stored.answers) == ("checkin", False)
    assert assignment_of(marcel, 7).status != "completed"

    # Day 7 opens; day 1's link (another one of its reminders) still opens nothing.
    other_day1_link = issue(marcel, day=1)
    clock.set(day7.opens_at + timedelta(hours=1))
    assert Browser(app.test_client(), other_day1_link).open().status_code == 410
    assert Browser(app.test_client(), "x" * links.TOKEN_LENGTH).open().status_code == 404


def test_a_questionnaire_answered_in_the_app_ends_its_links(app, marcel, browser):
    day1 = assignment_of(marcel, 1)
    record(marcel, T0 + timedelta(minutes=5), assignment_id=day1.id)
    assert browser.open().status_code == 410 and "has been answered" in browser.page


def test_wrong_years_lock_the_link_for_good_across_workers(app, marcel, browser):
    browser.open()
    first = browser.year("1941")
    assert first.status_code == 422 and "2 more times" in browser.page
    assert browser.year("1939").status_code == 422 and "1 more time" in browser.page
    assert browser.year("1900").status_code == 403 and "locked" in browser.page

    # The right year, now, from another browser (another worker reads the same row): locked.
    again = Browser(app.test_client(), browser.token)
    assert again.open().status_code == 403 and 'name="year"' not in again.page
    with pytest.raises(links.LinkRefused) as refused:
        links.open_link(browser.token, now=T0)
    assert refused.value.reason == "locked"
    link = db.session.execute(db.select(AnswerLink)).scalar_one()
    assert link.failed_checks == 3 and link.locked_at == T0
    checks = (
        db.session.execute(db.select(AuditEvent).filter_by(action="answer_link.check"))
        .scalars()
        .all()
    )
    assert [e.outcome for e in checks] == ["failure", "failure", "failure"]
    assert all(e.patient_id == marcel.id for e in checks)
    assert responses_of(marcel) == []


def test_a_forwarded_link_asks_the_year_again_in_another_browser(app, marcel, browser):
    browser.open()
    browser.year("1940")
    assert "Who is answering?" in browser.page
    forwarded = Browser(app.test_client(), browser.token)
    forwarded.open()
    assert "Year of birth of the patient" in forwarded.page
    # Skipping the check by posting a screen directly is refused too.
    response = forwarded.client.post(
        f"/a/{browser.token}/answers",
        data={
            **browser.fields(),
            "csrf_token": forwarded.fields()["csrf_token"],  # its own, from the check page
            "go": "next",
            "source": "patient",
        },
    )
    assert response.status_code == 401 and "Who is answering?" not in response.get_data(True)


def test_a_screen_left_unanswered_asks_again_in_plain_words(app, marcel, browser):
    browser.open()
    browser.year("1940")
    assert browser.screen().status_code == 422 and "Choose who is answering." in browser.page
    browser.screen(source="caregiver")
    assert browser.screen().status_code == 422 and "Choose an answer to go on." in browser.page


def test_the_pages_speak_the_patients_language(app, nurse_ada):
    jeanne = make_patient(nurse_ada, contact_channels=["sms"], given_name="Jeanne", locale="fr")
    make_procedure(nurse_ada, jeanne)
    browser = Browser(app.test_client(), issue(jeanne))
    browser.open()
    assert '<html lang="fr">' in browser.page and "Année de naissance" in browser.page
    browser.year("1940")
    assert "Qui répond ?" in browser.page
    browser.screen(source="patient")
    assert "Quelle est votre douleur en ce moment, au repos ?" in browser.page


@pytest.mark.parametrize("app_config", [{"ANSWER_LINK_LIMIT": "5 per minute"}])
def test_the_answer_pages_are_rate_limited_per_address(app, marcel, app_config):
    client = app.test_client()
    statuses = [client.get(f"/a/{'y' * links.TOKEN_LENGTH}").status_code for _ in range(6)]
    assert statuses == [404] * 5 + [429]
    refused = client.get(f"/a/{'y' * links.TOKEN_LENGTH}")
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
