"""The patient page changes the status (with the reason), pauses until a date and records
consent, validated exactly as the API validates them."""

from __future__ import annotations

import re

from backend.audit.models import AuditEvent
from backend.extensions import db
from backend.patients.models import Consent, StatusChange
from tests.web.conftest import Pages


def field_error(html: str, field: str) -> str | None:
    match = re.search(rf'<p class="error" id="{re.escape(field)}-error">([^<]*)</p>', html)
    return match.group(1) if match else None


def test_ada_pauses_marcel_until_a_date_with_the_reason_and_sees_it_in_the_history(
    ada_pages, ward, nurse_ada
):
    url = f"/patients/{ward.marcel.id}"
    response = ada_pages.post(
        f"{url}/status",
        {"status": "paused", "reason": "Holiday at his daughter's", "paused_until": "2026-12-10"},
    )
    assert response.status_code == 303 and response.headers["Location"] == url
    page = ada_pages.text(ada_pages.get(url))
    assert "Status changed." in page
    assert re.search(r'id="patient-status">Paused until [^<]*2026', page)
    assert "Holiday at his daughter&#39;s" in page
    [change] = db.session.execute(db.select(StatusChange)).scalars()
    assert (change.to_status, change.changed_by_id) == ("paused", nurse_ada.id)
    [audited] = db.session.execute(
        db.select(AuditEvent).filter_by(action="patient.status.change")
    ).scalars()
    assert audited.details["after"] == "paused" and audited.actor_id == nurse_ada.id


def test_a_status_change_without_a_reason_is_refused_next_to_its_field(ada_pages, ward):
    response = ada_pages.post(
        f"/patients/{ward.marcel.id}/status",
        {"status": "readmitted", "reason": "", "paused_until": "2026-12-10"},
    )
    assert response.status_code == 422
    html = Pages.text(response)
    assert field_error(html, "reason") == "Required."
    assert db.session.execute(db.select(StatusChange)).first() is None
    with_date = ada_pages.post(
        f"/patients/{ward.marcel.id}/status",
        {"status": "readmitted", "reason": "Pneumonia", "paused_until": "2026-12-10"},
    )
    assert field_error(Pages.text(with_date), "paused_until") == "Only for a pause."


def test_ada_records_a_verbal_research_consent_only_with_its_witness(ada_pages, ward):
    url = f"/patients/{ward.marcel.id}/consents"
    form = {
        "purpose": "research",
        "decision": "given",
        "decided_on": "2026-11-22",
        "method": "verbal_witnessed",
    }
    refused = ada_pages.post(url, form)
    assert refused.status_code == 422
    assert field_error(Pages.text(refused), "witness") == "Required for a verbal consent."
    future = ada_pages.post(url, {**form, "decided_on": "2026-12-25", "witness": "Dr Léon"})
    assert field_error(Pages.text(future), "decided_on") == "Must not be in the future."

    accepted = ada_pages.post(url, {**form, "witness": "Dr Léon, IR physician"})
    assert accepted.status_code == 303
    page = ada_pages.text(ada_pages.get(f"/patients/{ward.marcel.id}"))
    assert "Consent recorded." in page
    assert re.search(r"<dt>Research</dt><dd>Given", page)
    assert "Verbally, with a witness (Dr Léon, IR physician)" in page
    research = db.session.execute(db.select(Consent).filter_by(purpose="research")).scalars()
    assert [c.witness for c in research] == ["Dr Léon, IR physician"]


def test_withdrawing_care_consent_on_the_page_ends_the_follow_up_and_the_phone_code(
    ada_pages, ward
):
    url = f"/patients/{ward.marcel.id}"
    response = ada_pages.post(
        f"{url}/consents",
        {
            "purpose": "care",
            "decision": "withdrawn",
            "decided_on": "2026-11-23",
            "method": "paper",
        },
    )
    assert response.status_code == 303
    page = ada_pages.text(ada_pages.get(url))
    assert 'id="patient-status">Withdrawn' in page
    assert "The follow-up has ended" in page and "No phone code: the follow-up has ended." in page
    assert 'id="status-form"' not in page
    # The loosening alert stays for Ada to resolve.
    assert f'href="/alerts/{ward.loosening.id}"' in page
    code = ada_pages.post(f"{url}/enrollment-code")
    assert code.status_code == 303 and code.headers["Location"] == url
    assert "The follow-up of this patient has ended" in ada_pages.text(ada_pages.get(url))
