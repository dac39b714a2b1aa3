"""Patients without the app answer from their reminder's link, on a phone, text at 200 %.

Marcel (French) answers his day-1 check-in himself; Yvonne's daughter answers Yvonne's
(English) and reports chest pain: the emergency advice comes at once. Both on a 390x844 phone
screen with the browser's text size setting at 200 % (the profile's default font size 32 px
instead of 16), the second with JavaScript switched off. Every screen is
checked by axe-core (WCAG 2.2 AA); the README's screenshots are taken here.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from playwright.sync_api import expect

from backend.auth.models import User
from backend.demo import DEMO_USERS
from backend.extensions import db
from backend.questionnaires import links
from backend.questionnaires.models import Assignment, Response
from tests.conftest import T0
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, assert_accessible, release, screenshot
from tests.factories import make_patient, make_procedure

pytestmark = pytest.mark.e2e

PHONE = {"width": 390, "height": 844}


def link_for(given_name: str, locale: str) -> tuple[str, Any]:
    """A patient of the demo's Lyon ward discharged yesterday, and the link of the SMS that
    reminds them of their day-1 check-in (open since T0)."""
    nurse = db.session.execute(db.select(User).filter_by(email=DEMO_USERS[0][0])).scalar_one()
    staff = SimpleNamespace(id=nurse.id, site_id=nurse.site_id, role=nurse.role)
    patient = make_patient(staff, given_name=given_name, locale=locale, contact_channels=["sms"])
    make_procedure(staff, patient)
    day1 = db.session.execute(
        db.select(Assignment).filter_by(patient_id=patient.id, day=1)
    ).scalar_one()
    url = links.issue(day1, "sms", now=T0)
    db.session.commit()
    patient_id = patient.id
    release()
    return url.rsplit("/", 1)[1], patient_id


@pytest.fixture
def phone(browser: Any, request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """A phone's browser whose text size setting is 200 %: the profile's own preference
    (Chromium's "Font size", default 16 px, here 32 px), as a person who needs large type sets
    it once for every page."""
    javascript = getattr(request, "param", True)
    profile = tmp_path / "profile"
    (profile / "Default").mkdir(parents=True)
    (profile / "Default" / "Preferences").write_text(
        json.dumps(
            {"webkit": {"webprefs": {"default_font_size": 32, "default_fixed_font_size": 26}}}
        )
    )
    ctx = browser.browser_type.launch_persistent_context(
        str(profile),
        executable_path=CHROMIUM,
        args=CHROMIUM_ARGS,
        viewport=PHONE,
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        java_script_enabled=javascript,
        timezone_id="Europe/Paris",
    )
    ctx.set_default_timeout(10_000)
    page = ctx.pages[0] if ctx.pages else ctx.new_page()
    yield page
    ctx.close()


def check_screen(page: Any, *, axe: bool = True) -> None:
    """Large type that follows the browser's text size, nothing wider than the screen, big
    touch targets, and axe-core's WCAG 2.2 AA check (``axe``: once per kind of screen)."""
    # The stylesheet applied: the root's size is 112.5 % of the browser's (doubled) one.
    page.wait_for_function("() => getComputedStyle(document.documentElement).fontSize === '36px'")
    scroll_width, width, targets = page.evaluate(
        "() => [document.documentElement.scrollWidth, window.innerWidth,"
        " Array.from(document.querySelectorAll('label.choice, button, a.call'))"
        "   .map(e => e.getBoundingClientRect().height)]"
    )
    assert scroll_width <= width
    assert all(h >= 44 for h in targets), targets
    if axe:
        assert_accessible(page)


# The check-in's eight screens: (input, value to pick; None: the second option).
CHECKIN_SCREENS = [
    ("radio", "2"),  # pain at rest (0-10)
    ("radio", "pain_walking"),  # pain on walking (0-10): the test's value
    ("radio", None),  # pain medicine (a choice)
    ("radio", None),  # walking aid
    ("radio", None),  # fell (yes or no): No
    ("checkbox", "symptom"),  # symptoms (tick any): the test's value, if any
    ("radio", None),  # change
    ("radio", None),  # a call: No
]
FIRST_OF_EACH_KIND = {0, 2, 4, 5}  # the scale, a choice, yes/no, the ticks: axe-core on these


def answer_checkin(page: Any, *, pain_walking: str, symptom: str | None, javascript: bool) -> None:
    """One screen per question, the check-in's eight, then the check of the answers."""
    for index, (kind, value) in enumerate(CHECKIN_SCREENS):
        value = {"pain_walking": pain_walking, "symptom": symptom}.get(str(value), value)
        if kind == "checkbox":
            if value:
                page.locator(f"input[type=checkbox][value={value}]").check()
        elif value is not None:
            page.locator(f"input[type=radio][value='{value}']").check()
        else:
            page.locator("input[type=radio]").nth(1).check()
        if javascript:
            check_screen(page, axe=index in FIRST_OF_EACH_KIND)
        page.locator("button[value=next]").click()


def test_the_patient_answers_from_the_sms_link_on_a_phone_at_200_percent(phone, live_server, demo):
    token, patient_id = link_for("Marcel", "fr")
    page = phone
    page.goto(f"{live_server}/a/{token}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Votre questionnaire de suivi")
    check_screen(page)
    screenshot(page, "answer-link-check.png", full_page=True)
    page.get_by_label("Année de naissance du patient").fill("1941")
    page.get_by_role("button", name="Continuer").click()
    expect(page.locator("#year-error")).to_contain_text("encore essayer 2 fois")
    check_screen(page)
    page.get_by_label("Année de naissance du patient").fill("1940")
    page.get_by_role("button", name="Continuer").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Qui répond ?")
    page.get_by_label("Je suis le patient").check()
    check_screen(page)
    page.get_by_role("button", name="Suivant").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Quelle est votre douleur en ce moment, au repos ?"
    )
    screenshot(page, "answer-link-question.png", full_page=True)
    answer_checkin(page, pain_walking="3", symptom=None, javascript=True)

    expect(page.get_by_role("heading", level=1)).to_have_text("Vérifiez vos réponses")
    check_screen(page)
    page.get_by_role("button", name="Envoyer mes réponses").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Vos réponses ont été envoyées")
    check_screen(page)
    screenshot(page, "answer-link-done.png", full_page=True)

    stored = (
        db.session.execute(db.select(Response).filter_by(patient_id=patient_id)).scalars().all()
    )
    assert [(r.source, r.channel, r.answers["pain_walking"]) for r in stored] == [
        ("patient", "sms", 3)
    ]
    release()
    page.goto(f"{live_server}/a/{token}")
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Ce questionnaire a déjà reçu une réponse"
    )


