"""The queue, the alert page and the patient page: order, filters, triage, isolation, audit."""

from __future__ import annotations

import re

import pytest

from backend.alerts.models import Alert
from backend.audit.models import AuditEvent
from backend.extensions import db
from tests.conftest import bearer, login
from tests.web.conftest import Pages

ALERT_LINK = re.compile(r'id="alert-([0-9a-f-]{36})"')


def page_views(action: str) -> list[AuditEvent]:
    return [
        e
        for e in db.session.execute(db.select(AuditEvent).filter_by(action=action)).scalars()
        if e.details.get("via") == "web"
    ]


def queue_ids(pages: Pages, query: str = "") -> list[str]:
    return ALERT_LINK.findall(pages.text(pages.get(f"/{query}")))


def test_the_queue_shows_the_api_queue_in_the_api_order(ada_pages, ward, client, nurse_ada):
    api = client.get("/api/v1/alerts", headers=bearer(login(client, nurse_ada)["access_token"]))
    assert queue_ids(ada_pages) == [item["id"] for item in api.get_json()["items"]]
    assert queue_ids(ada_pages)[0] == str(ward.red_flag.id)  # urgent first


def test_the_queue_says_severity_in_words_marks_overdue_and_shows_the_summary(ada_pages, ward):
    html = Pages.text(ada_pages.get("/"))
    row = html[html.index(f'id="alert-{ward.loosening.id}"') - 600 :]
    assert "High" in row[:700] and "Overdue" in row[:700]  # opened days ago: past its 24 h
    assert ward.loosening.summary["en"] in html
    assert "Marcel Dupont" in html and "LY-0001" in html
    assert "1 hour ago" in html  # the red flag's age


@pytest.mark.parametrize(
    ("query", "expected"),
    [("?severity=urgent", ["red_flag"]), ("?kind=possible_screw_loosening", ["loosening"])],
)
def test_the_queue_filters_by_severity_and_kind(ada_pages, ward, query, expected):
    ids = {"red_flag": str(ward.red_flag.id), "loosening": str(ward.loosening.id)}
    assert queue_ids(ada_pages, query) == [ids[name] for name in expected]


def test_an_unknown_filter_value_is_a_400_page(ada_pages, ward):
    response = ada_pages.get("/?severity=apocalyptic")
    assert response.status_code == 400 and response.mimetype == "text/html"


def test_the_refresh_fragment_is_the_queue_alone(ada_pages, ward):
    html = Pages.text(ada_pages.get("/queue/items"))
    assert ALERT_LINK.findall(html)[0] == str(ward.red_flag.id)
    assert "<html" not in html


def test_the_alert_page_shows_summary_evidence_contact_chart_and_history(ada_pages, ward):
    html = Pages.text(ada_pages.get(f"/alerts/{ward.loosening.id}"))
    assert ward.loosening.summary["en"] in html
    assert "Walking pain 6/10 against a best of 2/10" in html  # the evidence, in words
    assert "Mechanical sign (clicking)" in html
    assert 'href="tel:+33612345678"' in html  # whom to call
    assert '<svg class="trajectory"' in html
    assert "Opened" in html and "the system" in html  # the history


def test_a_nurse_acknowledges_then_resolves_with_an_outcome_and_a_note(ada_pages, ward, nurse_ada):
    path = f"/alerts/{ward.red_flag.id}"
    assert ada_pages.post(f"{path}/acknowledge").status_code == 303
    assert "Alert acknowledged." in Pages.text(ada_pages.get(path))
    resolved = ada_pages.post(
        f"{path}/resolve", {"outcome": "sent_to_emergency", "note": "Sent to the ED by taxi."}
    )
    assert resolved.status_code == 303
    alert = db.session.get(Alert, ward.red_flag.id)
    db.session.refresh(alert)
    assert (alert.status, alert.outcome, alert.resolved_by_id) == (
        "resolved",
        "sent_to_emergency",
        nurse_ada.id,
    )
    html = Pages.text(ada_pages.get(path))
    assert "Sent to the ED by taxi." in html and "Sent to the emergency department" in html
    assert str(ward.red_flag.id) not in queue_ids(ada_pages)  # gone from the open queue
    assert str(ward.red_flag.id) in queue_ids(ada_pages, "?status=resolved")


def test_resolving_without_an_outcome_shows_the_error_next_to_the_field(ada_pages, ward):
    response = ada_pages.post(f"/alerts/{ward.red_flag.id}/resolve", {"outcome": ""})
    assert response.status_code == 422
    html = Pages.text(response)
    assert 'id="resolve-outcome" name="outcome" required aria-invalid="true"' in html
    assert 'id="resolve-outcome-error"' in html
    assert db.session.get(Alert, ward.red_flag.id).status == "open"


