"""The nurses' work at ward scale on the pages: take / assign / hand back an alert, snooze it,
renegotiate its target, record call attempts, acknowledge the selected alerts, the handover page
and the team's figures (docs/nurse-workflow.md). Every change goes through
``backend.alerts.workflow``, as the API's do; the forms are validated by the API's schemas."""

from __future__ import annotations

import base64
import uuid
from datetime import timedelta
from typing import Any

from flask import Response, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from marshmallow import ValidationError

from backend.alerts import metrics, services, workflow
from backend.alerts.presenters import load_named, present, staff_ref
from backend.alerts.schemas import (
    BulkAcknowledgeSchema,
    CallCreateSchema,
    HandoverNoteCreateSchema,
    SnoozeSchema,
    TargetSchema,
)
from backend.audit.services import record
from backend.clock import utcnow
from backend.errors import Conflict, ValidationProblem, flatten_messages
from backend.extensions import db
from backend.web.blueprint import bp
from backend.web.forms import errors_by_field
from backend.web.i18n import choices, current_locale
from backend.web.session import current_staff, staff_page

SNOOZE_HOURS = (1, 2, 4, 8, 12, 24, 48, 72)
TARGET_HOURS = (4, 8, 12, 24, 48, 72)
TEAM_WEEKS = 12


def _back(alert_id: uuid.UUID) -> Response:
    return redirect(url_for("web.alert", alert_id=alert_id), code=303)  # type: ignore[return-value]


def _conflict(message: str, alert_id: uuid.UUID) -> Response:
    db.session.rollback()
    flash(message, "warning")
    return _back(alert_id)


def _field_errors(messages: Any, prefix: str) -> dict[str, str]:
    return {
        f"{prefix}-{key}": message
        for key, message in errors_by_field(flatten_messages(messages)).items()
    }


