"""An answer given over the phone: the instrument's form, then what was recorded and raised.

The form is generated from the instrument's versioned definition (the open questionnaire's
instrument and version, or the latest check-in). Its fields carry the API's JSON pointers
(``answers-pain_rest`` for ``/answers/pain_rest``), so the posted form becomes the API's request
body, is loaded by ``StaffResponseCreateSchema`` and recorded by ``record_response``, the
service behind ``POST /patients/{id}/responses``: the same validation, each error next to its
field. The form carries a token, generated when it is shown, that is the answer's
``Idempotency-Key``: a double click, a retried post or the back button then a second submit
store one response and show it again.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from flask import Response, abort, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.datastructures import MultiDict

from backend.alerts import services as alerts
from backend.alerts.presenters import present_page
from backend.clock import utcnow
from backend.errors import Problem, ValidationProblem
from backend.extensions import db
from backend.patients import services as patients
from backend.patients.models import Patient
from backend.questionnaires import services as questionnaires
from backend.questionnaires.models import Assignment, Instrument
from backend.questionnaires.models import Response as QuestionnaireResponse
from backend.questionnaires.schemas import StaffResponseCreateSchema
from backend.web import forms
from backend.web.blueprint import audit_view, bp
from backend.web.i18n import current_locale
from backend.web.session import current_staff, staff_page

HIDDEN = ("assignment_id", "instrument", "version", "answered_at", "form_token")


def _assignment(patient: Patient, assignment_id: str | None) -> Assignment | None:
    """The patient's questionnaire named in the request (404 for anyone else's)."""
    if not assignment_id:
        return None
    try:
        found = db.session.get(Assignment, uuid.UUID(assignment_id))
    except ValueError:
        abort(404)
    if found is None or found.patient_id != patient.id:
        abort(404)
    return found


def _instrument(key: str, version: int | None) -> Instrument:
    return questionnaires.get_instrument(key, version)


def _form(
    patient: Patient,
    assignment: Assignment | None,
    instrument: Instrument,
    values: MultiDict[str, str],
    errors: dict[str, str],
    status: int = 200,
    problem: str | None = None,
) -> Response:
    now = utcnow()
    definition = questionnaires.localise(instrument.definition, current_locale())
    audit_view(
        "patient.read",
        now=now,
        resource_type="patient",
        resource_id=patient.id,
        patient_id=patient.id,
    )
    labels = {forms.answer_field(item["id"]): item["text"] for item in definition["items"]}
    page = render_template(
        "web/answer.html",
        patient=patient,
        assignment=assignment,
        instrument=instrument,
        items=definition["items"],
        field=forms.answer_field,
        values=values,
        errors=errors,
        labels=labels,
        problem=problem,
        answered_at=datetime.fromisoformat(values["answered_at"]),
    )
    return Response(page, status=status, mimetype="text/html")


@bp.get("/patients/<uuid:patient_id>/answers/new")
@staff_page
def new_answer(patient_id: uuid.UUID) -> Response:
    """The form of the open questionnaire (``?assignment=``), else of a check-in."""
    found = patients.get_patient(current_staff(), patient_id)
    assignment = _assignment(found, request.args.get("assignment"))
    instrument = (
        _instrument(assignment.instrument_key, assignment.instrument_version)
        if assignment is not None
        else _instrument("checkin", None)
    )
    values = MultiDict(
        {
            "assignment_id": str(assignment.id) if assignment else "",
            "instrument": instrument.key,
            "version": str(instrument.version),
            # Answered during the call: when the nurse opened the form, kept by a retry.
            "answered_at": utcnow().isoformat(),
            "form_token": str(uuid.uuid4()),
        }
    )
    return _form(found, assignment, instrument, values, {})


@bp.post("/patients/<uuid:patient_id>/answers/new")
@staff_page
def record_answer(patient_id: uuid.UUID) -> Response:
    """Record the answers through the API's schema and service, once per form token."""
    principal = current_staff()
    found = patients.get_patient(principal, patient_id)
    form = request.form
    assignment = _assignment(found, form.get("assignment_id"))
    try:
        token = str(uuid.UUID(form.get("form_token", "")))
        version = int(form.get("version", ""))
    except ValueError:
        abort(400)
    instrument = _instrument(form.get("instrument", ""), version)
    body: dict[str, Any] = {
        "assignment_id": str(assignment.id) if assignment else None,
        "instrument": instrument.key,
        "version": instrument.version,
        "answered_at": form.get("answered_at", ""),
        "answers": forms.answers_from_form(instrument.definition, form),
    }
    data, errors = forms.validate(StaffResponseCreateSchema(), body)
    if errors:
        return _form(found, assignment, instrument, form, errors, status=422)
    try:
        result = questionnaires.record_response(
            principal,
            found,
            data,
            now=utcnow(),
            idempotency_key=token,
            fingerprint=questionnaires.request_fingerprint(body),
        )
    except ValidationProblem as refused:
        db.session.rollback()
        if any("header" in e for e in refused.errors or []):
            message = _(
                "This form was already sent with other answers; the patient's page shows "
                "what was recorded."
            )
            return _form(found, assignment, instrument, form, {}, status=422, problem=message)
        fields = forms.errors_by_field(refused.errors or [])
        return _form(found, assignment, instrument, form, fields, status=422)
    except Problem as refused:  # 409: answered already, cancelled, closed
        db.session.rollback()
        return _form(
            found,
            assignment,
            instrument,
            form,
            {},
            status=refused.status,
            problem=_conflict(refused),
        )
    return redirect(  # type: ignore[return-value]
        url_for("web.answer", patient_id=found.id, response_id=result.response.id), code=303
    )


def _conflict(problem: Problem) -> str:
    """The service's refusal in the nurse's language (as it is when it has no translation)."""
    return forms.translate(problem.detail or problem.title)


@bp.get("/patients/<uuid:patient_id>/answers/<uuid:response_id>")
@staff_page
def answer(patient_id: uuid.UUID, response_id: uuid.UUID) -> str:
    """A recorded answer: who entered it, the advice to give at once, the alerts it raised."""
    now = utcnow()
    found = patients.get_patient(current_staff(), patient_id)
    response = db.session.get(QuestionnaireResponse, response_id)
    if response is None or response.patient_id != found.id:
        abort(404)
    instrument = _instrument(response.instrument_key, response.instrument_version)
    definition = questionnaires.localise(instrument.definition, current_locale())
    raised = alerts.alerts_reporting(response)
    audit_view(
        "response.read",
        now=now,
        resource_type="response",
        resource_id=response.id,
        patient_id=found.id,
    )
    page = render_template(
        "web/answer_recorded.html",
        patient=found,
        response=response,
        items=definition["items"],
        advice=questionnaires.advice_for(response, found),
        raised=present_page(raised, now, current_locale()),
    )
    return page
