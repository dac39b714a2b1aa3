"""Alerts as the API and the pages show them, and the alerts section of a patient's timeline.

The wording of an alert's summary is decided once, by the rules (``backend.alerts.rules``), in
every language, and stored with the alert; ``present`` only picks the caller's language. A
presenter never queries: ``present_page`` loads the patients and staff a page names in two
queries, and ``present`` finds them in the session.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from flask import Flask
from sqlalchemy.orm.util import identity_key

from backend.alerts.models import Alert
from backend.auth.models import User
from backend.extensions import db
from backend.locales import FALLBACK_LOCALE
from backend.patients.models import Patient


def staff_ref(user_id: uuid.UUID | None) -> User | None:
    """The staff member named by an id, from the session when a page loaded them."""
    return db.session.get(User, user_id) if user_id else None


def summary_in(alert: Alert, locale: str) -> str:
    """The alert's one-sentence summary in ``locale`` (French when it has none in it)."""
    return str(alert.summary.get(locale) or alert.summary.get(FALLBACK_LOCALE) or "")


def present(alert: Alert, now: datetime, locale: str, detail: bool = False) -> dict[str, Any]:
    """An alert as the API shows it: the summary in ``locale``, overdue as of now."""
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
        "summary": summary_in(alert, locale),
        "rule": {"key": alert.rule_key, "version": alert.rule_version},
        "evidence": alert.evidence,
        "acknowledged_by": staff_ref(alert.acknowledged_by_id),
        "acknowledged_at": alert.acknowledged_at,
        "resolved_by": staff_ref(alert.resolved_by_id),
        "resolved_at": alert.resolved_at,
        "outcome": alert.outcome,
    }
    if detail:
        view["notes"] = [
            {
                "id": n.id,
                "author": staff_ref(n.author_id),
                "text": n.text,
                "created_at": n.created_at,
            }
            for n in alert.notes
        ]
        view["history"] = [
            {
                "action": e.action,
                "actor": staff_ref(e.actor_id),
                "occurred_at": e.occurred_at,
                "details": e.details,
            }
            for e in alert.history
        ]
    return view


def present_page(alerts: list[Alert], now: datetime, locale: str) -> list[dict[str, Any]]:
    """A page of alerts: patients and staff named on it are loaded in two queries, so
    ``present`` finds them in the session instead of asking once per alert."""
    patient_ids = _not_loaded(Patient, {a.patient_id for a in alerts})
    user_ids = _not_loaded(
        User, {u for a in alerts for u in (a.acknowledged_by_id, a.resolved_by_id) if u}
    )
    if patient_ids:
        db.session.execute(db.select(Patient).where(Patient.id.in_(patient_ids))).scalars().all()
    if user_ids:
        db.session.execute(db.select(User).where(User.id.in_(user_ids))).scalars().all()
    return [present(a, now, locale) for a in alerts]


def _not_loaded(model: type[Any], ids: set[uuid.UUID]) -> set[uuid.UUID]:
    """The ids whose rows the session does not hold yet (a timeline has its patient)."""
    return {i for i in ids if db.session.identity_map.get(identity_key(model, i)) is None}


def timeline_alerts(
    _app: Flask, *, patient: Patient, now: datetime, locale: str
) -> dict[str, list[dict[str, Any]]]:
    """Receiver of ``signals.patient_timeline``: every alert of the patient, oldest first
    (resolved ones too), in at most three queries whatever their number."""
    alerts = list(
        db.session.execute(
            db.select(Alert).filter_by(patient_id=patient.id).order_by(Alert.created_at, Alert.id)
        ).scalars()
    )
    return {"alerts": present_page(alerts, now, locale)}
