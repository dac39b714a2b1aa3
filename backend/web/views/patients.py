"""The patients of the site, one patient's trajectory, and the enrollment code for the phone."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import segno
from flask import Response, flash, redirect, render_template, request, url_for
from flask_babel import force_locale
from flask_babel import gettext as _
from markupsafe import Markup
from werkzeug.exceptions import BadRequest

from backend.alerts import services as alerts
from backend.alerts.models import ALERT_STATUSES
from backend.clock import utcnow
from backend.errors import Conflict, Problem, ValidationProblem
from backend.extensions import db
from backend.patients import lifecycle
from backend.patients import services as patients
from backend.patients.models import ENDED_STATUSES, PATIENT_STATUSES, Patient
from backend.patients.schemas import (
    ConsentCreateSchema,
    PatientQueryArgsSchema,
    StatusChangeCreateSchema,
)
from backend.patients.timeline import build_timeline
from backend.questionnaires import services as questionnaires
from backend.web import forms, sheets
from backend.web.blueprint import audit_view, bp
from backend.web.chart import build_chart
from backend.web.i18n import current_locale, years_between
from backend.web.session import current_auth_session, current_staff, staff_page

LIST_LIMIT = 200


def trajectory(patient: Patient, now: datetime, highlight: Any = None) -> dict[str, Any]:
    """What the patient page shows (and the alert page below the alert): the timeline of the
    current procedure, its schedule with each answer, the patient's alerts and the chart."""
    timeline = build_timeline(patient, now, current_locale())
    procedure = timeline["procedure"]
    patient_alerts, _more = alerts.queue(
        current_staff(),
        now,
        statuses=ALERT_STATUSES,
        severity=None,
        kind=None,
        patient_id=patient.id,
        limit=200,
    )
    responses = [
        r for r in timeline["responses"] if procedure is not None and r.procedure_id == procedure.id
    ]
    answers = {r.assignment_id: r for r in responses if r.assignment_id is not None}
    schedule = [
        {
            "assignment": a,
            "status": a.effective_status(now),
            "response": answers.get(a.id),
        }
        for a in timeline["schedule"]
        if procedure is not None and a.procedure_id == procedure.id
    ]
    chart = None
    if procedure is not None:
        chart = build_chart(
            procedure,
            responses,
            patient_alerts,
            now=now,
            timezone=patient.timezone,
            highlight=highlight,
        )
    local_today = patients.today_for(patient, now)
    return {
        "patient": patient,
        "age": years_between(patient.birth_date, local_today),
        "procedure": procedure,
        "responses": responses,
        "schedule": schedule,
        "patient_alerts": patient_alerts,
        "chart": chart,
        "day_now": (local_today - procedure.discharged_on).days if procedure else None,
        "devices": patients.devices_of(patient),
        "ways": questionnaires.answer_ways([patient.id]).get(patient.id),
        "now": now,
    }


@bp.get("/patients")
@staff_page
def patients_list() -> str:
    """The site's patients, newest first."""
    now = utcnow()
    q = request.args.get("q", "").strip()[:100]
    if q and PatientQueryArgsSchema(only=("q",)).validate({"q": q}):
        # The API's own rule (e.g. no NUL character): the search cannot be run as typed.
        raise BadRequest("The search contains a character that cannot be searched for.")
    status = request.args.get("status", "")
    if status not in PATIENT_STATUSES:
        status = ""
    rows = list(
        db.session.execute(
            patients.search_patients(current_staff(), q or None, status or None)
            .order_by(Patient.created_at.desc(), Patient.id)
            .limit(LIST_LIMIT)
        ).scalars()
    )
    for patient in rows:
        audit_view(
            "patient.read",
            now=now,
            resource_type="patient",
            resource_id=patient.id,
            patient_id=patient.id,
            list=True,
        )
    ways = questionnaires.answer_ways([p.id for p in rows])
    page = render_template(
        "web/patients.html",
        patients=[
            {
                "patient": p,
                "age": years_between(p.birth_date, patients.today_for(p, now)),
                "procedure": p.current_procedure,
                "day": (patients.today_for(p, now) - p.current_procedure.discharged_on).days
                if p.current_procedure
                else None,
                "ways": ways.get(p.id),
            }
            for p in rows
        ],
        more=len(rows) == LIST_LIMIT,
        q=q,
        status=status,
    )
    return page


@bp.get("/patients/<uuid:patient_id>")
@staff_page
def patient(patient_id: uuid.UUID) -> Response:
    """The patient page (404 for another site's patient, as for one that does not exist)."""
    return _patient_page(patients.get_patient(current_staff(), patient_id))


def _patient_page(
    found: Patient,
    *,
    errors: dict[str, str] | None = None,
    values: Mapping[str, str] | None = None,
    status: int = 200,
) -> Response:
    now = utcnow()
    audit_view(
        "patient.timeline.read",
        now=now,
        resource_type="patient",
        resource_id=found.id,
        patient_id=found.id,
    )
    today = patients.today_for(found, now)
    page = render_template(
        "web/patient.html",
        **trajectory(found, now),
        status_history=lifecycle.status_history(found),
        consent=lifecycle.consent_state(found),
        ended=found.status in ENDED_STATUSES,
        errors=errors or {},
        values=values or {"decided_on": today.isoformat()},
        field_labels=forms.FIELD_LABELS,
        today=today,
    )
    return Response(page, status=status, mimetype="text/html")


