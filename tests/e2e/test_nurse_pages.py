"""A nurse's shift in a real browser: sign in, triage the red flag, register a patient.

The ward is `make run`'s demo (nurse Ada Martin at Lyon, nurse Noé Robert at Nantes; Robert's
red flag this morning, Gisèle's relapsing sacroiliac screws, ...). The screenshots of the README
are taken here, so they always show the pages as they are.
"""

from __future__ import annotations

import random
import re
from types import SimpleNamespace
from typing import Any

import pytest
from playwright.sync_api import expect

from backend.alerts.models import Alert
from backend.demo import DEMO_USERS, OTHER_SITE_NURSE
from backend.extensions import db
from backend.patients.models import Patient
from backend.questionnaires.models import Response
from tests.conftest import T0
from tests.e2e.conftest import assert_accessible, release, screenshot
from tests.factories import checkin_answers, record

pytestmark = pytest.mark.e2e

ADA = (DEMO_USERS[0][0], DEMO_USERS[0][3])
NOE = (OTHER_SITE_NURSE[0], OTHER_SITE_NURSE[3])
CODE = re.compile(r"^[2-9A-Z]{5}-[2-9A-Z]{5}$")


def sign_in(page: Any, base: str, who: tuple[str, str]) -> None:
    page.goto(f"{base}/")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    page.get_by_label("E-mail").fill(who[0])
    page.get_by_label("Password").fill(who[1])
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Alert queue")


