"""Triage API: the queue, one alert, acknowledge, resolve, notes; the rule-quality report."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from backend.alerts import services, versions
from backend.alerts.models import Alert
from backend.alerts.presenters import present, present_page, staff_ref
from backend.alerts.rules import RULESETS
from backend.alerts.schemas import (
    AlertDetailSchema,
    AlertListSchema,
    AlertQueryArgsSchema,
    NoteCreateSchema,
    NoteSchema,
    ResolveSchema,
    RuleReportSchema,
    RuleVersionsSchema,
    RuleVersionsUpdateSchema,
)
from backend.audit.services import record
from backend.auth.guards import current_staff, staff_required
from backend.clock import utcnow
from backend.errors import problems
from backend.locales import staff_locale
from backend.schemas import EmptySchema

blp = Blueprint("alerts", __name__, url_prefix="/api/v1/alerts", description="Alert triage")
reports_blp = Blueprint("reports", __name__, url_prefix="/api/v1/reports", description="Reports")


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
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """The triage queue: by severity, then overdue, then age (open and acknowledged)"""
        now = utcnow()
        principal = current_staff()
        page, next_cursor = services.queue(
            principal,
            now,
            statuses=(args["status"],) if args.get("status") else ("open", "acknowledged"),
            severity=args.get("severity"),
            kind=args.get("kind"),
            patient_id=args.get("patient_id"),
            limit=args["limit"],
            cursor=args.get("cursor"),
        )
        services.record_list_read(principal, page, now)
        return {"items": present_page(page, now, caller_locale()), "next_cursor": next_cursor}


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
        alert = services.get_alert(current_staff(), alert_id)
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
        alert = services.get_alert(current_staff(), alert_id)
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
