"""The nurse workflow in a real browser: put an alert aside and see it come back when the clock
moves, acknowledge exactly the ticked alerts, hand the shift over with a note the next nurse
confirms, and the team's figures. Screenshots in docs/screenshots/."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from backend.alerts.models import Alert
from backend.extensions import db
from tests.conftest import make_staff
from tests.e2e.conftest import assert_accessible, release, screenshot
from tests.e2e.test_nurse_pages import ADA, alert_of, sign_in

pytestmark = pytest.mark.e2e


def sign_in_as(page, base: str, email: str, password: str) -> None:
    sign_in(page, base, (email, password))


def test_a_nurse_takes_an_alert_puts_it_aside_and_it_comes_back_on_time(
    page, live_server, demo, clock
):
    gisele = alert_of("Gisèle", "possible_screw_loosening")
    sign_in(page, live_server, ADA)
    page.goto(f"{live_server}/alerts/{gisele.id}")
    page.get_by_role("button", name="Take it").click()
    expect(page.locator(".flash.success")).to_have_text("You have the alert in hand.")
    expect(page.locator(".owner")).to_contain_text("In hand: Ada Martin")

    page.get_by_label("For", exact=True).select_option("4")
    page.get_by_role("button", name="Put aside").click()
    expect(page.locator("#snooze-reason-error")).to_be_visible()  # a reason is required
    page.get_by_label("For", exact=True).select_option("4")
    page.get_by_label("Reason (required)").fill("Seeing her GP this morning; call after.")
    page.get_by_role("button", name="Put aside").click()
    expect(page.locator(".flash.success")).to_contain_text("Alert put aside until")
    expect(page.locator(".history")).to_contain_text("Taken in hand")
    screenshot(page, "alert-snoozed.png", full_page=True)
    assert_accessible(page)

    page.get_by_role("navigation").get_by_role("link", name="Alert queue").click()
    expect(page.locator("table.queue")).not_to_contain_text("Gisèle")
    page.get_by_role("navigation").get_by_role("link", name="Handover").click()
    expect(page.locator("#snoozed-h + ul")).to_contain_text("Gisèle")

    clock.advance(timedelta(hours=4))  # the app's clock: the snooze is over
    page.get_by_role("navigation").get_by_role("link", name="Alert queue").click()
    row = page.locator("table.queue tbody tr", has_text="Gisèle")
    expect(row.locator(".badge.back")).to_have_text("Back from snooze")
    expect(row.locator(".owner")).to_have_text("Ada Martin")
    # At the top of its severity: before every other high alert, after the urgent ones.
    rows = page.locator("table.queue tbody tr")
    first_high = rows.filter(has=page.locator(".badge.sev-high")).first
    expect(first_high).to_contain_text("Gisèle")


def test_a_nurse_acknowledges_exactly_the_alerts_she_ticked(page, live_server, demo):
    sign_in(page, live_server, ADA)
    rows = page.locator("table.queue tbody tr")
    expect(rows).to_have_count(4)

    def statuses() -> dict[str, str]:
        return {
            rows.nth(n).locator("td").nth(3).inner_text(): rows.nth(n)
            .locator("td")
            .nth(5)
            .inner_text()
            for n in range(4)
        }

    before = statuses()
    names = [rows.nth(n).locator("td").nth(3).inner_text() for n in range(4)]
    ticked = [0, 1]  # the two open ones at the top (the others have no box: not open)
    for n in ticked:
        rows.nth(n).get_by_role("checkbox").check()
    page.get_by_label("Comment (required)").fill("Called both back this morning.")
    screenshot(page, "queue-bulk.png", full_page=True)
    page.get_by_role("button", name="Acknowledge the ticked alerts").click()
    expect(page.locator(".flash.success")).to_have_text("2 alerts acknowledged.")
    after = statuses()
    for n, name in enumerate(names):
        if n in ticked:
            assert before[name].startswith("Open") and after[name].startswith("Acknowledged")
        else:
            assert after[name] == before[name], name
    acknowledged = db.session.execute(
        db.select(db.func.count()).select_from(Alert).filter_by(status="acknowledged")
    ).scalar()
    release()
    assert acknowledged == 2 + sum(1 for s in before.values() if s.startswith("Acknowledged"))


def test_a_shift_leaves_a_note_the_next_nurse_confirms_on_the_handover_page(
    page, live_server, demo, browser
):
    sign_in(page, live_server, ADA)
    page.get_by_role("navigation").get_by_role("link", name="Handover").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Handover")
    page.get_by_label("Handover note").fill(
        "Robert Moreau: red flag, call the ED back at 14:00. Gisèle: GP visit today."
    )
    page.get_by_role("button", name="Leave the note").click()
    expect(page.locator(".flash.success")).to_have_text("Handover note left for the next shift.")
    expect(page.locator(".handover-notes")).to_contain_text("Not read by the next shift yet.")

    make_staff("nurse.bea@demo.example", "nurse", "LYON", password="demo-nurse-Bea-2026")
    release()
    night = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-GB")
    other = night.new_page()
    try:
        sign_in_as(other, live_server, "nurse.bea@demo.example", "demo-nurse-Bea-2026")
        other.get_by_role("navigation").get_by_role("link", name="Handover").click()
        expect(other.locator("#overdue-h + ul")).to_contain_text("Gisèle Arnaud")
        screenshot(other, "handover.png", full_page=True)
        assert_accessible(other)
        other.get_by_role("button", name="I have read this note").click()
        expect(other.locator(".handover-notes .read")).to_contain_text(
            re.compile(r"Read by nurse\.bea@demo\.example")
        )
    finally:
        night.close()


def test_the_team_page_shows_each_figure_with_its_table(page, live_server, demo):
    sign_in(page, live_server, ADA)
    page.get_by_role("navigation").get_by_role("link", name="Team").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("How the team is doing")
    expect(page.locator("figure.chart img")).to_have_count(3)
    expect(page.locator("table.metrics").first).to_contain_text("Urgent")
    screenshot(page, "team.png", full_page=True)
    assert_accessible(page)
