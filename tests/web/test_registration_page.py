"""Registration at discharge: the API's validation next to each field, then the code, once."""

from __future__ import annotations

import re

import segno

from backend.audit.models import AuditEvent
from backend.extensions import db
from backend.patients.models import Patient
from backend.questionnaires.models import Assignment
from backend.web.views.patients import qr_svg
from tests.web.conftest import Pages

CODE = re.compile(r'<p class="code"[^>]*>([2-9A-Z]{5}-[2-9A-Z]{5})</p>')


def josette(**changes: str) -> dict[str, object]:
    """Josette, 91, vertebroplasty at L1, going home today with her phone."""
    form: dict[str, object] = {
        "mrn": "LY-9001",
        "given_name": "Josette",
        "family_name": "Lefèvre",
        "birth_date": "1935-05-14",
        "sex": "female",
        "phone": "+33612345678",
        "email": "",
        "locale": "fr",
        "timezone": "Europe/Paris",
        "contact_channels": ["push", "sms"],
        "consent_given_on": "2026-11-21",
        "consent_method": "paper",
        "kind": "cementoplasty",
        "location": "vertebra",
        "vertebral_level": "L1",
        "etiology": "osteoporotic",
        "performed_on": "2026-11-21",
        "discharged_on": "2026-11-23",
        "cement_volume_ml": "4.5",
        "baseline-pain_walking": "8",
        "baseline-pain_rest": "6",
        "baseline-mobility_score": "6",
        "baseline-analgesics": "weak_opioid",
        "baseline-walking_aid": "walker",
    }
    form.update(changes)
    return form


def field_error(html: str, field: str) -> str | None:
    match = re.search(rf'<p class="error" id="{re.escape(field)}-error">([^<]*)</p>', html)
    return match.group(1) if match else None


def test_registration_creates_the_patient_the_procedure_its_schedule_and_shows_the_code(
    ada_pages, nurse_ada
):
    response = ada_pages.post("/patients/new", josette())
    assert response.status_code == 303
    patient = db.session.execute(db.select(Patient).filter_by(mrn="LY-9001")).scalar_one()
    assert response.headers["Location"] == f"/patients/{patient.id}/enrollment-code"
    assert patient.site_id == nurse_ada.site_id and patient.contact_channels == ["push", "sms"]
    procedure = patient.current_procedure
    assert (procedure.kind, procedure.baseline_pain_walking, float(procedure.cement_volume_ml)) == (
        "cementoplasty",
        8,
        4.5,
    )
    schedule = db.session.execute(db.select(Assignment).filter_by(patient_id=patient.id)).scalars()
    assert len(list(schedule)) > 5
    page = Pages.text(ada_pages.get(response.headers["Location"]))
    code = CODE.search(page).group(1)
    assert 'class="qr"' in page and "<title>" + code + "</title>" in page
    # The code is a working enrollment code: the phone claims it through the API.
    claim = ada_pages.client.post(
        "/api/v1/enrollment/claim", json={"code": code, "device": {"platform": "android"}}
    )
    assert claim.status_code == 201 and claim.get_json()["patient"]["id"] == str(patient.id)


def test_the_code_is_shown_once(ada_pages):
    location = ada_pages.post("/patients/new", josette()).headers["Location"]
    assert CODE.search(Pages.text(ada_pages.get(location)))
    again = Pages.text(ada_pages.get(location))
    assert not CODE.search(again) and "shown only once" in again


def test_a_new_code_can_be_issued_from_the_patient_page(ada_pages, ward):
    response = ada_pages.post(f"/patients/{ward.marcel.id}/enrollment-code")
    assert CODE.search(Pages.text(ada_pages.get(response.headers["Location"])))


def test_the_printed_sheet_is_in_the_patients_language(ada_pages):
    location = ada_pages.post("/patients/new", josette(locale="fr")).headers["Location"]
    page = Pages.text(ada_pages.get(location))  # the nurse reads English
    assert "Code for Josette Lefèvre's phone" in page
    assert "Votre suivi à domicile" in page and "appelez le 15" in page


def test_the_qr_code_is_a_full_qr_code_phones_can_read():
    qr = segno.make_qr("7KQ4M-XR9TD", error="m")
    assert not qr.is_micro
    assert 'class="qr"' in qr_svg("7KQ4M-XR9TD")


def test_errors_are_the_api_schemas_and_each_is_shown_next_to_its_field(ada_pages):
    response = ada_pages.post(
        "/patients/new",
        josette(
            mrn="",
            phone="0612345678",
            **{"baseline-pain_walking": "11"},
        ),
    )
    assert response.status_code == 422
    html = Pages.text(response)
    assert field_error(html, "mrn") == "Required."
    assert field_error(html, "phone") == "Enter an international number, e.g. +33612345678."
    assert field_error(html, "baseline-pain_walking") == "Enter a value from 0 to 10."
    assert (
        'id="baseline-pain_walking" name="baseline-pain_walking" type="number" value="11"' in html
    )
    assert 'aria-describedby="baseline-pain_walking-error" aria-invalid="true"' in html
    assert "3 fields need a correction" in html
    assert db.session.execute(db.select(Patient.id)).first() is None