def test_a_note_can_be_added_at_any_time(ada_pages, ward):
    assert (
        ada_pages.post(
            f"/alerts/{ward.loosening.id}/notes", {"text": "Left a message."}
        ).status_code
        == 303
    )
    assert "Left a message." in Pages.text(ada_pages.get(f"/alerts/{ward.loosening.id}"))
    assert ada_pages.post(f"/alerts/{ward.loosening.id}/notes", {"text": " "}).status_code == 422


def test_acknowledging_an_alert_someone_else_acknowledged_changes_nothing_and_says_so(
    ada_pages, ward
):
    ada_pages.post(f"/alerts/{ward.red_flag.id}/acknowledge")
    again = ada_pages.post(f"/alerts/{ward.red_flag.id}/acknowledge")
    assert again.status_code == 303
    assert "someone else updated this alert first" in Pages.text(
        ada_pages.get(f"/alerts/{ward.red_flag.id}")
    )


def test_the_patient_page_shows_procedure_baseline_schedule_and_chart(ada_pages, ward):
    html = Pages.text(ada_pages.get(f"/patients/{ward.marcel.id}"))
    assert "Screw fixation" in html and "Sacroiliac, Left" in html
    assert "8/10" in html  # walking pain before the procedure
    assert html.count('class="status-word s-completed"') == 0  # unscheduled check-ins only
    assert 'class="status-word s-missed"' in html  # days 1 to 21 closed unanswered
    assert 'class="nadir-ring"' in html and 'class="alert-line sev-high' in html
    assert "6 check-ins outside the schedule" in html
    assert html.count("Sent by the patient") == 6  # who entered each one


def test_a_nurse_of_another_site_gets_the_not_found_page(pages, ward, nurse_noe):
    pages.sign_in(nurse_noe)
    for path in (
        f"/patients/{ward.marcel.id}",
        f"/alerts/{ward.loosening.id}",
        f"/patients/{ward.marcel.id}/enrollment-code",
    ):
        response = pages.get(path)
        assert response.status_code == 404, path
        assert "Not found" in Pages.text(response) and "Marcel" not in Pages.text(response)
    refused = pages.post(f"/alerts/{ward.loosening.id}/acknowledge")
    assert refused.status_code == 404
    assert db.session.get(Alert, ward.loosening.id).status == "open"
    assert queue_ids(pages) == [] and "Marcel" not in Pages.text(pages.get("/patients"))


def test_every_page_view_of_patient_data_is_audited_like_the_api_reads(ada_pages, ward, nurse_ada):
    ada_pages.get("/")
    (queue_read,) = page_views("alert.list")  # one event for the list, naming what it showed
    assert set(queue_read.details["alert_ids"]) == {str(ward.red_flag.id), str(ward.loosening.id)}
    assert queue_read.details["patient_ids"] == sorted({str(ward.marcel.id), str(ward.robert.id)})
    assert queue_read.actor_id == nurse_ada.id
    ada_pages.get(f"/alerts/{ward.loosening.id}")
    ada_pages.get(f"/patients/{ward.robert.id}")
    timeline_reads = page_views("patient.timeline.read")
    assert [e.patient_id for e in timeline_reads] == [ward.marcel.id, ward.robert.id]
    assert all(e.actor_id == nurse_ada.id and e.actor_role == "nurse" for e in timeline_reads)
    ada_pages.get("/patients")
    assert {e.patient_id for e in page_views("patient.read")} == {ward.marcel.id, ward.robert.id}


def test_pages_are_not_cached_framed_or_scripted_from_elsewhere(ada_pages, ward):
    response = ada_pages.get(f"/alerts/{ward.loosening.id}")
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Frame-Options"] == "DENY"
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy


def _enroll_phone(client, patient_id, nurse_headers, platform="android") -> dict:
    code = client.post(
        f"/api/v1/patients/{patient_id}/enrollment-codes", headers=nurse_headers
    ).get_json()["code"]
    claim = client.post(
        "/api/v1/enrollment/claim", json={"code": code, "device": {"platform": platform}}
    )
    assert claim.status_code == 201
    return dict(claim.get_json())


def test_a_nurse_cuts_off_a_lost_phone_from_the_patient_page(ada_pages, ward, ada_headers):

    lost = _enroll_phone(ada_pages.client, ward.marcel.id, ada_headers)
    page = Pages.text(ada_pages.get(f"/patients/{ward.marcel.id}"))
    assert "Enrolled phones" in page and "Cut off this phone" in page
    action = re.search(r'action="(/patients/[^"]+/devices/[^"]+/revoke)"', page).group(1)
    response = ada_pages.post(action)
    assert response.status_code == 303
    assert (
        ada_pages.client.get("/api/v1/me", headers=bearer(lost["access_token"])).status_code == 401
    )
    page = Pages.text(ada_pages.get(f"/patients/{ward.marcel.id}"))
    assert "Cut off this phone" not in page and "Cut off" in page
    event = db.session.execute(
        db.select(AuditEvent).filter_by(action="device.revoke", patient_id=ward.marcel.id)
    ).scalar_one()
    assert event.actor_type == "user"


