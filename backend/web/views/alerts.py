"""One alert: summary, evidence in words, whom to call, the chart, triage, notes, history."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Response, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from marshmallow import ValidationError
from sqlalchemy.orm import selectinload

from backend.alerts import services as alerts
from backend.alerts.models import Alert
from backend.alerts.presenters import present
from backend.alerts.schemas import NoteCreateSchema, ResolveSchema
from backend.clock import utcnow
from backend.errors import Conflict, flatten_messages
from backend.extensions import db
from backend.questionnaires.models import Response as QuestionnaireResponse
from backend.web.blueprint import audit_view, bp
from backend.web.evidence import describe
from backend.web.forms import errors_by_field
from backend.web.i18n import current_locale
from backend.web.session import current_staff, staff_page
from backend.web.views.patients import trajectory


def _page(alert: Alert, errors: dict[str, str] | None = None, status: int = 200) -> Response:
    now = utcnow()
    view = present(alert, now, current_locale(), detail=True)
    patient = view["patient"]
    findings = describe(alert.evidence)
    from backend.alerts import workflow
    from backend.web.views.workflow import TARGET_HOURS, snooze_choices

    context: dict[str, Any] = {
        "nurses": workflow.site_nurses(current_staff()),
        "snooze_hours": snooze_choices(alert.severity),
        "target_hours": TARGET_HOURS,
        "alert": view,
        "findings": findings,
        "entered": _attributions(findings),
        "errors": errors or {},
        "form": request.form if errors else {},
        **trajectory(patient, now, highlight=alert.id),
    }
    audit_view(
        "alert.read", now=now, resource_type="alert", resource_id=alert.id, patient_id=patient.id
    )
    audit_view(
        "patient.timeline.read",
        now=now,
        resource_type="patient",
        resource_id=patient.id,
        patient_id=patient.id,
    )
    page = render_template("web/alert.html", **context)
    return Response(page, status=status, mimetype="text/html")


def _attributions(findings: list[Any]) -> dict[str, dict[str, Any]]:
    """Who entered each report the evidence rests on, in one query (two with the staff)."""
    ids = {uuid.UUID(f.response_id) for f in findings if f.response_id}
    if not ids:
        return {}
    rows = db.session.execute(
        db.select(QuestionnaireResponse)
        .where(QuestionnaireResponse.id.in_(ids))
        .options(selectinload(QuestionnaireResponse.entered_by))
    ).scalars()
    return {str(r.id): r.attribution for r in rows}


@bp.get("/alerts/<uuid:alert_id>")
@staff_page
def alert(alert_id: uuid.UUID) -> Response:
    """The alert page (404 for another site's alert, as for one that does not exist); the
    first of the team to open it takes its "new" mark off."""
    from backend.alerts import workflow

    found = alerts.get_alert(current_staff(), alert_id)
    workflow.mark_seen(current_staff(), found, utcnow())
    return _page(found)


def _back(alert_id: uuid.UUID) -> Response:
    return redirect(url_for("web.alert", alert_id=alert_id), code=303)  # type: ignore[return-value]


def _conflict(error: Conflict, alert_id: uuid.UUID) -> Response:
    """Two nurses on one alert: the second sees it as it now stands, and why nothing changed."""
    db.session.rollback()
    flash(_("Nothing changed: someone else updated this alert first."), "warning")
    return _back(alert_id)


@bp.post("/alerts/<uuid:alert_id>/acknowledge")
@staff_page
def acknowledge(alert_id: uuid.UUID) -> Response:
    """Acknowledge: the nurse has seen it and is on it."""
    principal = current_staff()
    found = alerts.get_alert(principal, alert_id, for_update=True)
    try:
        alerts.acknowledge(principal, found, utcnow())
    except Conflict as error:
        return _conflict(error, alert_id)
    flash(_("Alert acknowledged."), "success")
    return _back(alert_id)


@bp.post("/alerts/<uuid:alert_id>/resolve")
@staff_page
def resolve(alert_id: uuid.UUID) -> Response:
    """Resolve with an outcome of the clinical list (and an optional note)."""
    principal = current_staff()
    found = alerts.get_alert(principal, alert_id, for_update=True)
    body = {"outcome": request.form.get("outcome", "")}
    if request.form.get("note", "").strip():
        body["note"] = request.form["note"].strip()
    try:
        data = ResolveSchema().load(body)
    except ValidationError as error:
        return _page(found, errors=_field_errors(error, prefix="resolve"), status=422)
    try:
        alerts.resolve(principal, found, data["outcome"], data["note"], utcnow())
    except Conflict as error:
        return _conflict(error, alert_id)
    flash(_("Alert resolved."), "success")
    return _back(alert_id)


@bp.post("/alerts/<uuid:alert_id>/notes")
@staff_page
def add_note(alert_id: uuid.UUID) -> Response:
    """Add a note (at any time, resolved or not)."""
    principal = current_staff()
    found = alerts.get_alert(principal, alert_id)
    try:
        data = NoteCreateSchema().load({"text": request.form.get("text", "").strip()})
    except ValidationError as error:
        return _page(found, errors=_field_errors(error, prefix="note"), status=422)
    alerts.add_note(principal, found, data["text"], utcnow())
    flash(_("Note added."), "success")
    return _back(alert_id)


def _field_errors(error: ValidationError, prefix: str) -> dict[str, str]:
    return {
        f"{prefix}-{key}": message
        for key, message in errors_by_field(flatten_messages(error.messages)).items()
    }
