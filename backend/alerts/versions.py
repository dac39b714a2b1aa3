"""Rule versions per site, shadow evaluation of a candidate, and the comparison report.

A site has an *active* rule version (the one that raises alerts; version 1 until an admin
switches) and may have a *candidate*. Every change is a new ``SiteRuleVersion`` row, audited;
the latest row is in force, so the table is the history. The candidate evaluates every response
beside the active version, and what it would have raised is stored as ``ShadowSignal`` rows
only: no alert, no notification, no confirmation check-in, nothing in the queue, the timeline
or the pages. ``compare`` puts both versions side by side on the same patients for
``GET /reports/rules``.
"""

from __future__ import annotations

import functools
import statistics
import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from backend.alerts.models import Alert, ShadowSignal, SiteRuleVersion
from backend.alerts.rules import RULES_V1, RULESETS, Evaluation, RuleSet
from backend.audit.services import record
from backend.errors import ValidationProblem, field_error
from backend.extensions import db
from backend.patients.models import Patient, Procedure

HIGH_KINDS = ("possible_screw_loosening", "pain_recurrence")


def current_setting(site_id: uuid.UUID) -> SiteRuleVersion | None:
    """The row in force for a site (None: version 1, no candidate)."""
    return (
        db.session.execute(
            db.select(SiteRuleVersion)
            .filter_by(site_id=site_id)
            .order_by(SiteRuleVersion.set_at.desc(), SiteRuleVersion.id.desc())
            .limit(1)
        )
        .scalars()
        .first()
    )


def site_rules(site_id: uuid.UUID) -> tuple[RuleSet, RuleSet | None]:
    """The site's active rule set and its candidate (if any): ``current_setting``'s two
    columns, by a statement built once (read at every answer)."""
    return rules_of(db.session.execute(setting_versions(), {"site_id": site_id}).first())


def rules_of(setting: Any) -> tuple[RuleSet, RuleSet | None]:
    """The rule sets of a row of ``setting_versions`` (None, or no version: version 1)."""
    if setting is None or setting.active_version is None:
        return RULES_V1, None
    candidate = setting.candidate_version
    return RULESETS[setting.active_version], RULESETS[candidate] if candidate else None


@functools.cache
def setting_versions() -> sa.Select[Any]:
    """The active and candidate versions of the row in force for the site (bound parameter
    ``site_id``), as a statement built once; the alert engine reads it in its first
    statement (``services.evaluate_patient``)."""
    table = SiteRuleVersion.__table__
    return (
        sa.select(table.c.active_version, table.c.candidate_version)
        .where(table.c.site_id == sa.bindparam("site_id", type_=table.c.site_id.type))
        .order_by(table.c.set_at.desc(), table.c.id.desc())
        .limit(1)
    )


def history(site_id: uuid.UUID) -> list[SiteRuleVersion]:
    return list(
        db.session.execute(
            db.select(SiteRuleVersion)
            .filter_by(site_id=site_id)
            .order_by(SiteRuleVersion.set_at.desc(), SiteRuleVersion.id.desc())
        ).scalars()
    )


def set_versions(
    site_id: uuid.UUID,
    active: int,
    candidate: int | None,
    reason: str | None,
    now: datetime,
    actor_id: uuid.UUID | None = None,
) -> SiteRuleVersion:
    """Switch a site's active and candidate versions (a new history row, audited)."""
    errors = []
    if active not in RULESETS:
        errors.append(field_error("/active_version", f"expected one of {sorted(RULESETS)}"))
    if candidate is not None and candidate not in RULESETS:
        errors.append(field_error("/candidate_version", f"expected one of {sorted(RULESETS)}"))
    if candidate is not None and candidate == active:
        errors.append(field_error("/candidate_version", "must differ from the active version"))
    if errors:
        raise ValidationProblem(errors)
    previous = current_setting(site_id)
    row = SiteRuleVersion(
        site_id=site_id,
        active_version=active,
        candidate_version=candidate,
        set_at=now,
        set_by_id=actor_id,
        reason=reason,
    )
    db.session.add(row)
    db.session.flush()
    record(
        "rules.set_versions",
        now=now,
        actor=None,
        actor_type="user" if actor_id else "system",
        resource_type="site",
        resource_id=site_id,
        site_id=site_id,
        actor_id=actor_id,
        details={
            "active_version": active,
            "candidate_version": candidate,
            "previous": None
            if previous is None
            else {
                "active_version": previous.active_version,
                "candidate_version": previous.candidate_version,
            },
            "reason": reason,
        },
    )
    return row


