"""Who can reach which page: built from the URL map, like the API's access matrix.

A new page without an entry here fails ``test_every_page_has_an_access_rule``. Signed-out
visitors are sent to the sign-in page; a nurse of another site gets the same 404 as for an id
that does not exist, for reading and for every form.
"""

from __future__ import annotations

import pytest

from backend.extensions import db
from backend.questionnaires.models import Response
from tests.conftest import T0
from tests.web.conftest import Pages

PUBLIC = "public"
SIGNED_IN = "signed_in"  # any staff member, answering within their own site
SITE = "site"  # staff of the object's site only
PHYSICIANS = "physicians"  # physicians and admins of the site; nurses 403 (research)

PAGE_RULES = {
    ("GET", "/login"): PUBLIC,
    ("POST", "/login"): PUBLIC,
    ("POST", "/language"): PUBLIC,
    ("GET", "/assets/<path:filename>"): PUBLIC,
    ("POST", "/logout"): SIGNED_IN,
    ("GET", "/"): SIGNED_IN,
    ("GET", "/queue/items"): SIGNED_IN,
    ("GET", "/patients"): SIGNED_IN,
    ("GET", "/patients/new"): SIGNED_IN,
    ("POST", "/patients/new"): SIGNED_IN,
    ("GET", "/alerts/<uuid:alert_id>"): SITE,
    ("POST", "/alerts/<uuid:alert_id>/acknowledge"): SITE,
    ("POST", "/alerts/<uuid:alert_id>/resolve"): SITE,
    ("POST", "/alerts/<uuid:alert_id>/notes"): SITE,
    ("GET", "/patients/<uuid:patient_id>"): SITE,
    ("GET", "/patients/<uuid:patient_id>/enrollment-code"): SITE,
    ("POST", "/patients/<uuid:patient_id>/enrollment-code"): SITE,
    ("POST", "/patients/<uuid:patient_id>/devices/<uuid:device_id>/revoke"): SITE,
    ("POST", "/patients/<uuid:patient_id>/status"): SITE,
    ("POST", "/patients/<uuid:patient_id>/consents"): SITE,
    ("GET", "/patients/<uuid:patient_id>/answers/new"): SITE,
    ("POST", "/patients/<uuid:patient_id>/answers/new"): SITE,
    ("GET", "/patients/<uuid:patient_id>/answers/<uuid:response_id>"): SITE,
    ("GET", "/research"): PHYSICIANS,
    # The nurse workflow (docs/nurse-workflow.md).
    ("POST", "/alerts/<uuid:alert_id>/owner"): SITE,
    ("POST", "/alerts/<uuid:alert_id>/snooze"): SITE,
    ("POST", "/alerts/<uuid:alert_id>/target"): SITE,
    ("POST", "/alerts/<uuid:alert_id>/calls"): SITE,
    ("POST", "/alerts/acknowledgements"): SIGNED_IN,  # the ticked ids: another site's is a 404
    ("GET", "/handover"): SIGNED_IN,
    ("POST", "/handover/notes"): SIGNED_IN,
    ("POST", "/handover/notes/<uuid:note_id>/read"): SITE,
    ("GET", "/team"): SIGNED_IN,
}


def page_endpoints(app) -> list[tuple[str, str]]:
    return [
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("web.")
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"})
    ]


def test_every_page_has_an_access_rule(app):
    missing = [e for e in page_endpoints(app) if e not in PAGE_RULES]
    assert not missing, f"add these pages to PAGE_RULES: {missing}"


def handover_note_of(ward) -> str:
    """A note Lyon's previous shift left (written once per test)."""
    from backend.alerts.models import HandoverNote
    from backend.auth.models import User

    note = db.session.execute(
        db.select(HandoverNote).filter_by(site_id=ward.marcel.site_id)
    ).scalar_one_or_none()
    if note is None:
        author = db.session.execute(
            db.select(User).filter_by(site_id=ward.marcel.site_id).limit(1)
        ).scalar_one()
        note = HandoverNote(
            site_id=author.site_id, author_id=author.id, text="Quiet night.", created_at=T0
        )
        db.session.add(note)
        db.session.commit()
    return str(note.id)


def concrete(path: str, ward) -> str:
    if "<uuid:note_id>" in path:
        path = path.replace("<uuid:note_id>", handover_note_of(ward))
    answer = db.session.execute(
        db.select(Response.id).filter_by(patient_id=ward.marcel.id).limit(1)
    ).scalar_one()
    return (
        path.replace("<uuid:alert_id>", str(ward.loosening.id))
        .replace("<uuid:patient_id>", str(ward.marcel.id))
        .replace("<uuid:device_id>", "00000000-0000-4000-8000-000000000000")
        .replace("<uuid:response_id>", str(answer))
    )


def call(pages: Pages, method: str, path: str):
    return pages.get(path) if method == "GET" else pages.post(path)


@pytest.mark.parametrize(
    ("method", "path"), sorted(k for k, v in PAGE_RULES.items() if v != PUBLIC)
)
def test_signed_out_visitors_are_sent_to_the_sign_in_page(pages, ward, method, path):
    response = call(pages, method, concrete(path, ward))
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")
    assert "Marcel" not in Pages.text(response)


def test_a_nurse_of_another_site_reaches_none_of_the_sites_objects(pages, ward, nurse_noe):
    pages.sign_in(nurse_noe)
    for (method, path), access in sorted(PAGE_RULES.items()):
        if access != SITE:
            continue
        response = call(pages, method, concrete(path, ward))
        assert response.status_code == 404, (method, path, response.status_code)
        assert "Marcel" not in Pages.text(response) and str(ward.marcel.id) not in Pages.text(
            response
        )


def test_the_patient_list_searches_by_name_or_mrn_and_status_within_the_site(
    ada_pages, ward, nurse_noe
):
    from tests.factories import make_patient

    make_patient(nurse_noe, given_name="Marcel", family_name="Nantais", mrn="NA-0001")
    by_name = ada_pages.text(ada_pages.get("/patients?q=dupont"))
    assert "Dupont, Marcel" in by_name and "Moreau" not in by_name
    by_mrn = ada_pages.text(ada_pages.get("/patients?q=ly-0002"))
    assert "Moreau, Robert" in by_mrn and "Dupont" not in by_mrn
    everyone_called_marcel = ada_pages.text(ada_pages.get("/patients?q=marcel"))
    assert "Nantais" not in everyone_called_marcel  # another site's Marcel stays invisible
    none_paused = ada_pages.text(ada_pages.get("/patients?status=paused"))
    assert "No patient matches this search." in none_paused
    assert ada_pages.get("/patients?status=asleep").status_code == 200  # ignored, not a crash
