"""Triage API: the queue, one alert, acknowledge, resolve, notes; the rule-quality report."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from flask import Response, jsonify
from flask.views import MethodView
from flask_smorest import Blueprint

from backend.alerts import metrics, services, versions, workflow
from backend.alerts.models import Alert, HandoverNote
from backend.alerts.presenters import dump_rows, load_named, present, present_page, staff_ref
from backend.alerts.rules import RULESETS
from backend.alerts.schemas import (
    AlertDetailSchema,
    AlertListSchema,
    AlertQueryArgsSchema,
    BulkAcknowledgeResultSchema,
    BulkAcknowledgeSchema,
    CallCreateSchema,
    HandoverNoteCreateSchema,
    HandoverNoteSchema,
    HandoverSchema,
    NoteCreateSchema,
    NoteSchema,
    OwnerSchema,
    ResolveSchema,
    RuleReportSchema,
    RuleVersionsSchema,
    RuleVersionsUpdateSchema,
    SnoozeSchema,
    TargetSchema,
    TeamMetricsArgsSchema,
    TeamMetricsSchema,
)
from backend.audit.services import record
from backend.auth.guards import current_staff, staff_required
from backend.clock import utcnow
from backend.errors import problems
from backend.locales import staff_locale
from backend.schemas import EmptySchema

blp = Blueprint("alerts", __name__, url_prefix="/api/v1/alerts", description="Alert triage")
reports_blp = Blueprint("reports", __name__, url_prefix="/api/v1/reports", description="Reports")
handover_blp = Blueprint(
    "handover", __name__, url_prefix="/api/v1/handover", description="Shift handover"
)


def caller_locale() -> str:
    """The caller's language for the summaries (``backend.locales``)."""
    return staff_locale(current_staff())


def _read_audit(alert: Alert, now: datetime) -> None:
    record(
        "alert.read",
        now=now,
        actor=current_staff(),
        resource_type="alert",
        resource_id=alert.id,
        patient_id=alert.patient_id,
    )


@blp.route("")
class Alerts(MethodView):
    @staff_required()
    @blp.arguments(AlertQueryArgsSchema, location="query")
    @blp.response(200, AlertListSchema)
    @problems(blp, 401)
    def get(self, args: dict[str, Any]) -> Response:
        """The triage queue: by severity, then overdue, then age (open and acknowledged)"""
        now = utcnow()
        principal = current_staff()
        locale = caller_locale()
        page, next_cursor = services.queue(
            principal,
            now,
            statuses=(args["status"],) if args.get("status") else ("open", "acknowledged"),
            severity=args.get("severity"),
            kind=args.get("kind"),
            patient_id=args.get("patient_id"),
            limit=args["limit"],
            cursor=args.get("cursor"),
            owner=args.get("owner"),
            snoozed=args["snoozed"],
            columns=True,
            locale=locale,
        )
        services.record_list_read(principal, page, now)
        # ``AlertListSchema``'s dump, made from the alerts' columns in one step (``dump_rows``;
        # the schema stays the documented contract).
        return jsonify({"items": dump_rows(page, now), "next_cursor": next_cursor})


@blp.route("/<uuid:alert_id>")
class AlertById(MethodView):
    @staff_required()
    @blp.response(200, AlertDetailSchema)
    @problems(blp, 401, 404)
    def get(self, alert_id: uuid.UUID) -> dict[str, Any]:
        """One alert with its evidence, notes and history"""
        now = utcnow()
        alert = services.get_alert(current_staff(), alert_id)
        _read_audit(alert, now)
        workflow.mark_seen(current_staff(), alert, now)
        return present(alert, now, caller_locale(), detail=True)


@blp.route("/<uuid:alert_id>/acknowledge")
class Acknowledge(MethodView):
    @staff_required()
    @blp.arguments(EmptySchema, required=False)
    @blp.response(200, AlertDetailSchema)
    @problems(blp, 401, 404, 409)
    def post(self, _body: dict[str, Any], alert_id: uuid.UUID) -> dict[str, Any]:
        """Acknowledge an open alert (409 when it is not open)"""
        now = utcnow()
        alert = services.get_alert(current_staff(), alert_id, for_update=True)
        services.acknowledge(current_staff(), alert, now)
        return present(alert, now, caller_locale(), detail=True)


@blp.route("/<uuid:alert_id>/resolve")
class Resolve(MethodView):
    @staff_required()
    @blp.arguments(ResolveSchema)
    @blp.response(200, AlertDetailSchema)
    @problems(blp, 401, 404, 409)
    def post(self, body: dict[str, Any], alert_id: uuid.UUID) -> dict[str, Any]:
        """Resolve an alert with an outcome (409 when already resolved)"""
        now = utcnow()
        alert = services.get_alert(current_staff(), alert_id, for_update=True)
        services.resolve(current_staff(), alert, body["outcome"], body["note"], now)
        return present(alert, now, caller_locale(), detail=True)


