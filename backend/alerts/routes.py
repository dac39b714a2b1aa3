"""Triage API: the queue, one alert, acknowledge, resolve, notes; the rule-quality report."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from backend.alerts import services
from backend.alerts.models import Alert
from backend.alerts.schemas import (
    AlertDetailSchema,
    AlertListSchema,
    AlertQueryArgsSchema,
    NoteCreateSchema,
    NoteSchema,
    ResolveSchema,
    RuleReportSchema,
)
from backend.audit.services import record
from backend.auth.guards import current_staff, staff_required
from backend.auth.models import Site, User
from backend.clock import utcnow
from backend.errors import problems
from backend.extensions import db
from backend.patients.models import Patient
from backend.schemas import EmptySchema

blp = Blueprint("alerts", __name__, url_prefix="/api/v1/alerts", description="Alert triage")
reports_blp = Blueprint("reports", __name__, url_prefix="/api/v1/reports", description="Reports")


def _user(user_id: uuid.UUID | None) -> User | None:
    return db.session.get(User, user_id) if user_id else None


def present(alert: Alert, now: datetime, locale: str, detail: bool = False) -> dict[str, Any]:
    """An alert as the API shows it: the summary in the site's language, overdue as of now."""
    patient = db.session.get(Patient, alert.patient_id)
    view: dict[str, Any] = {
        "id": alert.id,
        "patient": patient,
        "kind": alert.kind,
        "severity": alert.severity,
        "status": alert.status,
        "overdue": alert.is_overdue(now),
        "created_at": alert.created_at,
        "updated_at": alert.updated_at,
        "due_at": alert.due_at,
        "summary": alert.summary.get(locale) or alert.summary.get("fr") or "",
        "rule": {"key": alert.rule_key, "version": alert.rule_version},
        "evidence": alert.evidence,
        "acknowledged_by": _user(alert.acknowledged_by_id),
        "acknowledged_at": alert.acknowledged_at,
        "resolved_by": _user(alert.resolved_by_id),
        "resolved_at": alert.resolved_at,
        "outcome": alert.outcome,
    }
    if detail:
        view["notes"] = [
            {"id": n.id, "author": _user(n.author_id), "text": n.text, "created_at": n.created_at}
            for n in alert.notes
        ]
        view["history"] = [
            {
                "action": e.action,
                "actor": _user(e.actor_id),
                "occurred_at": e.occurred_at,
                "details": e.details,
            }
            for e in alert.history
        ]
    return view


def present_page(alerts: list[Alert], now: datetime, locale: str) -> list[dict[str, Any]]:
    """A page of the queue: patients and staff named on it are loaded in two queries, so
    ``present`` finds them in the session instead of asking once per alert."""
    patient_ids = {a.patient_id for a in alerts}
    user_ids = {u for a in alerts for u in (a.acknowledged_by_id, a.resolved_by_id) if u}
    if patient_ids:
        db.session.execute(db.select(Patient).where(Patient.id.in_(patient_ids))).scalars().all()
    if user_ids:
        db.session.execute(db.select(User).where(User.id.in_(user_ids))).scalars().all()
    return [present(a, now, locale) for a in alerts]


def site_locale() -> str:
    site = db.session.get(Site, current_staff().site_id)
    return site.locale if site else "fr"


def _read_audit(alert: Alert, now: datetime) -> None:
    record(
        "alert.read",
        now=now,
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
        statuses = (args["status"],) if args.get("status") else ("open", "acknowledged")
        offset = int(args["cursor"]) if args.get("cursor") else 0
        alerts = services.queue(
            current_staff(),
            now,
            statuses=statuses,
            severity=args.get("severity"),
            kind=args.get("kind"),
            patient_id=args.get("patient_id"),
            limit=args["limit"] + 1,
            offset=offset,
        )
        page = alerts[: args["limit"]]
        for alert in page:
            _read_audit(alert, now)
        db.session.commit()
        locale = site_locale()
        return {
            "items": present_page(page, now, locale),
            "next_cursor": str(offset + args["limit"]) if len(alerts) > args["limit"] else None,
        }


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
        db.session.commit()
        return present(alert, now, site_locale(), detail=True)


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
        db.session.commit()
        return present(alert, now, site_locale(), detail=True)


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
        db.session.commit()
        return present(alert, now, site_locale(), detail=True)


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
        db.session.commit()
        return {
            "id": note.id,
            "author": _user(note.author_id),
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
        return {"items": services.rule_report(current_staff())}