def test_a_new_code_from_the_page_may_cut_off_the_phones_enrolled_before(
    ada_pages, ward, ada_headers
):

    old = _enroll_phone(ada_pages.client, ward.marcel.id, ada_headers)
    ada_pages.post(f"/patients/{ward.marcel.id}/enrollment-code", {"revoke_devices": "1"})
    assert (
        ada_pages.client.get("/api/v1/me", headers=bearer(old["access_token"])).status_code == 401
    )


def test_the_queue_page_runs_as_many_statements_for_twelve_alerts_as_for_two(
    ada_pages, nurse_ada, clock
):
    from tests.statements import counted_statements
    from tests.test_statement_budgets import PAGE_BUDGETS, red_flags, shown

    red_flags(nurse_ada, clock, 2, acknowledged=1)
    with counted_statements() as few:
        assert len(queue_ids(ada_pages)) == 2
    red_flags(nurse_ada, clock, 10, acknowledged=5)
    with counted_statements() as many:
        assert len(queue_ids(ada_pages)) == 12
    assert len(many) == len(few), shown(many)
    # The page's own session check stands in for the API's bearer token; the API's budget and
    # the counts per severity.
    assert len(many) <= PAGE_BUDGETS["/"], shown(many)


NEXT_PAGE = re.compile(r'<a rel="next" href="([^"]+)"')
FIRST_PAGE = re.compile(r'<nav class="pager"[^>]*>\s*<a href="([^"]+)"')


def next_link(html: str) -> str | None:
    found = NEXT_PAGE.search(html)
    return found.group(1).replace("&amp;", "&") if found else None


@pytest.fixture
def small_pages(monkeypatch):
    """Pages of 3 alerts, so that a few alerts make several pages."""
    from backend.web.views import queue

    monkeypatch.setattr(queue, "QUEUE_PAGE", 3)


@pytest.mark.usefixtures("small_pages")
def test_the_queue_page_shows_the_most_urgent_first_and_pages_through_all_of_them_in_api_order(
    ada_pages, ward, client, nurse_ada, clock
):
    from tests.test_statement_budgets import red_flags

    red_flags(nurse_ada, clock, 5, acknowledged=2)  # seven alerts: three pages of three
    api = client.get(
        "/api/v1/alerts?limit=200", headers=bearer(login(client, nurse_ada)["access_token"])
    )
    expected = [item["id"] for item in api.get_json()["items"]]
    shown, path, pages = [], "/", 0
    while path:
        html = Pages.text(ada_pages.get(path))
        shown += ALERT_LINK.findall(html)
        pages += 1
        if pages > 1:  # a way back to the top from every later page
            assert FIRST_PAGE.search(html).group(1) == "/"
            assert f"Page {pages}." in html
        path = next_link(html)
    assert (pages, shown) == (3, expected)  # each alert once, in the API's order
    assert shown[0] == str(ward.red_flag.id)


@pytest.mark.usefixtures("small_pages")
def test_the_queue_page_counts_every_alert_of_the_queue_per_severity_with_the_overdue_ones(
    ada_pages, ward, nurse_ada, clock
):
    from tests.test_statement_budgets import red_flags

    red_flags(nurse_ada, clock, 3)
    html = Pages.text(ada_pages.get("/"))
    counts = html[html.index('id="queue-counts"') :][:600]
    # Four red flags (none past its 4 hours yet), the loosening (high, overdue); three shown.
    assert "5 alerts in this queue" in counts
    assert "Urgent: 4</span>" in counts and "High: 1 (1 overdue)" in counts
    assert "Routine" not in counts
    assert "The 3 most urgent are on this page." in counts
    assert next_link(html) is not None


@pytest.mark.usefixtures("small_pages")
def test_the_next_page_of_a_filtered_queue_keeps_its_filters(ada_pages, ward, nurse_ada, clock):
    from tests.test_statement_budgets import red_flags

    red_flags(nurse_ada, clock, 4)
    html = Pages.text(ada_pages.get("/?severity=urgent"))
    assert "5 alerts in this queue" in html and "High" not in html[: html.index("<table")][-400:]
    later = next_link(html)
    assert "severity=urgent" in later and "cursor=" in later
    second = Pages.text(ada_pages.get(later))
    assert len(ALERT_LINK.findall(second)) == 2 and next_link(second) is None
    assert FIRST_PAGE.search(second).group(1) == "/?severity=urgent"


def test_a_broken_link_to_a_page_of_the_queue_is_a_400_page(ada_pages, ward):
    response = ada_pages.get("/?cursor=not-a-cursor&page=2")
    assert response.status_code == 400 and response.mimetype == "text/html"


def test_a_queue_of_one_page_has_no_page_links(ada_pages, ward):
    html = Pages.text(ada_pages.get("/"))
    assert "2 alerts in this queue" in html
    assert 'class="pager"' not in html and "most urgent are on this page" not in html