@pytest.mark.parametrize("phone", [False], indirect=True, ids=["no-javascript"])
def test_a_caregiver_answers_without_javascript_and_sees_the_emergency_advice(
    phone, live_server, demo
):
    token, patient_id = link_for("Yvonne", "en")
    page = phone
    page.goto(f"{live_server}/a/{token}")
    page.get_by_label("Year of birth of the patient").fill("1940")
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("I answer for the patient (a relative or carer)").check()
    page.get_by_role("button", name="Next").click()
    answer_checkin(page, pain_walking="5", symptom="chest_pain", javascript=False)
    expect(page.locator("dl.review")).to_contain_text("Chest pain")
    page.get_by_role("button", name="Send my answers").click()

    advice = page.get_by_role("alert")
    expect(advice).to_contain_text("Call the emergency number now: 15 in France, 112 in the EU.")
    expect(page.get_by_role("link", name="Call 15")).to_have_attribute("href", "tel:15")
    expect(page.locator(".confirm")).to_contain_text("given by a relative or carer")
    screenshot(page, "answer-link-emergency.png", full_page=True)
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    stored = db.session.execute(db.select(Response).filter_by(patient_id=patient_id)).scalar_one()
    assert (stored.source, stored.channel, stored.answers["symptoms"]) == (
        "caregiver",
        "sms",
        ["chest_pain"],
    )
    release()
