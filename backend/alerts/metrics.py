"""How the team is doing, week by week (docs/nurse-workflow.md, "Team metrics").

Per week (Monday 00:00 UTC to the next), over the alerts the week opened:

- time to acknowledge and to resolve per severity, median and 90th percentile (linear
  interpolation between the closest ranks, "type 7": what numpy's and a spreadsheet's
  ``PERCENTILE.INC`` give); resolved by the system (``SYSTEM_OUTCOMES``) is not a nurse's
  time and is left out of the time to resolve;
- overdue share: the alerts acknowledged after their target, or still not acknowledged with
  their target past, over the week's alerts;
- alerts per 100 patient-weeks, by kind and rule version: a patient counts from registration
  to the end of the follow-up (``deceased``, ``withdrawn``: the time of that status) or now,
  pro rata of the days within the week;
- false-alarm share: ``false_alarm`` outcomes over the alerts a nurse resolved.

Two statements whatever the number of alerts: the site's alerts of the period (the columns the
figures need), and its patients' follow-up periods.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from backend.alerts.models import SYSTEM_OUTCOMES, Alert
from backend.auth.principal import Principal
from backend.extensions import db
from backend.patients.models import ENDED_STATUSES, Patient

SEVERITIES = ("urgent", "high", "routine")
WEEK = timedelta(days=7)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) by linear interpolation between closest ranks."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def week_start(when: datetime) -> datetime:
    day = when.replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=day.weekday())


def _seconds(start: datetime, end: datetime | None) -> float | None:
    return (end - start).total_seconds() if end is not None else None


def _severity_rows(alerts: Sequence[Any], now: datetime) -> list[dict[str, Any]]:
    rows = []
    for severity in SEVERITIES:
        items = [a for a in alerts if a.severity == severity]
        ack = [
            s for s in (_seconds(a.created_at, a.acknowledged_at) for a in items) if s is not None
        ]
        res = [
            s
            for s in (
                _seconds(a.created_at, a.resolved_at)
                for a in items
                if a.outcome not in SYSTEM_OUTCOMES
            )
            if s is not None
        ]
        overdue = sum(
            1
            for a in items
            if (a.acknowledged_at is not None and a.acknowledged_at > a.due_at)
            or (a.acknowledged_at is None and a.due_at <= now and a.status != "resolved")
        )
        rows.append(
            {
                "severity": severity,
                "alerts": len(items),
                "acknowledged": len(ack),
                "median_seconds_to_acknowledge": percentile(ack, 0.5),
                "p90_seconds_to_acknowledge": percentile(ack, 0.9),
                "resolved": len(res),
                "median_seconds_to_resolve": percentile(res, 0.5),
                "p90_seconds_to_resolve": percentile(res, 0.9),
                "overdue_share": round(overdue / len(items), 4) if items else None,
            }
        )
    return rows


def _false_alarm_share(alerts: Iterable[Any]) -> float | None:
    by_nurse = [a for a in alerts if a.outcome and a.outcome not in SYSTEM_OUTCOMES]
    if not by_nurse:
        return None
    return round(sum(1 for a in by_nurse if a.outcome == "false_alarm") / len(by_nurse), 4)


def _exposure(
    periods: Sequence[tuple[datetime, datetime]], start: datetime, end: datetime
) -> float:
    """Patient-weeks within [start, end)."""
    total = 0.0
    for since, until in periods:
        overlap = (min(until, end) - max(since, start)).total_seconds()
        if overlap > 0:
            total += overlap / WEEK.total_seconds()
    return total


def _rates(alerts: Sequence[Any], patient_weeks: float) -> list[dict[str, Any]]:
    groups: dict[tuple[str, int], int] = {}
    for a in alerts:
        groups[(a.kind, a.rule_version)] = groups.get((a.kind, a.rule_version), 0) + 1
    return [
        {
            "kind": kind,
            "rule_version": version,
            "alerts": n,
            "per_100_patient_weeks": round(100 * n / patient_weeks, 2) if patient_weeks else None,
        }
        for (kind, version), n in sorted(groups.items())
    ]


def team_metrics(principal: Principal, now: datetime, weeks: int) -> dict[str, Any]:
    """The site's figures for the last ``weeks`` weeks (the current one included), by week and
    over the whole period."""
    first = week_start(now) - (weeks - 1) * WEEK
    alerts = db.session.execute(
        sa.select(
            Alert.kind,
            Alert.severity,
            Alert.status,
            Alert.rule_version,
            Alert.created_at,
            Alert.due_at,
            Alert.acknowledged_at,
            Alert.resolved_at,
            Alert.outcome,
        ).where(Alert.site_id == principal.site_id, Alert.created_at >= first)
    ).all()
    patients = db.session.execute(
        sa.select(Patient.created_at, Patient.status, Patient.status_changed_at).where(
            Patient.site_id == principal.site_id, Patient.created_at < now
        )
    ).all()
    periods = [
        (p.created_at, p.status_changed_at if p.status in ENDED_STATUSES else now) for p in patients
    ]
    rows = []
    for n in range(weeks):
        start = first + n * WEEK
        end = min(start + WEEK, now)
        items = [a for a in alerts if start <= a.created_at < start + WEEK]
        exposure = _exposure(periods, start, end)
        rows.append(
            {
                "week_start": start,
                "alerts": len(items),
                "patient_weeks": round(exposure, 3),
                "by_severity": _severity_rows(items, now),
                "rates": _rates(items, exposure),
                "false_alarm_share": _false_alarm_share(items),
            }
        )
    exposure = _exposure(periods, first, now)
    return {
        "since": first,
        "until": now,
        "weeks": rows,
        "totals": {
            "alerts": len(alerts),
            "patient_weeks": round(exposure, 3),
            "by_severity": _severity_rows(alerts, now),
            "rates": _rates(alerts, exposure),
            "false_alarm_share": _false_alarm_share(alerts),
        },
    }
