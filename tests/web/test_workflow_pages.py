"""The nurse workflow on the pages (Flask's test client, SQLite and PostgreSQL): owner, snooze,
calls, bulk acknowledge of the ticked alerts, the handover page and the team page."""

from __future__ import annotations

from datetime import timedelta

from backend.alerts.models import Alert
from backend.audit.models import AuditEvent
from backend.extensions import db
from tests.conftest import make_staff
from tests.web.conftest import Pages


def stored(alert: Alert) -> Alert:
    db.session.expire_all()
    return db.session.get(Alert, alert.id)


def test_the_queue_shows_new_alerts_and_their_owner_and_filters_mine(ada_pages, ward, nurse_ada):
    html = Pages.text(ada_pages.get("/"))
    assert html.count('class="badge new"') == 2 and "Shared queue" in html
    ada_pages.get(f"/alerts/{ward.loosening.id}")  # opening it takes the mark off
    response = ada_pages.post(f"/alerts/{ward.loosening.id}/owner", {"action": "take"})
    assert response.status_code == 303
    html = Pages.text(ada_pages.get("/"))
    assert html.count('class="badge new"') == 1
    mine = Pages.text(ada_pages.get("/?owner=me"))
    assert "Dupont" in mine and "Moreau" not in mine
    assert stored(ward.loosening).owner_id == nurse_ada.id


def test_a_nurse_who_takes_an_alert_someone_took_first_is_told_who(
    ada_pages, ward, client, any_app
):
    bea = make_staff("bea@lyon.example", "nurse", "LYON")
    other = Pages(any_app.test_client())
    other.sign_in(bea)
    assert other.post(f"/alerts/{ward.loosening.id}/owner", {"action": "take"}).status_code == 303
    late = ada_pages.post(
        f"/alerts/{ward.loosening.id}/owner",
        {"action": "take", "expected_owner_id": ""},
        follow_redirects=True,
    )
    assert "Nothing changed: bea@lyon.example took this alert first." in Pages.text(late)
    assert stored(ward.loosening).owner_id == bea.id


def test_snoozing_needs_a_reason_and_urgent_alerts_offer_no_snooze(ada_pages, ward, clock):
    url = f"/alerts/{ward.loosening.id}/snooze"
    refused = ada_pages.post(url, {"hours": "4", "reason": ""})
    assert refused.status_code == 422 and 'id="snooze-reason-error"' in Pages.text(refused)
    assert stored(ward.loosening).snoozed_until is None
    done = ada_pages.post(url, {"hours": "4", "reason": "At the GP"}, follow_redirects=True)
    assert "Alert put aside until" in Pages.text(done)
    assert stored(ward.loosening).snoozed_until == clock.now() + timedelta(hours=4)
    assert "Dupont" not in Pages.text(ada_pages.get("/"))
    urgent = Pages.text(ada_pages.get(f"/alerts/{ward.red_flag.id}"))
    assert "An urgent alert cannot be put aside." in urgent and 'id="snooze-hours"' not in urgent


def test_the_call_buttons_record_each_attempt(ada_pages, ward):
    url = f"/alerts/{ward.red_flag.id}/calls"
    ada_pages.post(url, {"result": "no_answer"})
    page = ada_pages.post(
        url, {"result": "spoke", "note": "Going to the ED."}, follow_redirects=True
    )
    html = Pages.text(page)
    assert "Call attempt recorded." in html and html.count("Called, no answer") >= 2
    attempts = [e for e in stored(ward.red_flag).history if e.action == "call_attempt"]
    assert [e.details["result"] for e in attempts] == ["no_answer", "spoke"]


def test_bulk_acknowledge_acknowledges_exactly_the_ticked_alerts(ada_pages, ward):
    no_comment = ada_pages.post("/alerts/acknowledgements", {"alert_ids": [str(ward.red_flag.id)]})
    assert no_comment.status_code == 422 and 'id="bulk-comment-error"' in Pages.text(no_comment)
    none_ticked = ada_pages.post("/alerts/acknowledgements", {"comment": "Seen"})
    assert none_ticked.status_code == 422
    assert "Tick the alerts to acknowledge." in Pages.text(none_ticked)
    assert stored(ward.red_flag).status == "open"
    done = ada_pages.post(
        "/alerts/acknowledgements",
        {"alert_ids": [str(ward.red_flag.id)], "comment": "Called, on his way to the ED."},
        follow_redirects=True,
    )
    assert "1 alerts acknowledged." in Pages.text(done)
    assert stored(ward.red_flag).status == "acknowledged"
    assert stored(ward.loosening).status == "open"  # not ticked, not touched


def test_another_sites_nurse_cannot_acknowledge_lyons_alerts_in_bulk(pages, ward, nurse_noe):
    pages.sign_in(nurse_noe)
    response = pages.post(
        "/alerts/acknowledgements", {"alert_ids": [str(ward.red_flag.id)], "comment": "x"}
    )
    assert response.status_code == 404 and "Moreau" not in Pages.text(response)
    assert stored(ward.red_flag).status == "open"


def test_the_handover_page_shows_the_shift_and_the_next_one_confirms_the_note(
    ada_pages, ward, any_app, clock
):
    assert ada_pages.post("/handover/notes", {"text": ""}).status_code == 422
    ada_pages.post("/handover/notes", {"text": "Call Mr Moreau back first."})
    html = Pages.text(ada_pages.get("/handover"))
    assert "Call Mr Moreau back first." in html and "Not read by the next shift yet." in html
    assert "Red flag" in html and "New since my last shift" in html
    bea = make_staff("bea@lyon.example", "nurse", "LYON")
    night = Pages(any_app.test_client())
    night.sign_in(bea)
    page = Pages.text(night.get("/handover"))
    assert "I have read this note" in page
    from backend.alerts.models import HandoverNote

    note = db.session.execute(db.select(HandoverNote)).scalar_one()
    confirmed = night.post(f"/handover/notes/{note.id}/read", follow_redirects=True)
    assert "Read by bea@lyon.example" in Pages.text(confirmed)
    audited = (
        db.session.execute(db.select(AuditEvent).filter_by(action="alert.list")).scalars().all()
    )
    assert any(e.details.get("via") == "web-handover" for e in audited)


def test_the_team_page_shows_its_figures_with_their_tables(ada_pages, ward):
    response = ada_pages.get("/team")
    assert response.status_code == 200
    html = Pages.text(response)
    assert html.count('src="data:image/svg+xml;base64,') == 3
    assert "Time to acknowledge, per week" in html and "Per 100 patient-weeks" in html
    assert "Red flag" in html  # the rates table names the kinds in words


def test_the_queue_refresh_records_one_list_event_per_refresh(ada_pages, ward):
    for _ in range(3):
        ada_pages.get("/queue/items")
    refreshes = [
        e
        for e in db.session.execute(db.select(AuditEvent).filter_by(action="alert.list")).scalars()
        if e.details.get("via") == "web-refresh"
    ]
    assert len(refreshes) == 3 and all(len(e.details["alert_ids"]) == 2 for e in refreshes)
