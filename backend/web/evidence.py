"""An alert's evidence in words, for the nurse pages: what the patient reported, why it fired,
against what.

The evidence is the structure the alert rules store (``backend.alerts.rules``: per signal the
response, the reasons with their details, the reference points and the thresholds). The words
are the rules' own (``backend.alerts.wording``: one table, French and English, for the API and
the pages); this module arranges them for the page, in the page's language, with the pages'
labels for stored values. It decides nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from backend.alerts import wording
from backend.web.i18n import current_locale, label


@dataclass
class Finding:
    """One signal of the alert, in words."""

    day: int | None
    answered_at: datetime | None
    response_id: str | None = None  # the report it rests on: who entered it is shown beside
    reported: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    also: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    rule: str = ""
    thresholds: list[str] = field(default_factory=list)


def reported(response: Mapping[str, Any]) -> list[str]:
    """What the patient answered, as short phrases, in the page's language."""
    return wording.reported(response, current_locale(), label)


def reason(code: str, d: Mapping[str, Any]) -> str:
    """One reason the rule fired, with its numbers, in the page's language."""
    return wording.reason(code, d, current_locale(), label)


def references(ref: Mapping[str, Any]) -> list[str]:
    return wording.references(ref, current_locale())


def describe(evidence: Mapping[str, Any]) -> list[Finding]:
    """Every signal of the alert, oldest first."""
    findings = []
    for signal in evidence.get("signals", []):
        response = signal.get("response")
        answered = response.get("answered_at") if response else None
        finding = Finding(
            day=response.get("day") if response else None,
            answered_at=datetime.fromisoformat(answered) if answered else None,
            response_id=response.get("id") if response else None,
        )
        if response:
            finding.reported = reported(response)
        finding.reasons = [
            reason(r["code"], r.get("details", {})) for r in signal.get("reasons", [])
        ]
        finding.also = [
            reason(r["code"], r.get("details", {})) for r in signal.get("accompanying", [])
        ]
        finding.references = references(signal.get("reference") or {})
        rule = signal.get("rule") or {}
        if rule:
            finding.rule = wording.rule_name(rule, current_locale())
        finding.thresholds = [
            f"{name} = {', '.join(map(str, value)) if isinstance(value, list) else value}"
            for name, value in (signal.get("thresholds") or {}).items()
        ]
        if not response and signal.get("missed"):
            last = signal["missed"][-1]
            finding.day = last.get("day")
        findings.append(finding)
    return findings