def _form_body(names: tuple[str, ...]) -> dict[str, Any]:
    """The filled fields of the form, as the API would receive them (empty means absent)."""
    return {n: request.form[n].strip() for n in names if request.form.get(n, "").strip()}


def _refused(found: Patient, problem: Problem) -> Response:
    db.session.rollback()
    if isinstance(problem, ValidationProblem):
        errors = forms.errors_by_field(problem.errors or [])
        return _patient_page(found, errors=errors, values=request.form, status=422)
    flash(problem.detail or problem.title, "warning")
    return _back(found)


def _back(found: Patient) -> Response:
    return redirect(url_for("web.patient", patient_id=found.id), code=303)  # type: ignore[return-value]


@bp.post("/patients/<uuid:patient_id>/status")
@staff_page
def change_status(patient_id: uuid.UUID) -> Response:
    """Change the status with its reason (paused optionally until a date), as the API does."""
    principal = current_staff()
    found = patients.get_patient(principal, patient_id)
    data, errors = forms.validate(
        StatusChangeCreateSchema(), _form_body(("status", "reason", "paused_until"))
    )
    if errors:
        return _patient_page(found, errors=errors, values=request.form, status=422)
    try:
        lifecycle.change_status(
            principal,
            found,
            data["status"],
            data["reason"],
            now=utcnow(),
            paused_until=data.get("paused_until"),
        )
    except Problem as problem:
        return _refused(found, problem)
    flash(_("Status changed."), "success")
    return _back(found)


@bp.post("/patients/<uuid:patient_id>/consents")
@staff_page
def record_consent(patient_id: uuid.UUID) -> Response:
    """Record a consent decision, validated as the API validates it."""
    principal = current_staff()
    found = patients.get_patient(principal, patient_id)
    data, errors = forms.validate(
        ConsentCreateSchema(),
        _form_body(("purpose", "decision", "decided_on", "method", "witness", "note")),
    )
    if errors:
        return _patient_page(found, errors=errors, values=request.form, status=422)
    try:
        lifecycle.record_consent(principal, found, data, now=utcnow())
    except Problem as problem:
        return _refused(found, problem)
    flash(_("Consent recorded."), "success")
    return _back(found)


def qr_svg(code: str) -> Markup:
    """The code as a QR code (always a full QR: phone cameras do not all read Micro QR)."""
    qr = segno.make_qr(code, error="m")
    # segno writes the SVG itself (and escapes the title); the code is of our own alphabet.
    return Markup(qr.svg_inline(border=4, omitsize=True, svgclass="qr", title=code))  # noqa: S704


def remember_code(patient: Patient, code: str, expires_at: datetime, *, now: datetime) -> None:
    """Keep the code for the sheet that shows it once (server-side, never in the cookie)."""
    auth_session = current_auth_session()
    assert auth_session is not None  # staff pages only
    sheets.keep_for_display(patient, code, expires_at, auth_session_id=auth_session.id, now=now)


@bp.post("/patients/<uuid:patient_id>/enrollment-code")
@staff_page
def new_code(patient_id: uuid.UUID) -> Response:
    """Issue a new enrollment code (the previous ones stop working)."""
    principal = current_staff()
    found = patients.get_patient(principal, patient_id)
    now = utcnow()
    try:
        code, expires_at = patients.create_enrollment_code(
            principal, found, now=now, revoke_devices=request.form.get("revoke_devices") == "1"
        )
    except Conflict as problem:
        return _refused(found, problem)
    remember_code(found, code, expires_at, now=now)
    return redirect(url_for("web.enrollment_code", patient_id=found.id), code=303)  # type: ignore[return-value]


@bp.post("/patients/<uuid:patient_id>/devices/<uuid:device_id>/revoke")
@staff_page
def revoke_device(patient_id: uuid.UUID, device_id: uuid.UUID) -> Response:
    """Cut a lost phone off (its tokens stop at once); back to the patient page."""
    principal = current_staff()
    found = patients.get_patient(principal, patient_id)
    patients.revoke_device(principal, found, patients.get_device(found, device_id), now=utcnow())
    return redirect(url_for("web.patient", patient_id=found.id) + "#phone-h", code=303)  # type: ignore[return-value]


@bp.get("/patients/<uuid:patient_id>/enrollment-code")
@staff_page
def enrollment_code(patient_id: uuid.UUID) -> str:
    """The code, large, with its QR code, once; printable for the patient."""
    now = utcnow()
    found = patients.get_patient(current_staff(), patient_id)
    auth_session = current_auth_session()
    assert auth_session is not None
    issued = sheets.take_for_display(found, auth_session_id=auth_session.id, now=now)
    sheet = None
    if issued is not None:
        code, expires_at = issued
        # The sheet is for the patient: in the patient's language, whatever the nurse's.
        with force_locale(found.locale):
            sheet = Markup(  # noqa: S704 (a rendered template: already escaped)
                render_template(
                    "web/_code_sheet.html",
                    patient=found,
                    code=code,
                    expires_at=expires_at,
                    qr=qr_svg(code),
                )
            )
    audit_view(
        "patient.read", now=now, resource_type="patient", resource_id=found.id, patient_id=found.id
    )
    page = render_template(
        "web/enrollment_code.html", patient=found, shown=sheet is not None, sheet=sheet
    )
    return page
