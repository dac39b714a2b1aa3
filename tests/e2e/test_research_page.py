"""Dr Léon reads the demo cohort's outcomes in a real browser; the README's screenshot."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from backend.demo import DEMO_USERS
from tests.e2e.conftest import assert_accessible, screenshot

pytestmark = pytest.mark.e2e

LEON = (DEMO_USERS[1][0], DEMO_USERS[1][3])


def test_the_physician_reads_outcomes_by_group_with_figures_and_tables(page, live_server, demo):
    page.goto(f"{live_server}/")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    page.get_by_label("E-mail").fill(LEON[0])
    page.get_by_label("Password").fill(LEON[1])
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Research").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Outcomes after bone consolidation")
    figures = page.locator("figure.chart img")
    expect(figures).to_have_count(4)
    for i in range(4):  # every figure decoded and laid out by the browser
        assert page.evaluate(
            "(el) => el.complete && el.naturalWidth > 0", figures.nth(i).element_handle()
        )
    expect(page.get_by_role("rowheader", name="Cement-augmented screws").first).to_be_visible()
    page.get_by_label("Group by").select_option("etiology")
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(r"group=etiology"))
    expect(page.get_by_role("rowheader", name=re.compile("^Osteoporo")).first).to_be_visible()
    page.get_by_label("Group by").select_option("kind")
    page.get_by_role("button", name="Show").click()
    screenshot(page, "research.png", full_page=True)
    assert_accessible(page)