@blp.route("/<uuid:alert_id>/notes")
class Notes(MethodView):
    @staff_required()
    @blp.arguments(NoteCreateSchema)
    @blp.response(201, NoteSchema)
    @problems(blp, 401, 404)
    def post(self, body: dict[str, Any], alert_id: uuid.UUID) -> dict[str, Any]:
        """Add a note to an alert (at any time)"""
        now = utcnow()
        alert = services.get_alert(current_staff(), alert_id)
        note = services.add_note(current_staff(), alert, body["text"], now)
        return {
            "id": note.id,
            "author": staff_ref(note.author_id),
            "text": note.text,
            "created_at": note.created_at,
        }


@blp.route("/acknowledgements")
class BulkAcknowledge(MethodView):
    @staff_required()
    @blp.arguments(BulkAcknowledgeSchema)
    @blp.response(200, BulkAcknowledgeResultSchema)
    @problems(blp, 401, 404, 422)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Acknowledge exactly the alerts selected, each with the comment as a note (404 naming
        any id that is not an alert of the site: then nothing changes)"""
        now = utcnow()
        result = workflow.acknowledge_selected(
            current_staff(), body["alert_ids"], body["comment"], now
        )
        return {
            "acknowledged": present_page(result.acknowledged, now, caller_locale()),
            "unchanged": [{"id": a.id, "status": a.status} for a in result.unchanged],
        }


@blp.route("/<uuid:alert_id>/owner")
class Owner(MethodView):
    @staff_required()
    @blp.arguments(OwnerSchema)
    @blp.response(200, AlertDetailSchema)
    @problems(blp, 401, 404, 409, 422)
    def post(self, body: dict[str, Any], alert_id: uuid.UUID) -> dict[str, Any]:
        """Take the alert, or give it to a nurse of the site (409 when its owner is no longer
        `expected_owner_id`: someone else took it first)"""
        now = utcnow()
        principal = current_staff()
        alert = services.get_alert(principal, alert_id)
        target = body["user_id"] or principal.id
        workflow.set_owner(principal, alert, target, body["expected_owner_id"], now)
        return present(alert, now, caller_locale(), detail=True)

    @staff_required()
    @blp.response(200, AlertDetailSchema)
    @problems(blp, 401, 404, 409)
    def delete(self, alert_id: uuid.UUID) -> dict[str, Any]:
        """Hand the alert back to the shared queue (nothing to do when it has no owner)"""
        now = utcnow()
        principal = current_staff()
        alert = services.get_alert(principal, alert_id)
        workflow.set_owner(principal, alert, None, alert.owner_id, now)
        return present(alert, now, caller_locale(), detail=True)


@blp.route("/<uuid:alert_id>/snooze")
class Snooze(MethodView):
    @staff_required()
    @blp.arguments(SnoozeSchema)
    @blp.response(200, AlertDetailSchema)
    @problems(blp, 401, 404, 409, 422)
    def post(self, body: dict[str, Any], alert_id: uuid.UUID) -> dict[str, Any]:
        """Put the alert aside until a time, with a reason, within the longest snooze of its
        severity (409 for an urgent alert); its target does not move"""
        now = utcnow()
        alert = services.get_alert(current_staff(), alert_id, for_update=True)
        workflow.snooze(current_staff(), alert, body["until"], body["reason"], now)
        return present(alert, now, caller_locale(), detail=True)


@blp.route("/<uuid:alert_id>/target")
class Target(MethodView):
    @staff_required()
    @blp.arguments(TargetSchema)
    @blp.response(200, AlertDetailSchema)
    @problems(blp, 401, 404, 409, 422)
    def post(self, body: dict[str, Any], alert_id: uuid.UUID) -> dict[str, Any]:
        """Renegotiate the time by which the open alert must be acknowledged, with the reason"""
        now = utcnow()
        alert = services.get_alert(current_staff(), alert_id, for_update=True)
        workflow.renegotiate_target(current_staff(), alert, body["due_at"], body["reason"], now)
        return present(alert, now, caller_locale(), detail=True)


@blp.route("/<uuid:alert_id>/calls")
class Calls(MethodView):
    @staff_required()
    @blp.arguments(CallCreateSchema)
    @blp.response(201, AlertDetailSchema)
    @problems(blp, 401, 404, 409, 422)
    def post(self, body: dict[str, Any], alert_id: uuid.UUID) -> dict[str, Any]:
        """Record an attempt to call the patient: `no_answer` or `spoke` (each attempt kept)"""
        now = utcnow()
        alert = services.get_alert(current_staff(), alert_id, for_update=True)
        workflow.record_call(current_staff(), alert, body["result"], body["note"], now)
        return present(alert, now, caller_locale(), detail=True)


def present_note(note: HandoverNote) -> dict[str, Any]:
    return {
        "id": note.id,
        "author": staff_ref(note.author_id),
        "text": note.text,
        "created_at": note.created_at,
        "read_by": staff_ref(note.read_by_id),
        "read_at": note.read_at,
    }


def handover_view(principal: Any, now: datetime, locale: str) -> dict[str, Any]:
    """The handover, each alert presented once (the staff and patients named in two queries)."""
    found = workflow.handover(principal, now)
    lists = ("overdue", "mine", "snoozed", "new")
    everyone = {a.id: a for name in lists for a in found[name]}
    named = load_named(everyone.values())
    views = {i: present(a, now, locale, named) for i, a in everyone.items()}
    services.record_list_read(principal, list(everyone.values()), now, via="handover")
    return {
        **found,
        **{name: [views[a.id] for a in found[name]] for name in lists},
        "notes": [present_note(n) for n in found["notes"]],
    }


@handover_blp.route("")
class Handover(MethodView):
    @staff_required()
    @handover_blp.response(200, HandoverSchema)
    @problems(handover_blp, 401)
    def get(self) -> dict[str, Any]:
        """The start of a shift: open counts, overdue, mine, snoozed, new since my last shift,
        and the notes the previous shift left"""
        return handover_view(current_staff(), utcnow(), caller_locale())


@handover_blp.route("/notes")
class HandoverNotes(MethodView):
    @staff_required()
    @handover_blp.arguments(HandoverNoteCreateSchema)
    @handover_blp.response(201, HandoverNoteSchema)
    @problems(handover_blp, 401, 422)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Leave a handover note for the next shift"""
        return present_note(workflow.write_note(current_staff(), body["text"], utcnow()))