def _uuid(value: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(value) if value else None
    except ValueError:
        return None


def snooze_choices(severity: str) -> list[int]:
    """The snooze lengths offered for an alert of this severity (none for urgent)."""
    limit = workflow.snooze_limit(severity)
    if limit is None:
        return []
    return [h for h in SNOOZE_HOURS if timedelta(hours=h) <= limit]


# --- ownership ----------------------------------------------------------------------------------


@bp.post("/alerts/<uuid:alert_id>/owner")
@staff_page
def alert_owner(alert_id: uuid.UUID) -> Response:
    """Take it, give it to a nurse of the site, or hand it back (``action``)."""
    principal = current_staff()
    found = services.get_alert(principal, alert_id)
    action = request.form.get("action", "take")
    expected = _uuid(request.form.get("expected_owner_id"))
    target: uuid.UUID | None = principal.id
    if action == "release":
        target = None
    elif action == "assign":
        target = _uuid(request.form.get("user_id"))
        if target is None:
            flash(_("Choose the nurse to give the alert to."), "warning")
            return _back(alert_id)
    try:
        workflow.set_owner(principal, found, target, expected, utcnow())
    except ValidationProblem:
        return _conflict(_("Only an active nurse of your site can be given an alert."), alert_id)
    except Conflict:
        db.session.rollback()
        found = services.get_alert(principal, alert_id)
        holder = staff_ref(found.owner_id)
        if holder:
            message = _(
                "Nothing changed: %(name)s took this alert first.",
                name=holder.full_name or holder.email,
            )
        else:
            message = _("Nothing changed: someone else updated this alert first.")
        return _conflict(message, alert_id)
    messages = {
        "release": _("Alert handed back to the shared queue."),
        "assign": _("Alert assigned."),
        "take": _("You have the alert in hand."),
    }
    flash(messages.get(action, messages["take"]), "success")
    return _back(alert_id)


# --- snooze, target, calls ----------------------------------------------------------------------


def _hours(field: str) -> int | None:
    value = request.form.get(field, "")
    return int(value) if value.isdigit() else None


def _in_hours_with_reason(
    schema: Any, field: str, prefix: str, missing: str, now: Any
) -> tuple[dict[str, Any], dict[str, str]]:
    """The snooze and target forms: a number of hours from now (as ``field``) and a reason,
    loaded by the API's ``schema``; the data and the page's errors (empty when valid)."""
    hours = _hours("hours")
    errors: dict[str, str] = {}
    if hours is None:
        errors[f"{prefix}-hours"] = missing
    body = {
        field: (now + timedelta(hours=hours or 1)).isoformat(),
        "reason": request.form.get("reason", "").strip(),
    }
    try:
        return schema.load(body), errors
    except ValidationError as error:
        errors.update(_field_errors(error.messages, prefix))
        return {}, errors


@bp.post("/alerts/<uuid:alert_id>/snooze")
@staff_page
def alert_snooze(alert_id: uuid.UUID) -> Response:
    from backend.web.views.alerts import _page

    principal = current_staff()
    found = services.get_alert(principal, alert_id, for_update=True)
    now = utcnow()
    data, errors = _in_hours_with_reason(
        SnoozeSchema(), "until", "snooze", _("Choose for how long."), now
    )
    if errors:
        return _page(found, errors=errors, status=422)
    try:
        workflow.snooze(principal, found, data["until"], data["reason"], now)
    except ValidationProblem:
        db.session.rollback()
        found = services.get_alert(principal, alert_id)
        errors = {"snooze-hours": _("Longer than an alert of this severity may be put aside.")}
        return _page(found, errors=errors, status=422)
    except Conflict:
        return _conflict(_("An urgent alert cannot be put aside."), alert_id)
    flash(_("Alert put aside until %(when)s.", when=_when(data["until"])), "success")
    return _back(alert_id)


def _when(value: Any) -> str:
    from backend.web.i18n import format_datetime

    return str(format_datetime(value))


@bp.post("/alerts/<uuid:alert_id>/target")
@staff_page
def alert_target(alert_id: uuid.UUID) -> Response:
    from backend.web.views.alerts import _page

    principal = current_staff()
    found = services.get_alert(principal, alert_id, for_update=True)
    now = utcnow()
    data, errors = _in_hours_with_reason(
        TargetSchema(), "due_at", "target", _("Choose the new target."), now
    )
    if errors:
        return _page(found, errors=errors, status=422)
    try:
        workflow.renegotiate_target(principal, found, data["due_at"], data["reason"], now)
    except Conflict:
        return _conflict(_("Only an open alert has a target to renegotiate."), alert_id)
    flash(_("Target renegotiated."), "success")
    return _back(alert_id)


@bp.post("/alerts/<uuid:alert_id>/calls")
@staff_page
def alert_call(alert_id: uuid.UUID) -> Response:
    """ "Called, no answer" or "called, spoke": each attempt is kept."""
    from backend.web.views.alerts import _page

    principal = current_staff()
    found = services.get_alert(principal, alert_id, for_update=True)
    body: dict[str, Any] = {"result": request.form.get("result", "")}
    if request.form.get("note", "").strip():
        body["note"] = request.form["note"].strip()
    try:
        data = CallCreateSchema().load(body)
    except ValidationError as error:
        return _page(found, errors=_field_errors(error.messages, "call"), status=422)
    try:
        workflow.record_call(principal, found, data["result"], data["note"], utcnow())
    except Conflict:
        return _conflict(_("The alert is resolved; add a note instead."), alert_id)
    flash(_("Call attempt recorded."), "success")
    return _back(alert_id)


# --- bulk acknowledge ---------------------------------------------------------------------------


@bp.post("/alerts/acknowledgements")
@staff_page
def bulk_acknowledge() -> Response:
    """Acknowledge exactly the alerts ticked on the queue, with one comment."""
    from backend.web.views.queue import render_queue

    body = {
        "alert_ids": request.form.getlist("alert_ids"),
        "comment": request.form.get("comment", "").strip(),
    }
    try:
        data = BulkAcknowledgeSchema().load(body)
    except ValidationError as error:
        errors = _field_errors(error.messages, "bulk")
        if "alert_ids" in error.messages:
            errors["bulk-alert_ids"] = _("Tick the alerts to acknowledge.")
        return render_queue(errors=errors, form=request.form, status=422)
    result = workflow.acknowledge_selected(
        current_staff(), data["alert_ids"], data["comment"], utcnow()
    )
    flash(
        _(
            "%(done)s alerts acknowledged; %(left)s already handled by someone else.",
            done=len(result.acknowledged),
            left=len(result.unchanged),
        )
        if result.unchanged
        else _("%(done)s alerts acknowledged.", done=len(result.acknowledged)),
        "success",
    )
    return redirect(url_for("web.queue"), code=303)  # type: ignore[return-value]


# --- handover -----------------------------------------------------------------------------------


def _handover_page(errors: dict[str, str] | None = None, status: int = 200) -> Response:
    now = utcnow()
    principal = current_staff()
    found = workflow.handover(principal, now)
    lists = ("overdue", "mine", "snoozed", "new")
    everyone = {a.id: a for name in lists for a in found[name]}
    named = load_named(everyone.values())
    locale = current_locale()
    views = {i: present(a, now, locale, named) for i, a in everyone.items()}
    services.record_list_read(principal, list(everyone.values()), now, via="web-handover")
    notes = [
        {
            "id": n.id,
            "text": n.text,
            "created_at": n.created_at,
            "author": staff_ref(n.author_id),
            "read_by": staff_ref(n.read_by_id),
            "read_at": n.read_at,
            "mine": n.author_id == principal.id,
        }
        for n in found["notes"]
    ]
    page = render_template(
        "web/handover.html",
        nav="handover",
        now=now,
        since=found["since"],
        open=found["open"],
        lists={name: [views[a.id] for a in found[name]] for name in lists},
        notes=notes,
        errors=errors or {},
        form=request.form if errors else {},
    )
    return Response(page, status=status, mimetype="text/html")


@bp.get("/handover")
@staff_page
def handover() -> Response:
    """The start of a shift: what is open, overdue, mine, snoozed, new; the notes left."""
    return _handover_page()


@bp.post("/handover/notes")
@staff_page
def handover_note() -> Response:
    try:
        data = HandoverNoteCreateSchema().load({"text": request.form.get("text", "").strip()})
    except ValidationError as error:
        return _handover_page(errors=_field_errors(error.messages, "handover"), status=422)
    workflow.write_note(current_staff(), data["text"], utcnow())
    flash(_("Handover note left for the next shift."), "success")
    return redirect(url_for("web.handover"), code=303)  # type: ignore[return-value]


@bp.post("/handover/notes/<uuid:note_id>/read")
@staff_page
def handover_note_read(note_id: uuid.UUID) -> Response:
    principal = current_staff()
    note = workflow.get_note(principal, note_id)
    try:
        workflow.confirm_note(principal, note, utcnow())
    except Conflict:
        db.session.rollback()
        flash(_("The next shift confirms the note, not its author."), "warning")
        return redirect(url_for("web.handover"), code=303)  # type: ignore[return-value]
    flash(_("Handover note confirmed as read."), "success")
    return redirect(url_for("web.handover"), code=303)  # type: ignore[return-value]


# --- team metrics -------------------------------------------------------------------------------


def _img(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


@bp.get("/team")
@staff_page
def team() -> Response:
    """The team's figures, week by week, each plot with its table."""
    from backend.alerts import plots

    principal = current_staff()
    now = utcnow()
    report = metrics.team_metrics(principal, now, TEAM_WEEKS)
    record(
        "report.team",
        now=now,
        actor=principal,
        resource_type="report",
        details={"weeks": TEAM_WEEKS, "via": "web"},
    )
    severity_labels = {
        "urgent": _("Urgent"),
        "high": _("High"),
        "routine": _("Routine"),
    }
    figures = {
        "acknowledge": _img(
            plots.times(
                report,
                "acknowledge",
                severity_labels,
                {"y": _("Hours to acknowledge"), "median": _("median"), "p90": _("90th pct")},
            )
        ),
        "overdue": _img(
            plots.overdue(report, severity_labels, {"y": _("Share acknowledged late (%)")})
        ),
        "rates": _img(
            plots.rates(
                report,
                {"x": _("Alerts per 100 patient-weeks")},
                {value: text for value, text in choices("alert_kind")},
            )
        ),
    }
    page = render_template(
        "web/team.html",
        nav="team",
        report=report,
        figures=figures,
        severity_labels=severity_labels,
        now=now,
    )
    return Response(page, mimetype="text/html")
