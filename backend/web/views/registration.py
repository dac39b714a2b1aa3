"""Registration at discharge: patient, procedure and baseline in one form, then the code."""

from __future__ import annotations

from flask import Response, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.datastructures import MultiDict

from backend.auth.models import Site
from backend.clock import utcnow
from backend.errors import Conflict, ValidationProblem
from backend.extensions import db
from backend.patients import services as patients
from backend.patients.schemas import PatientCreateSchema, ProcedureCreateSchema
from backend.web import forms
from backend.web.blueprint import bp
from backend.web.i18n import site_zone
from backend.web.session import current_staff, staff_page
from backend.web.views.patients import remember_code


def _defaults() -> MultiDict[str, str]:
    site = db.session.get(Site, current_staff().site_id)
    assert site is not None
    today = utcnow().astimezone(site_zone()).date()
    return MultiDict(
        [
            ("locale", site.locale),
            ("timezone", site.timezone),
            ("contact_channels", "push"),
            ("performed_on", today.isoformat()),
            ("discharged_on", today.isoformat()),
        ]
    )


def _form(values: MultiDict[str, str], errors: dict[str, str], status: int = 200) -> Response:
    page = render_template(
        "web/register.html", values=values, errors=errors, field_labels=forms.FIELD_LABELS
    )
    return Response(page, status=status, mimetype="text/html")


@bp.get("/patients/new")
@staff_page
def register() -> Response:
    """The registration form."""
    return _form(_defaults(), {})


@bp.post("/patients/new")
@staff_page
def register_post() -> Response:
    """Validate with the API's schemas, create through the API's services, issue the code."""
    principal = current_staff()
    patient_body, procedure_body = forms.bodies(request.form)
    patient_data, errors = forms.validate(PatientCreateSchema(), patient_body)
    procedure_data, procedure_errors = forms.validate(ProcedureCreateSchema(), procedure_body)
    errors.update(procedure_errors)
    if errors:
        return _form(request.form, errors, status=422)
    now = utcnow()
    try:
        patient = patients.create_patient(principal, patient_data, now=now)
    except ValidationProblem as problem:
        db.session.rollback()
        return _form(request.form, forms.errors_by_field(problem.errors or []), status=422)
    except Conflict:
        db.session.rollback()
        return _form(request.form, _mrn_taken(), status=409)
    patients.create_procedure(principal, patient, procedure_data, now=now)
    if "consent_given_on" not in patient_data:
        # No code without the care consent (French telemonitoring requires it): the patient
        # is registered; the code is issued from their page once the consent is recorded.
        flash(_("Patient registered. Record the care consent to issue the phone code."), "warning")
        return redirect(url_for("web.patient", patient_id=patient.id), code=303)  # type: ignore[return-value]
    code, expires_at = patients.create_enrollment_code(principal, patient, now=now)
    remember_code(patient, code, expires_at, now=now)
    return redirect(url_for("web.enrollment_code", patient_id=patient.id), code=303)  # type: ignore[return-value]


def _mrn_taken() -> dict[str, str]:
    return {"mrn": _("A patient with this MRN is already registered at your site.")}