@handover_blp.route("/notes/<uuid:note_id>/read")
class HandoverNoteRead(MethodView):
    @staff_required()
    @handover_blp.arguments(EmptySchema, required=False)
    @handover_blp.response(200, HandoverNoteSchema)
    @problems(handover_blp, 401, 404, 409)
    def post(self, _body: dict[str, Any], note_id: uuid.UUID) -> dict[str, Any]:
        """Confirm having read the note (the next shift; its author cannot, 409)"""
        principal = current_staff()
        note = workflow.get_note(principal, note_id)
        return present_note(workflow.confirm_note(principal, note, utcnow()))


@reports_blp.route("/team")
class TeamMetrics(MethodView):
    @staff_required()
    @reports_blp.arguments(TeamMetricsArgsSchema, location="query")
    @reports_blp.response(200, TeamMetricsSchema)
    @problems(reports_blp, 401)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """How the team is doing per week: time to acknowledge and to resolve (median, 90th
        percentile) per severity, overdue share, alerts per 100 patient-weeks, false alarms"""
        principal = current_staff()
        now = utcnow()
        report = metrics.team_metrics(principal, now, args["weeks"])
        record(
            "report.team",
            now=now,
            actor=principal,
            resource_type="report",
            details={"weeks": args["weeks"]},
        )
        return report


@reports_blp.route("/rules")
class RuleReport(MethodView):
    @staff_required()
    @reports_blp.response(200, RuleReportSchema)
    @problems(reports_blp, 401)
    def get(self) -> dict[str, Any]:
        """Rule quality: per rule version, alerts, outcomes, false alarms, time to acknowledge"""
        principal = current_staff()
        return {
            "items": services.rule_report(principal),
            "comparison": versions.compare(principal.site_id),
        }


def _versions_view(site_id: uuid.UUID) -> dict[str, Any]:
    setting = versions.current_setting(site_id)
    return {
        "active_version": setting.active_version if setting else 1,
        "candidate_version": setting.candidate_version if setting else None,
        "available_versions": sorted(RULESETS),
        "history": [
            {
                "active_version": row.active_version,
                "candidate_version": row.candidate_version,
                "set_at": row.set_at,
                "set_by": staff_ref(row.set_by_id),
                "reason": row.reason,
            }
            for row in versions.history(site_id)
        ],
    }


@reports_blp.route("/rules/versions")
class RuleVersions(MethodView):
    @staff_required()
    @reports_blp.response(200, RuleVersionsSchema)
    @problems(reports_blp, 401)
    def get(self) -> dict[str, Any]:
        """The site's active and candidate rule versions, and every change"""
        return _versions_view(current_staff().site_id)

    @staff_required("admin")
    @reports_blp.arguments(RuleVersionsUpdateSchema)
    @reports_blp.response(200, RuleVersionsSchema)
    @problems(reports_blp, 401, 403, 422)
    def put(self, body: dict[str, Any]) -> dict[str, Any]:
        """Switch the site's active rule version, or set (null: stop) a shadow candidate"""
        principal = current_staff()
        versions.set_versions(
            principal.site_id,
            body["active_version"],
            body["candidate_version"],
            body["reason"],
            utcnow(),
            actor_id=principal.id,
        )
        return _versions_view(principal.site_id)
