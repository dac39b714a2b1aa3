"""WCAG 2.2 AA on every nurse page, checked by axe-core in the real browser: no serious or
critical violation. (The patients' answer pages are checked in test_answer_link.py, at each
screen of the flow.)"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import assert_accessible
from tests.e2e.test_nurse_pages import ADA, sign_in

pytestmark = pytest.mark.e2e


def test_every_nurse_page_passes_axe_core_wcag_22_aa(page, live_server, demo):
    page.goto(f"{live_server}/login")
    assert_accessible(page)
    sign_in(page, live_server, ADA)
    assert_accessible(page)  # the queue

    page.get_by_role("link", name="Possible screw loosening").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Possible screw loosening")
    assert_accessible(page)  # an alert with its evidence and chart

    page.get_by_role("link", name="Open the patient's page").click()
    assert_accessible(page)  # a patient

    enter = page.get_by_role("link", name="Enter the answers given over the phone")
    if enter.count():
        enter.first.click()
    else:
        page.goto(page.url + "/answers/new")
    expect(page.get_by_role("heading", level=1)).to_have_text("Answers given over the phone")
    assert_accessible(page)  # answers over the phone

    page.get_by_role("navigation").get_by_role("link", name="Patients").click()
    assert_accessible(page)  # the patients list

    page.get_by_role("navigation").get_by_role("link", name="Handover").click()
    assert_accessible(page)  # the handover
    page.get_by_role("button", name="Leave the note").click()
    assert_accessible(page)  # the handover with its error

    page.get_by_role("navigation").get_by_role("link", name="Team").click()
    assert_accessible(page)  # the team's figures

    page.get_by_role("navigation").get_by_role("link", name="Register a patient").click()
    assert_accessible(page)  # registration
    page.get_by_role("button", name=re.compile("Register")).click()
    assert_accessible(page)  # registration with its errors