def tab_to(page: Any, name: str, limit: int = 80) -> None:
    """Move the focus with the Tab key alone until it reaches the control named ``name``."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        focused = page.evaluate("document.activeElement.textContent.trim()")
        if focused == name:
            return
    raise AssertionError(f"{name!r} cannot be reached with the keyboard")


def focus_ring(page: Any) -> str:
    return str(
        page.evaluate(
            "(() => { const s = getComputedStyle(document.activeElement);"
            " return s.outlineStyle + ' ' + s.outlineWidth; })()"
        )
    )


def alert_of(given_name: str, kind: str) -> SimpleNamespace:
    """The ids of a demo patient's alert (read, then the test's transaction ends)."""
    patient = db.session.execute(db.select(Patient).filter_by(given_name=given_name)).scalar_one()
    alert = db.session.execute(
        db.select(Alert).filter_by(patient_id=patient.id, kind=kind)
    ).scalar_one()
    ids = SimpleNamespace(id=alert.id, patient_id=patient.id)
    release()
    return ids


def test_a_nurse_triages_the_red_flag_at_the_top_of_the_queue_to_its_resolution(
    page, live_server, demo
):
    sign_in(page, live_server, ADA)
    rows = page.locator("table.queue tbody tr")
    first = rows.first
    expect(first.locator(".badge").first).to_have_text("Urgent")
    expect(first.get_by_role("link")).to_have_text("Red flag")
    expect(first).to_contain_text("Robert Moreau")
    expect(rows.nth(1).locator(".badge.overdue")).to_have_text("Overdue")
    screenshot(page, "queue.png")

    first.get_by_role("link").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Red flag")
    expect(page.get_by_role("img", name=re.compile("Walking pain, rest pain"))).to_be_visible()
    expect(page.locator(".summary-lead")).to_contain_text("Leg weakness and numbness")
    expect(page.locator("a.phone")).to_have_text("+33600000005")

    # Keyboard only: the Tab key reaches the button, its focus is visible, Enter presses it.
    tab_to(page, "Acknowledge")
    assert focus_ring(page).startswith("solid")
    page.keyboard.press("Enter")
    expect(page.locator(".flash.success")).to_have_text("Alert acknowledged.")
    expect(page.locator(".badges")).to_contain_text("Acknowledged")

    page.get_by_label("Outcome").select_option("sent_to_emergency")
    page.get_by_label("Note (optional)").fill("Leg weakness since this morning: sent to the ED.")
    page.get_by_role("button", name="Resolve").click()
    expect(page.locator(".flash.success")).to_have_text("Alert resolved.")
    expect(page.locator(".triage")).to_contain_text("Sent to the emergency department")
    expect(page.locator(".history")).to_contain_text("Resolved")

    page.get_by_role("navigation").get_by_role("link", name="Alert queue").click()
    expect(page.locator("table.queue")).not_to_contain_text("Robert Moreau")
    expect(rows.first.get_by_role("link")).to_have_text("Possible screw loosening")


def test_the_alert_and_the_patient_show_the_trajectory_with_its_evidence(page, live_server, demo):
    sign_in(page, live_server, ADA)
    page.get_by_role("link", name="Possible screw loosening").click()
    chart = page.locator("svg.trajectory")
    expect(chart).to_be_visible()
    expect(chart.locator(".nadir-ring")).to_have_count(2)
    expect(chart.locator(".alert-line.current")).to_have_count(1)
    expect(page.locator(".findings")).to_contain_text("second report in a row")
    screenshot(page, "alert.png", full_page=True)

    page.get_by_role("link", name="Open the patient's page").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Gisèle Arnaud")
    expect(page.locator(".schedule")).to_contain_text("Confirmation check-in")
    screenshot(page, "patient.png", full_page=True)


def test_a_nurse_registers_a_patient_and_gets_the_code_for_the_phone(
    page, live_server, demo, monkeypatch
):
    # The code is random in life; a seeded one keeps the README's screenshot still.
    monkeypatch.setattr(
        "backend.patients.services.secrets", SimpleNamespace(choice=random.Random(6).choice)
    )
    sign_in(page, live_server, ADA)
    page.get_by_role("link", name="Register a patient").click()
    form = {
        "MRN (hospital number)": "LY-2026-0417",
        "Given name": "Yvonne",
        "Family name": "Garnier",
        "Birth date": "1937-04-02",
        "Mobile phone": "+33611223344",
        "Vertebral level": "L2",
        "Cement volume (mL)": "4",
        "Walking pain (0-10)": "11",
        "Rest pain (0-10)": "6",
    }
    for label, value in form.items():
        page.get_by_label(label).fill(value)
    page.get_by_role("combobox", name="Procedure (required)").select_option("cementoplasty")
    page.get_by_label("Location").select_option("vertebra")
    page.get_by_label("Etiology").select_option("osteoporotic")
    page.get_by_label("SMS").check()
    page.get_by_label("Care consent given on").fill("2026-11-23")
    page.get_by_label("Consent collected").select_option("paper")
    page.get_by_role("button", name="Register and get the phone code").click()

    # The API's schema refuses the walking pain; the error is next to its field.
    expect(page.locator("#baseline-pain_walking-error")).to_have_text("Enter a value from 0 to 10.")
    expect(page.locator("#error-summary")).to_be_focused()
    expect(page.get_by_label("Given name")).to_have_value("Yvonne")  # nothing else is lost
    screenshot(page, "registration.png")

    page.get_by_label("Walking pain (0-10)").fill("8")
    page.get_by_role("button", name="Register and get the phone code").click()
    code = page.locator(".code-sheet .code")
    expect(code).to_have_text(CODE)
    expect(page.locator(".code-sheet svg.qr")).to_be_visible()
    expect(page.locator(".code-sheet")).to_contain_text("Votre suivi à domicile")  # her language
    screenshot(page, "enrollment-code.png")
    assert_accessible(page)

    claim = page.request.post(
        f"{live_server}/api/v1/enrollment/claim",
        data={"code": code.inner_text(), "device": {"platform": "android"}},
    )
    assert claim.status == 201


def test_a_nurse_pauses_readmits_and_records_consent_on_the_patients_page(page, live_server, demo):
    henri = db.session.execute(db.select(Patient).filter_by(given_name="Henri")).scalar_one()
    henri_id = henri.id
    release()
    sign_in(page, live_server, ADA)
    page.goto(f"{live_server}/patients/{henri_id}")

    # A pause until a date, with its reason.
    page.locator("#status").select_option("paused")
    page.locator("#reason").fill("Staying with his son for two weeks")
    page.locator("#paused_until").fill("2026-12-07")
    page.get_by_role("button", name="Change the status").click()
    expect(page.locator(".flash.success")).to_have_text("Status changed.")
    expect(page.locator("#patient-status")).to_contain_text("Paused until")
    expect(page.locator("#status-history")).to_contain_text("Staying with his son for two weeks")

    # A readmission: the reason is required, the error is next to its field.
    page.locator("#status").select_option("readmitted")
    page.get_by_role("button", name="Change the status").click()
    expect(page.locator("#reason-error")).to_have_text("Required.")
    page.locator("#reason").fill("Readmitted to geriatrics for a fall")
    page.get_by_role("button", name="Change the status").click()
    expect(page.locator("#patient-status")).to_have_text("Readmitted")
    expect(page.locator("#status-history li")).to_have_count(2)

    # Research consent, given verbally: only with its witness.
    page.locator("#purpose").select_option("research")
    page.locator("#decision").select_option("given")
    page.locator("#decided_on").fill("2026-11-23")
    page.locator("#method").select_option("verbal_witnessed")
    page.get_by_role("button", name="Record the decision").click()
    expect(page.locator("#witness-error")).to_have_text("Required for a verbal consent.")
    page.locator("#witness").fill("Dr Léon Petit, IR physician")
    page.get_by_role("button", name="Record the decision").click()
    expect(page.locator(".flash.success")).to_have_text("Consent recorded.")
    expect(page.locator("#consent-state")).to_contain_text("ResearchGiven")
    expect(page.locator("#consent-history")).to_contain_text("Dr Léon Petit")

    # Withdrawing care consent ends the follow-up at once.
    page.locator("#purpose").select_option("care")
    page.locator("#decision").select_option("withdrawn")
    page.locator("#decided_on").fill("2026-11-23")
    page.locator("#method").select_option("paper")
    page.get_by_role("button", name="Record the decision").click()
    expect(page.locator("#patient-status")).to_have_text("Withdrawn")
    expect(page.locator("#followup-h + p")).to_contain_text("The follow-up has ended")
    expect(page.get_by_role("button", name="New enrollment code")).to_have_count(0)
    assert db.session.get(Patient, henri_id).status == "withdrawn"
    release()


def test_a_nurse_of_another_site_cannot_open_the_patients_page(page, live_server, demo):
    gisele = alert_of("Gisèle", "possible_screw_loosening")
    sign_in(page, live_server, NOE)
    expect(page.locator(".empty")).to_be_visible()  # Lyon's alerts are not in Nantes' queue
    response = page.goto(f"{live_server}/patients/{gisele.patient_id}")
    assert response.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("Not found")
    expect(page.locator("main")).not_to_contain_text("Gisèle")


def test_a_form_posted_without_its_csrf_token_is_refused(page, live_server, demo):
    gisele = alert_of("Gisèle", "possible_screw_loosening")
    sign_in(page, live_server, ADA)
    page.goto(f"{live_server}/alerts/{gisele.id}")
    page.evaluate("document.querySelectorAll('input[name=csrf_token]').forEach(i => i.remove())")
    with page.expect_response(re.compile(r"/acknowledge$")) as posted:
        page.get_by_role("button", name="Acknowledge").click()
    assert posted.value.status == 400
    expect(page.get_by_role("heading", level=1)).to_have_text("The form was refused")
    assert db.session.get(Alert, gisele.id).status == "open"
    release()


def test_the_queue_refreshes_itself_without_losing_the_nurses_place(page, live_server, demo):
    page.clock.install()  # the page's timers run when the test says, not by waiting
    sign_in(page, live_server, ADA)
    rows = page.locator("table.queue tbody tr")
    expect(rows).to_have_count(4)
    loosening = rows.nth(1).get_by_role("link")
    loosening.focus()
    focused_id = loosening.get_attribute("id")

    henri = db.session.execute(db.select(Patient).filter_by(given_name="Henri")).scalar_one()
    record(henri, T0, answers=checkin_answers(symptoms=["chest_pain"]))  # a second red flag
    release()
    page.clock.run_for(61_000)
    expect(rows).to_have_count(5)
    expect(rows.nth(1)).to_contain_text("Henri Blanc")  # urgent, younger than Robert's
    assert page.evaluate("document.activeElement.id") == focused_id
    expect(page.locator("#queue-status")).to_contain_text("Updated at")


def test_a_nurse_pages_through_a_long_queue_and_back_to_the_most_urgent(
    page, live_server, demo, monkeypatch
):
    from backend.web.views import queue

    monkeypatch.setattr(queue, "QUEUE_PAGE", 3)  # the demo's four alerts make two pages
    page.clock.install()
    sign_in(page, live_server, ADA)
    rows = page.locator("table.queue tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.first).to_contain_text("Robert")  # the red flag first
    counts = page.locator("#queue-counts")
    expect(counts).to_contain_text("4 alerts in this queue")
    expect(counts).to_contain_text("The 3 most urgent are on this page.")
    pages = page.get_by_role("navigation", name="Pages of the queue")
    pages.get_by_role("link", name="Next page").click()
    expect(rows).to_have_count(1)
    expect(counts).to_contain_text("Page 2.")
    assert_accessible(page)  # the second page, with its links
    # The list refreshes itself: still the second page. The refresh replaces the list (and its
    # links) when its answer arrives; the click below waits for that, or on a loaded machine it
    # could land on a link the refresh is about to replace.
    page.locator("#queue .queue-items").evaluate("list => { list.dataset.before = 'refresh'; }")
    page.clock.run_for(61_000)
    expect(page.locator("#queue .queue-items[data-before]")).to_have_count(0)
    expect(rows).to_have_count(1)
    expect(pages.get_by_role("link", name="Next page")).to_have_count(0)
    pages.get_by_role("link", name="First page: the most urgent alerts").click()
    expect(rows).to_have_count(3)
    expect(rows.first).to_contain_text("Robert")


@pytest.mark.parametrize(
    ("width", "height", "scale"),
    [(640, 400, 2), (768, 1024, 1)],
    ids=["1280x800-at-200-percent", "tablet-portrait"],
)
def test_pages_reflow_without_sideways_scrolling(browser, live_server, demo, width, height, scale):
    context = browser.new_context(
        viewport={"width": width, "height": height}, device_scale_factor=scale, locale="en-GB"
    )
    page = context.new_page()
    try:
        sign_in(page, live_server, ADA)
        gisele = alert_of("Gisèle", "possible_screw_loosening")
        for path in ("/", f"/alerts/{gisele.id}", f"/patients/{gisele.patient_id}"):
            page.goto(f"{live_server}{path}")
            overflow = page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, (path, overflow)
    finally:
        context.close()


def test_the_skip_link_is_the_first_stop_of_the_keyboard(page, live_server, demo):
    sign_in(page, live_server, ADA)
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()


def test_a_nurse_records_answers_given_over_the_phone_once_and_reads_out_the_advice(
    page, live_server, demo
):
    josette = db.session.execute(db.select(Patient).filter_by(given_name="Josette")).scalar_one()
    patient_id = josette.id
    release()
    sign_in(page, live_server, ADA)
    page.goto(f"{live_server}/patients/{patient_id}")
    page.get_by_role("link", name="Record a check-in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Answers given over the phone")

    # Josette answers on the phone; Ada forgets one question.
    page.locator("#answers-pain_walking").get_by_label("4", exact=True).check()
    page.get_by_label("Paracetamol or anti-inflammatory only").check()
    page.get_by_label("With a cane").check()
    page.locator("#answers-fell").get_by_label("No").check()
    page.get_by_label("Chest pain").check()
    page.get_by_label("A little worse").check()
    page.locator("#answers-call_request").get_by_label("Yes").check()
    page.get_by_role("button", name="Record the answers").click()
    expect(page.locator(".error-summary")).to_contain_text("1 answer needs a correction")
    expect(page.locator("#answers-pain_rest-error")).to_have_text("Required.")
    expect(page.get_by_label("Chest pain")).to_be_checked()  # nothing else to tick again
    page.locator("#answers-pain_rest").get_by_label("3", exact=True).check()
    screenshot(page, "phone-answer.png", full_page=True)

    # A double click, and the same form sent again later (a retry after a timeout): one
    # answer is stored, and every sending shows it.
    sent = page.evaluate(
        "() => { const f = document.querySelector('form.answers');"
        " return [f.action, Array.from(new FormData(f).entries())]; }"
    )
    page.get_by_role("button", name="Record the answers").dblclick()
    expect(page.get_by_role("heading", level=1)).to_have_text("Answers recorded")
    advice = page.get_by_role("alert")
    expect(advice).to_contain_text("Red flag: tell the patient now")
    expect(advice.locator("[lang=fr]")).to_contain_text("Appelez le 15")
    expect(page.locator(".plain")).to_contain_text("Red flag")
    expect(page.locator(".page-head")).to_contain_text("Entered by Ada Martin after a phone call")
    screenshot(page, "phone-answer-recorded.png", full_page=True)
    assert_accessible(page)
    again = page.evaluate(
        "async ([action, entries]) => (await fetch(action,"
        " {method: 'POST', body: new URLSearchParams(entries)})).url",
        sent,
    )
    assert again == page.url

    stored = (
        db.session.execute(db.select(Response).filter_by(patient_id=patient_id, source="nurse"))
        .scalars()
        .all()
    )
    assert len(stored) == 1 and stored[0].answers["symptoms"] == ["chest_pain"]
    release()
    page.get_by_role("link", name="Back to the patient's page").click()
    expect(page.locator(".check-ins")).to_contain_text("Entered by Ada Martin after a phone call")