def record_shadow(
    patient: Patient, procedure: Procedure, evaluation: Evaluation, version: int, now: datetime
) -> int:
    """Store the candidate's signals not stored yet; returns how many were new."""
    known = set(
        db.session.execute(
            db.select(ShadowSignal.signal_key).filter_by(
                procedure_id=procedure.id, rule_version=version
            )
        ).scalars()
    )
    added = 0
    for signal in evaluation.signals:
        key = f"{signal.kind}:{signal.response_id or signal.answered_at.isoformat()}"
        if key in known:
            continue
        known.add(key)
        db.session.add(
            ShadowSignal(
                site_id=patient.site_id,
                patient_id=patient.id,
                procedure_id=procedure.id,
                rule_version=version,
                kind=signal.kind,
                severity=signal.severity,
                signal_key=key,
                response_id=uuid.UUID(signal.response_id) if signal.response_id else None,
                answered_at=signal.answered_at,
                reasons=[{"code": r.code, "details": r.details} for r in signal.reasons],
                summary=dict(signal.summary),
                recorded_at=now,
            )
        )
        added += 1
    if added:
        db.session.flush()
    return added


def compare(site_id: uuid.UUID) -> list[dict[str, Any]]:
    """Each candidate version that ran at the site against the alerts raised meanwhile, on the
    same patients, per alert kind: who each would have alerted, the candidate's lead (positive)
    or lag (negative) in days on the patients both alerted, and the nurses' outcomes of the
    active version's alerts the candidate agreed with or stayed silent on."""
    shadows = db.session.execute(db.select(ShadowSignal).filter_by(site_id=site_id)).scalars()
    first_shadow: dict[int, dict[tuple[str, uuid.UUID], datetime]] = {}
    since: dict[int, datetime] = {}
    for s in shadows:
        firsts = first_shadow.setdefault(s.rule_version, {})
        key = (s.kind, s.patient_id)
        if key not in firsts or s.answered_at < firsts[key]:
            firsts[key] = s.answered_at
        since[s.rule_version] = min(since.get(s.rule_version, s.recorded_at), s.recorded_at)
    rows = []
    for version, firsts in sorted(first_shadow.items()):
        alerts = db.session.execute(
            db.select(Alert).filter(Alert.site_id == site_id, Alert.rule_version != version)
        ).scalars()
        first_alert: dict[tuple[str, uuid.UUID], Alert] = {}
        for alert in alerts:
            key = (alert.kind, alert.patient_id)
            if key not in first_alert or alert.created_at < first_alert[key].created_at:
                first_alert[key] = alert
        kinds = sorted({k for k, _ in firsts} | {k for k, _ in first_alert})
        for kind in kinds:
            cand = {p for k, p in firsts if k == kind}
            act = {p for k, p in first_alert if k == kind}
            leads = [
                (_opened_at(first_alert[(kind, p)]) - firsts[(kind, p)]).total_seconds() / 86400
                for p in cand & act
            ]
            agreed: dict[str, int] = {}
            silent: dict[str, int] = {}
            for p in act:
                outcome = first_alert[(kind, p)].outcome
                if outcome:
                    bucket = agreed if p in cand else silent
                    bucket[outcome] = bucket.get(outcome, 0) + 1
            rows.append(
                {
                    "candidate_version": version,
                    "active_versions": sorted({first_alert[(kind, p)].rule_version for p in act}),
                    "kind": kind,
                    "patients_candidate": len(cand),
                    "patients_active": len(act),
                    "patients_both": len(cand & act),
                    "candidate_only": len(cand - act),
                    "active_only": len(act - cand),
                    "median_lead_days": round(statistics.median(leads), 2) if leads else None,
                    "outcomes_candidate_agreed": agreed,
                    "outcomes_candidate_silent": silent,
                }
            )
    return rows


def _opened_at(alert: Alert) -> datetime:
    """When the evidence that opened the alert was answered (compared with answered_at)."""
    signals = alert.evidence.get("signals", [])
    answered = signals[0].get("response", {}).get("answered_at") if signals else None
    return datetime.fromisoformat(answered) if answered else alert.created_at
