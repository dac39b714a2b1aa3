"""An alert's evidence in words: what the patient reported, why it fired, against what.

The evidence is the structure the alert rules store (``backend.alerts.rules``: per signal the
response, the reasons with their details, the reference points and the thresholds). This module
only reads it and says it in the nurse's language; it decides nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask_babel import gettext, ngettext

from backend.questionnaires.vocabulary import AID_LEVELS, ANALGESIC_STEPS
from backend.web.i18n import label, number


def _(text: str, **variables: Any) -> str:
    return str(gettext(text, **variables))


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


def _symptoms(values: Iterable[str]) -> str:
    return ", ".join(label(v, "symptom") for v in values)


def _analgesic(step: int | None) -> str:
    return label(ANALGESIC_STEPS[step], "analgesics") if step is not None else ""


def _aid(level: int | None) -> str:
    return label(AID_LEVELS[level], "walking_aid") if level is not None else ""


def _when(details: Mapping[str, Any]) -> str:
    if details.get("source") == "response" and details.get("day") is not None:
        return _("day %(day)s", day=details["day"])
    return _("before the procedure")


def _days(days: Iterable[int]) -> str:
    unique = sorted(set(days))
    joined = ", ".join(map(str, unique))
    return str(ngettext("day %(days)s", "days %(days)s", len(unique), days=joined))


def reported(response: Mapping[str, Any]) -> list[str]:
    """What the patient answered, as short phrases."""
    out = [
        _("walking pain %(value)s/10", value=response["pain_walking"]),
        _("rest pain %(value)s/10", value=response["pain_rest"]),
    ]
    if response.get("mobility_score") is not None:
        out.append(_("mobility score %(value)s/9", value=response["mobility_score"]))
    out.append(_("analgesics: %(value)s", value=_analgesic(response.get("analgesic_step"))))
    out.append(_("walking aid: %(value)s", value=_aid(response.get("aid_level"))))
    if response.get("fell"):
        out.append(_("a fall"))
    symptoms = response.get("symptoms") or []
    out.append(_("symptoms: %(value)s", value=_symptoms(symptoms)) if symptoms else _("no symptom"))
    if response.get("change"):
        out.append(_("feels %(value)s", value=label(response["change"], "change")))
    if response.get("call_request"):
        out.append(_("asks for a nurse to call"))
    return out


def reason(code: str, d: Mapping[str, Any]) -> str:
    """One reason the rule fired, with its numbers."""
    if code == "pain_recurrence":
        text = _(
            "Walking pain %(pain)s/10 against a best of %(nadir)s/10",
            pain=d["pain_walking"],
            nadir=number(d["nadir"]),
        )
        if "baseline" in d.get("routes", []):
            text += " " + _(
                "(back to the pre-procedure %(baseline)s/10)", baseline=d["baseline_pain_walking"]
            )
        if d.get("confirmed"):
            text += "; " + _("second report in a row")
        elif d.get("corroborated_by") and not d.get("immediate"):
            text += "; " + _("with another sign of the same trouble")
        elif d.get("immediate"):
            text += "; " + _("severe in a single report")
        return text
    if code == "no_relief":
        return _(
            "No lasting relief: walking pain %(previous)s/10 then %(pain)s/10, never 2 points or "
            "30 percent below the pre-procedure %(baseline)s/10 (best %(nadir)s/10)",
            previous=d["previous_pain_walking"],
            pain=d["pain_walking"],
            baseline=d["baseline_pain_walking"],
            nadir=number(d["nadir"]),
        )
    if code == "mechanical_sign":
        return _(
            "Mechanical sign (%(signs)s) with walking pain %(pain)s/10, above its best of "
            "%(nadir)s/10",
            signs=_symptoms(d["symptoms"]),
            pain=d["pain_walking"],
            nadir=number(d["nadir"]),
        )
    if code == "mobility_decline":
        return _(
            "Mobility score %(score)s/9, down from a best of %(best)s/9 (%(when)s)",
            score=d["mobility_score"],
            best=d["best_mobility"],
            when=_when(d),
        )
    if code == "nerve_symptom":
        return _(
            "Possible nerve injury or cement leak: %(symptoms)s", symptoms=_symptoms(d["symptoms"])
        )
    if code == "embolism_symptom":
        return _("Possible cement embolism: %(symptoms)s", symptoms=_symptoms(d["symptoms"]))
    if code == "infection":
        return _("Possible infection: %(symptoms)s", symptoms=_symptoms(d["symptoms"]))
    if code == "fall_with_pain_rise":
        return _(
            "A fall, with walking pain %(pain)s/10 against %(before)s/10 (%(when)s)",
            pain=d["pain_walking"],
            before=d["previous_pain_walking"],
            when=_when(d),
        )
    if code == "newly_unable_to_walk":
        if d.get("previous_aid_level") is None:
            return _("Now unable to walk")
        return _(
            "Now unable to walk; walking aid before: %(aid)s (%(when)s)",
            aid=_aid(d["previous_aid_level"]),
            when=_when(d),
        )
    if code == "analgesic_escalation":
        return _(
            "Now on %(now)s, after %(low)s (%(when)s)",
            now=_analgesic(d["analgesic_step"]),
            low=_analgesic(d["lowest_analgesic_step"]),
            when=_when(d),
        )
    if code == "walking_aid_worse":
        return _(
            "Walking aid now %(now)s, against %(best)s at best (%(when)s)",
            now=_aid(d["aid_level"]),
            best=_aid(d["best_aid_level"]),
            when=_when(d),
        )
    if code == "new_contralateral_pain":
        return _("New pain on the other side")
    if code == "fever_alone":
        return _("Fever without a wound sign")
    if code == "wound_sign_alone":
        return _("%(signs)s without fever", signs=_symptoms(d["symptoms"]))
    if code == "much_worse":
        return _("Feels %(change)s", change=label(d["change"], "change"))
    if code == "call_request":
        return _("Asks for a nurse to call")
    if code in ("two_missed", "missed_from_day_30"):
        days = [m["day"] for m in d.get("missed", [])]
        if code == "two_missed":
            return _("Scheduled questionnaires missed in a row: %(days)s", days=_days(days))
        return _("Scheduled questionnaire missed from day 30 on: %(days)s", days=_days(days))
    return code  # a reason this page does not know yet: its code, rather than nothing


def references(ref: Mapping[str, Any]) -> list[str]:
    out = []
    nadir = ref.get("nadir")
    if nadir and nadir.get("settled"):  # rules version 2: the median of the settled reports
        out.append(
            _(
                "settled walking pain (median) %(value)s/10, %(days)s",
                value=number(nadir["value"]),
                days=_days(nadir["days"]),
            )
        )
    elif nadir:
        out.append(
            _(
                "best settled walking pain (nadir) %(value)s/10, %(days)s",
                value=number(nadir["value"]),
                days=_days(nadir["days"]),
            )
        )
    best = ref.get("best_mobility")
    if best:
        out.append(
            _("best mobility score %(value)s/9, %(when)s", value=best["value"], when=_when(best))
        )
    baseline = ref.get("baseline") or {}
    if baseline:
        out.append(
            _(
                "before the procedure: walking pain %(walking)s/10, rest pain %(rest)s/10",
                walking=baseline.get("pain_walking"),
                rest=baseline.get("pain_rest"),
            )
        )
    return out


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
            finding.rule = _(
                "rule %(key)s, version %(version)s",
                key=rule.get("key"),
                version=rule.get("version"),
            )
        finding.thresholds = [
            f"{name} = {', '.join(map(str, value)) if isinstance(value, list) else value}"
            for name, value in (signal.get("thresholds") or {}).items()
        ]
        if not response and signal.get("missed"):
            last = signal["missed"][-1]
            finding.day = last.get("day")
        findings.append(finding)
    return findings