def test_a_discharge_before_the_procedure_is_refused_next_to_the_discharge_date(ada_pages):
    html = Pages.text(ada_pages.post("/patients/new", josette(discharged_on="2026-11-20")))
    assert field_error(html, "discharged_on") == "Must be on or after the day of the procedure."


def test_sms_reminders_need_a_phone_number_as_in_the_api(ada_pages):
    response = ada_pages.post("/patients/new", josette(phone="", contact_channels=["push", "sms"]))
    assert response.status_code == 422
    assert field_error(Pages.text(response), "phone") == "Required to send SMS."


def test_a_second_patient_with_the_same_mrn_is_refused_next_to_the_mrn(ada_pages):
    ada_pages.post("/patients/new", josette())
    response = ada_pages.post("/patients/new", josette(given_name="Josiane"))
    assert response.status_code == 409
    assert "already registered" in field_error(Pages.text(response), "mrn")
    assert len(db.session.execute(db.select(Patient).filter_by(mrn="LY-9001")).all()) == 1


def test_errors_are_in_french_for_a_french_nurse(ada_pages):
    ada_pages.post("/language", {"language": "fr"})
    html = Pages.text(ada_pages.post("/patients/new", josette(mrn="")))
    assert field_error(html, "mrn") == "Obligatoire."


def test_registration_is_audited_as_in_the_api(ada_pages, nurse_ada):
    ada_pages.post("/patients/new", josette())
    actions = {
        e.action
        for e in db.session.execute(
            db.select(AuditEvent).filter_by(actor_id=nurse_ada.id)
        ).scalars()
    }
    assert {"patient.create", "procedure.create", "enrollment_code.create"} <= actions


def _cookie_session(pages: Pages) -> tuple[str, dict]:
    app = pages.client.application
    cookie = pages.client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    assert cookie is not None
    serializer = app.session_interface.get_signing_serializer(app)
    return cookie.value, dict(serializer.loads(cookie.value))


def test_the_code_never_travels_in_the_session_cookie(ada_pages):
    location = ada_pages.post("/patients/new", josette()).headers["Location"]
    raw, content = _cookie_session(ada_pages)  # the cookie between the POST and the sheet
    code = CODE.search(Pages.text(ada_pages.get(location))).group(1)
    plain = code.replace("-", "")
    assert code not in str(content) and plain not in str(content)
    assert code not in raw and plain not in raw


def test_a_replayed_cookie_does_not_show_the_sheet_again(ada_pages):
    location = ada_pages.post("/patients/new", josette()).headers["Location"]
    raw, _ = _cookie_session(ada_pages)
    app = ada_pages.client.application
    assert CODE.search(Pages.text(ada_pages.get(location)))
    ada_pages.client.set_cookie(app.config["SESSION_COOKIE_NAME"], raw)  # the old cookie again
    again = Pages.text(ada_pages.get(location))
    assert not CODE.search(again) and "shown only once" in again


def test_the_sheet_waits_ten_minutes_at_most(ada_pages, clock):
    from datetime import timedelta

    location = ada_pages.post("/patients/new", josette()).headers["Location"]
    clock.advance(timedelta(minutes=11))
    assert not CODE.search(Pages.text(ada_pages.get(location)))


def test_without_a_recorded_care_consent_registration_issues_no_code(ada_pages):
    response = ada_pages.post(
        "/patients/new", josette(consent_given_on="", consent_method="", mrn="LY-9002")
    )
    assert response.status_code == 303
    patient = db.session.execute(db.select(Patient).filter_by(mrn="LY-9002")).scalar_one()
    assert response.headers["Location"] == f"/patients/{patient.id}"
    page = ada_pages.text(ada_pages.get(response.headers["Location"]))
    assert "Record the care consent to issue the phone code." in page
    assert "New enrollment code" not in page
    assert not db.session.execute(
        db.select(AuditEvent).filter_by(patient_id=patient.id, action="enrollment_code.create")
    ).first()


def test_a_consent_date_without_how_it_was_collected_is_refused_next_to_its_field(ada_pages):
    response = ada_pages.post("/patients/new", josette(consent_method="", mrn="LY-9003"))
    assert response.status_code == 422
    assert field_error(Pages.text(response), "consent_method") == "Say how it was collected."
    assert db.session.execute(db.select(Patient).filter_by(mrn="LY-9003")).first() is None
