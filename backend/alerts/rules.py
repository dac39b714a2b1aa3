"""Alert rules engine (clinical.md, "Alert rules (version 1)"): pure, standard library only.

`evaluate()` turns one patient's procedure, responses and missed questionnaires into signals,
one per (response, alert kind) that fires, plus the confirmation check-ins the pain-recurrence
rule asks for. `reconcile()` groups signals into the one open alert per kind that the database
keeps.
Thresholds and symptom lists are data (`ruleset_v1.json`, loaded by `load_ruleset()`), so a site
can tune them without code; every signal records the rule version that fired. This module is the
clinical logic only: what the patient and the nurse read (each signal's one-sentence summary in
French and English) is worded in `backend.alerts.wording`.

Where the specification is silent, this module decides as follows (each decision is tested):
 1. The first response has no nadir: pain recurrence, and the mechanical-sign and mobility routes
    to loosening, cannot fire on it and it asks for no confirmation; red flags, call requests and
    worsening can.
 2. "Improved by 2+" (the back-to-baseline route) is measured on the nadir, the settled best, not
    on one low report: the same noise argument as for the nadir itself.
 3. "Previous" for the first response is the pre-procedure baseline: its walking pain for the fall
    rule, its walking aid for "newly unable". With no baseline walking aid, `unable` on the first
    response counts as newly unable (an urgent flag is not suppressed by missing data).
 4. Best walking aid: the lowest aid level among earlier responses, the baseline aid if none
    (mirrors best mobility).
 5. Lowest analgesic step: among earlier responses only (the baseline is before discharge), so
    the first response cannot escalate.
 6. Confirmation: the previous response must itself have met the criterion against its own
    reference points; a response at 7+ fires at once only if it meets the criterion.
 7. A confirmation check-in is asked only when no alert of the kind it would confirm fires on the
    same response (a mechanical sign may already open loosening).
 8. Worsening does not fire on a response that fires loosening or pain recurrence; the worsening
    reasons it had are kept in that signal's evidence under "accompanying".
 9. Worsening may fire beside a red flag: only fever or a wound sign, which the infection flag
    already covers together, is excluded ("alone").
10. State criteria (mobility decline, analgesic escalation, walking aid worse) fire on every
    response that meets them; deduplication into one open alert is the database's job.
11. Responses are ordered by (answered_at, id); ties between equal reference points keep the
    earliest.
12. Missed questionnaires are consecutive when no response (scheduled or not) was answered
    between their closing times; missed confirmation check-ins neither count nor break a run;
    each further miss of a run fires again (the open alert gathers them).
"""

import hashlib
import json
import math
from bisect import bisect_right, insort
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
from math import isfinite
from pathlib import Path
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

from backend.alerts import wording

# Vocabularies of clinical.md ("Procedure record", "Instruments").
PROCEDURE_KINDS = frozenset(
    {
        "cementoplasty",
        "screw_fixation",
        "screw_fixation_cementoplasty",
        "sclerotherapy",
        "other_hardware",
    }
)
SYMPTOMS = frozenset(
    {
        "clicking",
        "giving_way",
        "entry_point_bump",
        "new_contralateral_pain",
        "wound_redness",
        "wound_discharge",
        "fever",
        "leg_weakness",
        "numbness",
        "bladder_bowel",
        "breathlessness",
        "chest_pain",
    }
)
CHANGES = (
    "very_much_improved",
    "much_improved",
    "minimally_improved",
    "no_change",
    "minimally_worse",
    "much_worse",
    "very_much_worse",
)
MISSED_REASONS = frozenset({"protocol", "confirmation"})

# Alert kinds in the order signals of one instant are listed; severities from most urgent.
ALERT_KINDS = (
    "red_flag",
    "possible_screw_loosening",
    "pain_recurrence",
    "call_request",
    "worsening",
    "no_response",
)
SEVERITIES = ("urgent", "high", "routine")
_KIND_ORDER = {kind: i for i, kind in enumerate(ALERT_KINDS)}
_SEVERITY_RANK = {severity: i for i, severity in enumerate(SEVERITIES)}

RULESET_V1_PATH = Path(__file__).with_name("ruleset_v1.json")
RULESET_V2_PATH = Path(__file__).with_name("ruleset_v2.json")
# Worsening reasons (and the mechanical sign) that may corroborate a pain recurrence at once.
CORROBORATING = frozenset(
    {
        "mechanical_sign",
        "mobility_decline",
        "analgesic_escalation",
        "walking_aid_worse",
        "much_worse",
    }
)


# --------------------------------------------------------------------------------------------
# Rule set
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleSet:
    """Every threshold and list of the alert rules; built from data by `load_ruleset()`."""

    version: int
    severities: Mapping[str, str]
    screw_kinds: frozenset[str]
    recurrence_kinds: frozenset[str]
    recurrence_min_rise: int
    recurrence_min_relative: float
    recurrence_immediate_level: int
    return_to_baseline_min_improvement: int
    confirmation_delay_days: int
    mechanical_signs: frozenset[str]
    mechanical_sign_min_rise: int
    mobility_decline: int
    analgesic_escalation_min_step: int
    walking_aid_worse_levels: int
    unable_aid_level: int
    fall_pain_rise: int
    nerve_symptoms: frozenset[str]
    embolism_symptoms: frozenset[str]
    fever_symptoms: frozenset[str]
    wound_symptoms: frozenset[str]
    contralateral_symptoms: frozenset[str]
    much_worse_changes: frozenset[str]
    no_response_consecutive: int
    no_response_single_from_day: int
    # Version 2 (ruleset_v2.json); the defaults are version 1's behaviour, so a rule set that
    # leaves them out (ruleset_v1.json) is evaluated exactly as before.
    nadir_window: int = 2
    immediate_min_rise: int | None = None
    settled_from_day: int | None = None
    settled_min_reports: int = 2
    noise_multiple: float | None = None
    no_relief_from_day: int | None = None
    no_relief_min_pain: int = 4
    corroborating_signs: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        # Every procedure kind must map to exactly one high alert kind, or a relapse is silent.
        both = self.screw_kinds & self.recurrence_kinds
        if both:
            raise ValueError(f"screw_kinds and recurrence_kinds share {sorted(both)}")
        uncovered = PROCEDURE_KINDS - self.screw_kinds - self.recurrence_kinds
        if uncovered:
            raise ValueError(f"recurrence_kinds: no rule for procedure kinds {sorted(uncovered)}")


def _parse_int(minimum: int, maximum: int | None = None) -> Callable[[str, Any], int]:
    def parse(key: str, value: Any) -> int:
        if type(value) is not int or value < minimum or (maximum is not None and value > maximum):
            bounds = f"{minimum}..{maximum}" if maximum is not None else f">= {minimum}"
            raise ValueError(f"{key}: expected an integer {bounds}, got {value!r}")
        return value

    return parse


def _parse_fraction(key: str, value: Any) -> float:
    if type(value) not in (int, float) or not isfinite(value) or not 0 <= value <= 10:
        raise ValueError(f"{key}: expected a number between 0 and 10, got {value!r}")
    return float(value)


def _parse_optional_int(minimum: int) -> Callable[[str, Any], int | None]:
    parse_int = _parse_int(minimum)

    def parse(key: str, value: Any) -> int | None:
        return None if value is None else parse_int(key, value)

    return parse


def _parse_optional_fraction(key: str, value: Any) -> float | None:
    return None if value is None else _parse_fraction(key, value)


def _parse_names(
    vocabulary: frozenset[str], allow_empty: bool = False
) -> Callable[[str, Any], frozenset[str]]:
    def parse(key: str, value: Any) -> frozenset[str]:
        if not isinstance(value, list) or not (value or allow_empty):
            raise ValueError(f"{key}: expected a non-empty list, got {value!r}")
        for name in value:
            if name not in vocabulary:
                raise ValueError(f"{key}: unknown value {name!r}")
        if len(set(value)) != len(value):
            raise ValueError(f"{key}: duplicate values in {value!r}")
        return frozenset(value)

    return parse


def _parse_severities(key: str, value: Any) -> Mapping[str, str]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{key}: expected an object, got {value!r}")
    for kind in value:
        if kind not in _KIND_ORDER:
            raise ValueError(f"{key}.{kind}: unknown alert kind")
    for kind in ALERT_KINDS:
        if kind not in value:
            raise ValueError(f"{key}.{kind}: missing")
        if value[kind] not in _SEVERITY_RANK:
            raise ValueError(f"{key}.{kind}: expected one of {SEVERITIES}, got {value[kind]!r}")
    return MappingProxyType({kind: value[kind] for kind in ALERT_KINDS})  # RULES_V1 is shared


_PARSERS: dict[str, Callable[[str, Any], Any]] = {
    "version": _parse_int(1),
    "severities": _parse_severities,
    "screw_kinds": _parse_names(PROCEDURE_KINDS),
    "recurrence_kinds": _parse_names(PROCEDURE_KINDS),
    "recurrence_min_rise": _parse_int(1, 10),
    "recurrence_min_relative": _parse_fraction,
    "recurrence_immediate_level": _parse_int(0, 10),
    "return_to_baseline_min_improvement": _parse_int(1, 10),
    "confirmation_delay_days": _parse_int(1),
    "mechanical_signs": _parse_names(SYMPTOMS),
    "mechanical_sign_min_rise": _parse_int(0, 10),
    "mobility_decline": _parse_int(1, 9),
    "analgesic_escalation_min_step": _parse_int(0, 3),
    "walking_aid_worse_levels": _parse_int(1, 5),
    "unable_aid_level": _parse_int(0, 5),
    "fall_pain_rise": _parse_int(0, 10),
    "nerve_symptoms": _parse_names(SYMPTOMS),
    "embolism_symptoms": _parse_names(SYMPTOMS),
    "fever_symptoms": _parse_names(SYMPTOMS),
    "wound_symptoms": _parse_names(SYMPTOMS),
    "contralateral_symptoms": _parse_names(SYMPTOMS),
    "much_worse_changes": _parse_names(frozenset(CHANGES)),
    "no_response_consecutive": _parse_int(1),
    "no_response_single_from_day": _parse_int(0),
    "nadir_window": _parse_int(2, 5),
    "immediate_min_rise": _parse_optional_int(0),
    "settled_from_day": _parse_optional_int(0),
    "settled_min_reports": _parse_int(1),
    "noise_multiple": _parse_optional_fraction,
    "no_relief_from_day": _parse_optional_int(1),
    "no_relief_min_pain": _parse_int(0, 10),
    "corroborating_signs": _parse_names(CORROBORATING, allow_empty=True),
}
assert list(_PARSERS) == [f.name for f in fields(RuleSet)]
# Keys a rule set may leave out: version 1 predates them and keeps its behaviour.
_OPTIONAL = frozenset(
    {
        "nadir_window",
        "immediate_min_rise",
        "settled_from_day",
        "settled_min_reports",
        "noise_multiple",
        "no_relief_from_day",
        "no_relief_min_pain",
        "corroborating_signs",
    }
)


def load_ruleset(data: Mapping[str, Any]) -> RuleSet:
    """Validate rule data (e.g. a site's stored JSON); a ValueError names the bad key."""
    for key in data:
        if key not in _PARSERS:
            raise ValueError(f"{key}: unknown rule set key")
    for key in _PARSERS:
        if key not in data and key not in _OPTIONAL:
            raise ValueError(f"{key}: missing rule set key")
    return RuleSet(**{key: parse(key, data[key]) for key, parse in _PARSERS.items() if key in data})


RULES_V1 = load_ruleset(json.loads(RULESET_V1_PATH.read_text(encoding="utf-8")))
RULES_V2 = load_ruleset(json.loads(RULESET_V2_PATH.read_text(encoding="utf-8")))
# The shipped versions a site can choose between (a site's own versions come later as data).
RULESETS: Mapping[int, RuleSet] = MappingProxyType({1: RULES_V1, 2: RULES_V2})


# --------------------------------------------------------------------------------------------
# Inputs and outputs
# --------------------------------------------------------------------------------------------


def _check_range(name: str, value: int | None, low: int, high: int, optional: bool = False) -> None:
    if value is None and optional:
        return
    if type(value) is not int or not low <= value <= high:
        raise ValueError(f"{name}: expected an integer {low}..{high}, got {value!r}")


def _check_aware(name: str, value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name}: expected an aware datetime, got {value!r}")


@dataclass(frozen=True)
class ProcedureFacts:
    kind: str
    discharged_on: date
    baseline_pain_walking: int
    baseline_pain_rest: int
    baseline_mobility: int | None
    baseline_analgesic_step: int | None
    baseline_aid_level: int | None

    def __post_init__(self) -> None:
        if self.kind not in PROCEDURE_KINDS:
            raise ValueError(f"kind: unknown procedure kind {self.kind!r}")
        _check_range("baseline_pain_walking", self.baseline_pain_walking, 0, 10)
        _check_range("baseline_pain_rest", self.baseline_pain_rest, 0, 10)
        _check_range("baseline_mobility", self.baseline_mobility, 0, 9, optional=True)
        _check_range("baseline_analgesic_step", self.baseline_analgesic_step, 0, 3, optional=True)
        _check_range("baseline_aid_level", self.baseline_aid_level, 0, 5, optional=True)


@dataclass(frozen=True)
class ResponseFacts:
    id: str
    answered_at: datetime
    day: int
    pain_walking: int
    pain_rest: int
    analgesic_step: int
    aid_level: int
    fell: bool
    symptoms: frozenset[str]
    change: str
    call_request: bool
    mobility_score: int | None = None

    def __post_init__(self) -> None:
        _check_aware("answered_at", self.answered_at)
        _check_range("pain_walking", self.pain_walking, 0, 10)
        _check_range("pain_rest", self.pain_rest, 0, 10)
        _check_range("analgesic_step", self.analgesic_step, 0, 3)
        _check_range("aid_level", self.aid_level, 0, 5)
        _check_range("mobility_score", self.mobility_score, 0, 9, optional=True)


@dataclass(frozen=True)
class MissedFacts:
    assignment_id: str
    day: int
    closes_at: datetime
    reason: str

    def __post_init__(self) -> None:
        _check_aware("closes_at", self.closes_at)
        if self.reason not in MISSED_REASONS:
            expected = sorted(MISSED_REASONS)
            raise ValueError(f"reason: expected one of {expected}, got {self.reason!r}")


@dataclass(frozen=True)
class Reason:
    """Why a signal fired: `code` (e.g. "nerve_symptom") and JSON-serialisable `details`."""

    code: str
    details: dict[str, Any]


@dataclass(frozen=True)
class Signal:
    """One alert kind firing for one response (or, for no_response, one missed questionnaire)."""

    kind: str
    severity: str
    response_id: str | None
    answered_at: datetime
    rule_key: str
    rule_version: int
    reasons: tuple[Reason, ...]
    evidence: dict[str, Any]
    summary: dict[str, str]


@dataclass(frozen=True)
class ConfirmationRequest:
    """An extra check-in asked `confirmation_delay_days` after an unconfirmed pain recurrence.

    The rules own its date: ``due_on`` in the patient's zone is what the service plans (the
    service never reads the delay from the rule set itself)."""

    response_id: str
    answered_at: datetime
    due: datetime
    due_day: int
    alert_kind: str
    delay_days: int

    def due_on(self, zone: ZoneInfo) -> date:
        """The check-in's local calendar date: ``delay_days`` after the answer's local date."""
        return self.answered_at.astimezone(zone).date() + timedelta(days=self.delay_days)


@dataclass(frozen=True)
class Evaluation:
    signals: list[Signal]
    confirmation_requests: list[ConfirmationRequest]


@dataclass(frozen=True)
class AlertPlan:
    """The open episode of one alert kind: the alert the database should hold open."""

    kind: str
    severity: str
    rule_version: int
    signals: tuple[Signal, ...]
    opened_by: Signal
    evidence: list[dict[str, Any]]
    summary: dict[str, str]


# --------------------------------------------------------------------------------------------
# Reference points
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Nadir:
    """Best settled walking pain: a mean of two consecutive reports (or the only one).

    Version 2 (`settled` true): once enough reports from `settled_from_day` exist, the median
    of those answered before the previous response: the patient's own settled level, not the
    luckiest pair of reports, and not lifted by a relapse's first report.
    """

    value: Fraction
    responses: tuple[ResponseFacts, ...]
    settled: bool = False
    noise: float | None = None  # the patient's own day-to-day SD around the settled level


@dataclass(frozen=True)
class _Best:
    """A best (or lowest) value and the response it came from; None means the baseline."""

    value: int
    response: ResponseFacts | None


@dataclass(frozen=True)
class _Reference:
    nadir: _Nadir | None
    best_mobility: _Best | None
    previous: ResponseFacts | None
    lowest_analgesic: _Best | None
    best_aid: _Best | None


# Day-to-day SD of a 0-10 pain rating (about one point): the prior the patient's own spread is
# shrunk towards, as if two reports had shown it, so two lucky identical reports do not make a
# hair trigger.
PRIOR_NOISE_SD = 1.0
PRIOR_NOISE_WEIGHT = 2


def _noise(pool: Sequence[ResponseFacts], level: Fraction) -> float:
    squares = sum((r.pain_walking - float(level)) ** 2 for r in pool)
    weight = PRIOR_NOISE_WEIGHT
    return math.sqrt((squares + weight * PRIOR_NOISE_SD**2) / (len(pool) - 1 + weight))


def _answered_order(response: ResponseFacts) -> tuple[datetime, str]:
    return response.answered_at, response.id


def _pain_order(response: ResponseFacts) -> tuple[int, datetime, str]:
    return response.pain_walking, response.answered_at, response.id


class _Tracker:
    """Running reference points, updated once per response: O(1) per response."""

    def __init__(self, procedure: ProcedureFacts, rules: RuleSet | None = None) -> None:
        rules = rules or RULES_V1
        self.procedure = procedure
        self.window = window = rules.nadir_window
        self.settled_from = rules.settled_from_day
        self.settled_min = rules.settled_min_reports
        self.pool: list[ResponseFacts] = []  # settled reports before the previous, by pain
        self.previous: ResponseFacts | None = None
        self.recent: deque[ResponseFacts] = deque(maxlen=window)
        # The lowest total of `window` consecutive walking pains, and those responses.
        self.best: tuple[int, tuple[ResponseFacts, ...]] | None = None
        self.mobility: _Best | None = None
        self.analgesic: _Best | None = None
        self.aid: _Best | None = None

    def reference(self) -> _Reference:
        baseline = self.procedure
        nadir: _Nadir | None = None
        if self.settled_from is not None and len(self.pool) >= self.settled_min:
            pool, n = self.pool, len(self.pool)
            middle = pool[(n - 1) // 2 : n // 2 + 1]
            value = Fraction(sum(r.pain_walking for r in middle), len(middle))
            nadir = _Nadir(
                value, tuple(sorted(pool, key=_answered_order)), True, _noise(pool, value)
            )
        elif self.best is not None:
            total, window = self.best
            nadir = _Nadir(Fraction(total, len(window)), window)
        elif self.recent:
            # Fewer reports than the window: their mean (version 1: the single earlier value).
            recent = tuple(self.recent)
            nadir = _Nadir(Fraction(sum(r.pain_walking for r in recent), len(recent)), recent)
        mobility = self.mobility
        if mobility is None and baseline.baseline_mobility is not None:
            mobility = _Best(baseline.baseline_mobility, None)
        aid = self.aid
        if aid is None and baseline.baseline_aid_level is not None:
            aid = _Best(baseline.baseline_aid_level, None)
        return _Reference(nadir, mobility, self.previous, self.analgesic, aid)

    def add(self, response: ResponseFacts) -> None:
        previous = self.previous
        settled_from = self.settled_from
        if settled_from is not None and previous is not None and previous.day >= settled_from:
            insort(self.pool, previous, key=_pain_order)
        self.recent.append(response)
        if len(self.recent) == self.window:
            total = sum(r.pain_walking for r in self.recent)
            if self.best is None or total < self.best[0]:  # ties keep the earliest
                self.best = (total, tuple(self.recent))
        score = response.mobility_score
        if score is not None and (self.mobility is None or score > self.mobility.value):
            self.mobility = _Best(score, response)
        if self.analgesic is None or response.analgesic_step < self.analgesic.value:
            self.analgesic = _Best(response.analgesic_step, response)
        if self.aid is None or response.aid_level < self.aid.value:
            self.aid = _Best(response.aid_level, response)
        self.previous = response


_ANY_PROCEDURE = ProcedureFacts("cementoplasty", date(2000, 1, 1), 0, 0, None, None, None)
_ANY_INSTANT = datetime(2000, 1, 1, tzinfo=UTC)


def walking_nadir(
    walking: Sequence[tuple[int, int]], rules: RuleSet | None = None
) -> tuple[Fraction, tuple[int, ...]] | None:
    """The nadir the rules compare the next report with, after ``walking``: (day, walking pain)
    reports in answered order. Returns its value and the indexes of the reports it comes from
    (None with no report). The trajectory chart draws this; the rules' own tracker computes it
    (version 1: the lowest mean of two consecutive reports, the earliest pair on a tie; the
    single report while there is only one)."""
    tracker = _Tracker(_ANY_PROCEDURE, rules)
    for index, (day, pain) in enumerate(walking):
        tracker.add(
            ResponseFacts(
                id=f"{index:09d}",  # answered order, as the tracker sorts
                answered_at=_ANY_INSTANT + timedelta(seconds=index),
                day=day,
                pain_walking=pain,
                pain_rest=0,
                analgesic_step=0,
                aid_level=0,
                fell=False,
                symptoms=frozenset(),
                change="no_change",
                call_request=False,
                mobility_score=None,
            )
        )
    nadir = tracker.reference().nadir
    if nadir is None:
        return None
    return nadir.value, tuple(int(r.id) for r in nadir.responses)


# --------------------------------------------------------------------------------------------
# Rules for one response
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Recurrence:
    met: bool
    fires: bool
    details: dict[str, Any]


def _recurrence(
    procedure: ProcedureFacts,
    response: ResponseFacts,
    nadir: _Nadir | None,
    previous_met: bool,
    rules: RuleSet,
    relative: Fraction,
) -> _Recurrence:
    if nadir is None:
        return _Recurrence(False, False, {})
    pain, best, baseline = response.pain_walking, nadir.value, procedure.baseline_pain_walking
    # Nadir 0: 30 % of 0 is 0, so the +2 rise alone decides, as clinical.md says.
    min_rise: float = rules.recurrence_min_rise
    if rules.noise_multiple is not None and nadir.noise is not None:
        # Version 2: a rise must also stand out of this patient's own day-to-day spread.
        min_rise = max(min_rise, rules.noise_multiple * nadir.noise)
    rise = pain >= best + min_rise and pain >= best * (1 + relative)
    back_to_baseline = (
        pain >= baseline and best <= baseline - rules.return_to_baseline_min_improvement
    )
    if not (rise or back_to_baseline):
        return _Recurrence(False, False, {})
    immediate = pain >= rules.recurrence_immediate_level
    if rules.immediate_min_rise is not None:
        # Version 2: one severe report fires at once only if well beyond day-to-day noise.
        immediate = immediate and pain >= best + rules.immediate_min_rise
    details: dict[str, Any] = {
        "pain_walking": pain,
        "nadir": _json_number(best),
        "routes": [name for name, hit in (("rise", rise), ("baseline", back_to_baseline)) if hit],
        "baseline_pain_walking": baseline,
        "confirmed": previous_met,
        "immediate": immediate,
    }
    return _Recurrence(True, previous_met or immediate, details)


def _red_flag_reasons(
    procedure: ProcedureFacts, response: ResponseFacts, ref: _Reference, rules: RuleSet
) -> list[Reason]:
    symptoms = response.symptoms
    reasons: list[Reason] = []
    nerve = symptoms & rules.nerve_symptoms
    if nerve:
        reasons.append(Reason("nerve_symptom", {"symptoms": sorted(nerve)}))
    embolism = symptoms & rules.embolism_symptoms
    if embolism:
        reasons.append(Reason("embolism_symptom", {"symptoms": sorted(embolism)}))
    fever, wound = symptoms & rules.fever_symptoms, symptoms & rules.wound_symptoms
    if fever and wound:
        reasons.append(Reason("infection", {"symptoms": sorted(fever | wound)}))
    before_aid: int | None
    before: dict[str, Any]
    if ref.previous is not None:
        before_pain, before_aid = ref.previous.pain_walking, ref.previous.aid_level
        before = {"source": "response", "response_id": ref.previous.id, "day": ref.previous.day}
    else:
        before_pain, before_aid = procedure.baseline_pain_walking, procedure.baseline_aid_level
        before = {"source": "baseline"}
    if response.fell and response.pain_walking >= before_pain + rules.fall_pain_rise:
        rise = {"pain_walking": response.pain_walking, "previous_pain_walking": before_pain}
        reasons.append(Reason("fall_with_pain_rise", rise | before))
    unable = rules.unable_aid_level
    if response.aid_level == unable and (before_aid is None or before_aid < unable):
        aid = {"aid_level": response.aid_level, "previous_aid_level": before_aid}
        reasons.append(Reason("newly_unable_to_walk", aid | before))
    return reasons


def _mobility_decline(response: ResponseFacts, ref: _Reference, rules: RuleSet) -> Reason | None:
    best = ref.best_mobility
    score = response.mobility_score
    if score is None or best is None or score > best.value - rules.mobility_decline:
        return None
    details = {"mobility_score": score, "best_mobility": best.value} | _source(best)
    return Reason("mobility_decline", details)


def _worsening_reasons(response: ResponseFacts, ref: _Reference, rules: RuleSet) -> list[Reason]:
    """Worsening criteria other than mobility decline, in the order of clinical.md."""
    reasons: list[Reason] = []
    step, lowest = response.analgesic_step, ref.lowest_analgesic
    # Landing on an opioid from a lower step; a paracetamol step alone never counts.
    if lowest is not None and step >= rules.analgesic_escalation_min_step and step > lowest.value:
        details = {"analgesic_step": step, "lowest_analgesic_step": lowest.value}
        reasons.append(Reason("analgesic_escalation", details | _source(lowest)))
    best_aid = ref.best_aid
    worse = rules.walking_aid_worse_levels
    if best_aid is not None and response.aid_level >= best_aid.value + worse:
        details = {"aid_level": response.aid_level, "best_aid_level": best_aid.value}
        reasons.append(Reason("walking_aid_worse", details | _source(best_aid)))
    symptoms = response.symptoms
    contralateral = symptoms & rules.contralateral_symptoms
    if contralateral:
        reasons.append(Reason("new_contralateral_pain", {"symptoms": sorted(contralateral)}))
    fever, wound = symptoms & rules.fever_symptoms, symptoms & rules.wound_symptoms
    if fever and not wound:
        reasons.append(Reason("fever_alone", {"symptoms": sorted(fever)}))
    if wound and not fever:
        reasons.append(Reason("wound_sign_alone", {"symptoms": sorted(wound)}))
    if response.change in rules.much_worse_changes:
        reasons.append(Reason("much_worse", {"change": response.change}))
    return reasons


def _relieved(pain: Fraction | int, baseline: int, rules: RuleSet, relative: Fraction) -> bool:
    """Improved by a minimal clinically important difference: 2 points or 30 % (v1 values)."""
    improvement = baseline - pain
    return improvement >= rules.return_to_baseline_min_improvement or improvement >= (
        baseline * relative
    )


def _no_relief(
    procedure: ProcedureFacts,
    response: ResponseFacts,
    ref: _Reference,
    rules: RuleSet,
    relative: Fraction,
) -> Reason | None:
    """Version 2: walking pain still high, never relieved by a clinically important amount.

    From `no_relief_from_day`, on this response and the previous one walking pain is at least
    `no_relief_min_pain` and neither they nor the nadir improved on the baseline by 2 points or
    30 %: the procedure has not brought the relief it should (treatment failure, or a screw that
    never held).
    """
    start, nadir, previous = rules.no_relief_from_day, ref.nadir, ref.previous
    if start is None or response.day < start or nadir is None or previous is None:
        return None
    baseline = procedure.baseline_pain_walking
    pains = (response.pain_walking, previous.pain_walking)
    if min(pains) < rules.no_relief_min_pain:
        return None
    if any(_relieved(value, baseline, rules, relative) for value in (*pains, nadir.value)):
        return None
    details = {
        "pain_walking": response.pain_walking,
        "previous_pain_walking": previous.pain_walking,
        "previous_day": previous.day,
        "nadir": _json_number(nadir.value),
        "baseline_pain_walking": baseline,
    }
    return Reason("no_relief", details)


def _assess(
    procedure: ProcedureFacts,
    response: ResponseFacts,
    ref: _Reference,
    previous_met: bool,
    rules: RuleSet,
    relative: Fraction,
    no_relief_allowed: bool = False,
) -> tuple[list[Signal], _Recurrence, ConfirmationRequest | None]:
    """Steps: 1 red flags; 2 recurrence and loosening (version 2: no lasting relief, and a
    recurrence corroborated by another sign fires at once); 3 worsening; 4 call request."""
    signals: list[Signal] = []

    def emit(kind: str, reasons: list[Reason], **extra: Any) -> None:
        signals.append(_response_signal(kind, reasons, procedure, response, ref, rules, extra))

    red = _red_flag_reasons(procedure, response, ref, rules)
    if red:
        emit("red_flag", red)

    recurrence = _recurrence(procedure, response, ref.nadir, previous_met, rules, relative)
    screw = procedure.kind in rules.screw_kinds
    high_kind = "possible_screw_loosening" if screw else "pain_recurrence"
    high: list[Reason] = []
    if recurrence.fires:
        high.append(Reason("pain_recurrence", recurrence.details))
    decline = _mobility_decline(response, ref, rules)
    nadir = ref.nadir
    if screw and nadir is not None:
        pain = response.pain_walking
        signs = response.symptoms & rules.mechanical_signs
        if signs and pain >= nadir.value + rules.mechanical_sign_min_rise:
            details = {"symptoms": sorted(signs), "pain_walking": pain}
            high.append(Reason("mechanical_sign", details | {"nadir": _json_number(nadir.value)}))
        if decline is not None and pain > nadir.value:
            # With pain above the nadir, a screw patient's mobility decline is loosening.
            details = decline.details | {"pain_walking": pain, "nadir": _json_number(nadir.value)}
            high.append(Reason("mobility_decline", details))
            decline = None

    worsening = ([decline] if decline is not None else []) + _worsening_reasons(
        response, ref, rules
    )
    if recurrence.met and not recurrence.fires and rules.corroborating_signs:
        # Version 2: pain back up together with another sign of the same failure needs no
        # second report (the second report is what costs days in the sparse months).
        support = [r for r in [*high, *worsening] if r.code in rules.corroborating_signs]
        if support:
            details = recurrence.details | {"corroborated_by": [r.code for r in support]}
            recurrence = _Recurrence(True, True, details)
            high.insert(0, Reason("pain_recurrence", details))
            high.extend(r for r in support if r not in high)
            worsening = [r for r in worsening if r not in support]
    if no_relief_allowed:
        no_relief = _no_relief(procedure, response, ref, rules, relative)
        if no_relief is not None:
            high.append(no_relief)
    if high:
        accompanying = [_reason_data(reason) for reason in worsening]
        emit(high_kind, high, accompanying=accompanying)
    elif worsening:
        emit("worsening", worsening)

    if response.call_request:
        emit("call_request", [Reason("call_request", {})])

    request = None
    if recurrence.met and not recurrence.fires and not high:
        delay = rules.confirmation_delay_days
        request = ConfirmationRequest(
            response_id=response.id,
            answered_at=response.answered_at,
            due=response.answered_at + timedelta(days=delay),
            due_day=response.day + delay,
            alert_kind=high_kind,
            delay_days=delay,
        )
    return signals, recurrence, request


# --------------------------------------------------------------------------------------------
# Missed questionnaires
# --------------------------------------------------------------------------------------------


def _no_response_signals(
    missed: Iterable[MissedFacts], answered: Sequence[datetime], rules: RuleSet
) -> list[Signal]:
    protocol = sorted(
        (m for m in missed if m.reason == "protocol"), key=lambda m: (m.closes_at, m.assignment_id)
    )
    signals: list[Signal] = []
    run: list[MissedFacts] = []
    for item in protocol:
        if run:
            # Any response answered since the last miss shows the patient is still answering.
            i = bisect_right(answered, run[-1].closes_at)
            if i < len(answered) and answered[i] <= item.closes_at:
                run = []
        run.append(item)
        reasons: list[Reason] = []
        if len(run) >= rules.no_response_consecutive:
            consecutive = run[-rules.no_response_consecutive :]
            details = {"missed": [_missed_data(m) for m in consecutive]}
            reasons.append(Reason("two_missed", details))
        if item.day >= rules.no_response_single_from_day:
            reasons.append(Reason("missed_from_day_30", {"missed": [_missed_data(item)]}))
        if reasons:
            signals.append(_no_response_signal(item, reasons, rules))
    return signals


def _missed_data(item: MissedFacts) -> dict[str, Any]:
    return {
        "assignment_id": item.assignment_id,
        "day": item.day,
        "closes_at": item.closes_at.isoformat(),
    }


# --------------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------------


def _signal_order(signal: Signal) -> tuple[datetime, int, str]:
    kind = _KIND_ORDER.get(signal.kind, len(ALERT_KINDS))
    return signal.answered_at, kind, signal.response_id or ""


def evaluate(
    procedure: ProcedureFacts,
    responses: Sequence[ResponseFacts],
    missed: Sequence[MissedFacts] = (),
    rules: RuleSet = RULES_V1,
) -> Evaluation:
    """Evaluate every response against the reference points of the responses answered before it."""
    return fold(procedure, responses, rules).finish(missed)


def fold(procedure: ProcedureFacts, responses: Sequence[ResponseFacts], rules: RuleSet) -> "Fold":
    """The evaluation's state after every response, taken in answered order."""
    ordered = sorted(responses, key=_answered_order)
    if len({r.id for r in ordered}) != len(ordered):
        raise ValueError("responses: duplicate response ids")
    state = Fold(procedure, rules)
    for response in ordered:
        state.add(response)
    return state


class Fold:
    """``evaluate()`` as a left fold over the responses in answered order.

    A response's signals and confirmation request depend only on the responses answered before
    it (the tracker's reference points, whether the previous one met the recurrence criterion,
    whether "no relief" was said), never on later ones. So the state after n responses, plus
    the next response in answered order, gives exactly what a full evaluation of the n + 1
    responses gives: ``add`` is the loop body of the full evaluation, and ``evaluate`` itself
    is ``Fold``, ``add`` for each response, ``finish``. The missed questionnaires are not
    folded: ``finish`` evaluates them whole against every answered time (they are few, and a
    late answer can break a run of misses anywhere).

    ``dump``/``load`` keep the state between evaluations (``backend.alerts.services``): the
    common case, a new answer that is the latest of its procedure, then costs one ``add``.
    """

    def __init__(self, procedure: ProcedureFacts, rules: RuleSet) -> None:
        self.procedure = procedure
        self.rules = rules
        self.relative = Fraction(str(rules.recurrence_min_relative))  # exact: 0.3 -> 3/10
        self.tracker = _Tracker(procedure, rules)
        self.previous_met = False
        self.no_relief_allowed = rules.no_relief_from_day is not None
        self.signals: list[Signal] = []  # the responses' signals, in answered order
        self.requests: list[ConfirmationRequest] = []
        self.answered: list[datetime] = []  # every response's answered_at, in answered order
        self.last: tuple[datetime, str] | None = None  # the last response's (answered_at, id)

    @property
    def count(self) -> int:
        return len(self.answered)

    def follows(self, response: ResponseFacts) -> bool:
        """Whether ``response`` comes after every response folded so far (answered order)."""
        return self.last is None or _answered_order(response) > self.last

    def add(self, response: ResponseFacts) -> None:
        """Fold the next response in answered order (ValueError if it is not the next)."""
        if not self.follows(response):
            raise ValueError("responses: not in answered order after the folded ones")
        found, recurrence, request = _assess(
            self.procedure,
            response,
            self.tracker.reference(),
            self.previous_met,
            self.rules,
            self.relative,
            self.no_relief_allowed,
        )
        if any(reason.code == "no_relief" for signal in found for reason in signal.reasons):
            self.no_relief_allowed = False  # said once: a nurse who knows need not hear it again
        self.signals.extend(found)
        if request is not None:
            self.requests.append(request)
        self.previous_met = recurrence.met
        self.tracker.add(response)
        self.answered.append(response.answered_at)
        self.last = _answered_order(response)

    def forget(self, resolutions: Mapping[str, Sequence[datetime]]) -> None:
        """Drop the signals no later evaluation can use: those answered at or before the latest
        resolution of their kind. ``reconcile`` leaves them out, and a kind's latest resolution
        only ever moves later (an alert is never reopened or deleted), so the plans of every
        later ``reconcile`` are the same with or without them. Keeps the state as small as the
        open episodes."""
        latest = {kind: max(times) for kind, times in resolutions.items() if times}
        self.signals = [
            s for s in self.signals if s.kind not in latest or s.answered_at > latest[s.kind]
        ]

    def finish(self, missed: Sequence[MissedFacts] = ()) -> Evaluation:
        """The evaluation: the responses' signals and the missed questionnaires', in order."""
        signals = [*self.signals, *_no_response_signals(missed, self.answered, self.rules)]
        signals.sort(key=_signal_order)
        return Evaluation(signals=signals, confirmation_requests=list(self.requests))

    # --- kept between evaluations (JSON) -----------------------------------------------------

    def dump(self) -> dict[str, Any]:
        """The state as JSON data (``load`` gives it back)."""
        tracker = self.tracker
        facts: dict[str, dict[str, Any]] = {}

        def ref(response: ResponseFacts | None) -> str | None:
            if response is None:
                return None
            facts.setdefault(response.id, _response_data(response))
            return response.id

        def best(value: _Best | None) -> list[Any] | None:
            return None if value is None else [value.value, ref(value.response)]

        data = {
            "format": STATE_FORMAT,
            "tracker": {
                "pool": [ref(r) for r in tracker.pool],
                "previous": ref(tracker.previous),
                "recent": [ref(r) for r in tracker.recent],
                "best": None
                if tracker.best is None
                else [tracker.best[0], [ref(r) for r in tracker.best[1]]],
                "mobility": best(tracker.mobility),
                "analgesic": best(tracker.analgesic),
                "aid": best(tracker.aid),
            },
            "previous_met": self.previous_met,
            "no_relief_allowed": self.no_relief_allowed,
            "signals": [_signal_data(s) for s in self.signals],
            "requests": [_request_data(r) for r in self.requests],
            "answered": [t.isoformat() for t in self.answered],
            "last": None if self.last is None else [self.last[0].isoformat(), self.last[1]],
        }
        data["responses"] = facts
        return data

    @classmethod
    def load(cls, data: Mapping[str, Any], procedure: ProcedureFacts, rules: RuleSet) -> "Fold":
        """The state ``dump`` wrote, for the same procedure facts and rule set (the caller
        checks they are the same: see ``backend.alerts.services``)."""
        if data.get("format") != STATE_FORMAT:
            raise ValueError("state: unknown format")
        state = cls(procedure, rules)
        facts = {key: _response_facts(value) for key, value in data["responses"].items()}

        def ref(key: str | None) -> ResponseFacts | None:
            return None if key is None else facts[key]

        def best(value: list[Any] | None) -> _Best | None:
            return None if value is None else _Best(value[0], ref(value[1]))

        tracked = data["tracker"]
        tracker = state.tracker
        tracker.pool = [facts[key] for key in tracked["pool"]]
        tracker.previous = ref(tracked["previous"])
        tracker.recent.extend(facts[key] for key in tracked["recent"])
        if tracked["best"] is not None:
            tracker.best = (tracked["best"][0], tuple(facts[k] for k in tracked["best"][1]))
        tracker.mobility = best(tracked["mobility"])
        tracker.analgesic = best(tracked["analgesic"])
        tracker.aid = best(tracked["aid"])
        state.previous_met = data["previous_met"]
        state.no_relief_allowed = data["no_relief_allowed"]
        state.signals = [_signal_from(item) for item in data["signals"]]
        state.requests = [_request_from(item) for item in data["requests"]]
        state.answered = [datetime.fromisoformat(t) for t in data["answered"]]
        last = data["last"]
        state.last = None if last is None else (datetime.fromisoformat(last[0]), last[1])
        return state


def _engine_fingerprint() -> str:
    """What a kept state was computed by: this module, the wording and the shipped rule sets.
    A change to any of them makes every kept state stale (evaluated whole again, once)."""
    digest = hashlib.sha256()
    for path in (
        Path(__file__),
        Path(wording.__file__),
        RULESET_V1_PATH,
        RULESET_V2_PATH,
    ):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


STATE_FORMAT = 1
ENGINE = _engine_fingerprint()


def _response_facts(data: Mapping[str, Any]) -> ResponseFacts:
    return ResponseFacts(
        id=data["id"],
        answered_at=datetime.fromisoformat(data["answered_at"]),
        day=data["day"],
        pain_walking=data["pain_walking"],
        pain_rest=data["pain_rest"],
        analgesic_step=data["analgesic_step"],
        aid_level=data["aid_level"],
        fell=data["fell"],
        symptoms=frozenset(data["symptoms"]),
        change=data["change"],
        call_request=data["call_request"],
        mobility_score=data["mobility_score"],
    )


def _signal_data(signal: Signal) -> dict[str, Any]:
    return {
        "kind": signal.kind,
        "severity": signal.severity,
        "response_id": signal.response_id,
        "answered_at": signal.answered_at.isoformat(),
        "rule_key": signal.rule_key,
        "rule_version": signal.rule_version,
        "reasons": [[reason.code, reason.details] for reason in signal.reasons],
        "evidence": signal.evidence,
        "summary": signal.summary,
    }


def _signal_from(data: Mapping[str, Any]) -> Signal:
    return Signal(
        kind=data["kind"],
        severity=data["severity"],
        response_id=data["response_id"],
        answered_at=datetime.fromisoformat(data["answered_at"]),
        rule_key=data["rule_key"],
        rule_version=data["rule_version"],
        reasons=tuple(Reason(code, details) for code, details in data["reasons"]),
        evidence=data["evidence"],
        summary=data["summary"],
    )


def _request_data(request: ConfirmationRequest) -> dict[str, Any]:
    return {
        "response_id": request.response_id,
        "answered_at": request.answered_at.isoformat(),
        "due": request.due.isoformat(),
        "due_day": request.due_day,
        "alert_kind": request.alert_kind,
        "delay_days": request.delay_days,
    }


def _request_from(data: Mapping[str, Any]) -> ConfirmationRequest:
    return ConfirmationRequest(
        response_id=data["response_id"],
        answered_at=datetime.fromisoformat(data["answered_at"]),
        due=datetime.fromisoformat(data["due"]),
        due_day=data["due_day"],
        alert_kind=data["alert_kind"],
        delay_days=data["delay_days"],
    )


def reconcile(
    signals: Sequence[Signal], resolutions: Mapping[str, Sequence[datetime]]
) -> list[AlertPlan]:
    """The open alert per kind: signals answered after that kind's latest resolution.

    Signals answered at or before a resolution belong to the episode it closed and are ignored.
    Severity is the highest of the episode's signals, the summary the latest signal's.
    """
    by_kind: dict[str, list[Signal]] = {}
    for signal in sorted(signals, key=_signal_order):
        by_kind.setdefault(signal.kind, []).append(signal)
    plans: list[AlertPlan] = []
    for kind, items in by_kind.items():
        resolved = resolutions.get(kind, ())
        if resolved:
            last = max(resolved)
            items = [s for s in items if s.answered_at > last]
        if not items:
            continue
        plans.append(
            AlertPlan(
                kind=kind,
                severity=min((s.severity for s in items), key=_SEVERITY_RANK.__getitem__),
                rule_version=items[0].rule_version,
                signals=tuple(items),
                opened_by=items[0],
                evidence=[s.evidence for s in items],
                summary=items[-1].summary,
            )
        )
    plans.sort(key=lambda plan: _signal_order(plan.opened_by))
    return plans


# --------------------------------------------------------------------------------------------
# Evidence
# --------------------------------------------------------------------------------------------

# Rule set fields each reason applies, recorded with the evidence as the thresholds that fired.
_THRESHOLDS: dict[str, tuple[str, ...]] = {
    "nerve_symptom": ("nerve_symptoms",),
    "embolism_symptom": ("embolism_symptoms",),
    "infection": ("fever_symptoms", "wound_symptoms"),
    "fall_with_pain_rise": ("fall_pain_rise",),
    "newly_unable_to_walk": ("unable_aid_level",),
    "pain_recurrence": (
        "recurrence_min_rise",
        "recurrence_min_relative",
        "return_to_baseline_min_improvement",
        "recurrence_immediate_level",
    ),
    "mechanical_sign": ("mechanical_signs", "mechanical_sign_min_rise"),
    "no_relief": (
        "no_relief_from_day",
        "no_relief_min_pain",
        "return_to_baseline_min_improvement",
        "recurrence_min_relative",
    ),
    "mobility_decline": ("mobility_decline",),
    "analgesic_escalation": ("analgesic_escalation_min_step",),
    "walking_aid_worse": ("walking_aid_worse_levels",),
    "new_contralateral_pain": ("contralateral_symptoms",),
    "fever_alone": ("fever_symptoms", "wound_symptoms"),
    "wound_sign_alone": ("fever_symptoms", "wound_symptoms"),
    "much_worse": ("much_worse_changes",),
    "call_request": (),
    "two_missed": ("no_response_consecutive",),
    "missed_from_day_30": ("no_response_single_from_day",),
}


def _json_number(value: Fraction) -> int | float:
    return int(value) if value.denominator == 1 else float(value)


def _json_value(value: Any) -> Any:
    return sorted(value) if isinstance(value, frozenset) else value


def _source(best: _Best) -> dict[str, Any]:
    if best.response is None:
        return {"source": "baseline"}
    return {"source": "response", "response_id": best.response.id, "day": best.response.day}


def _best_data(best: _Best | None) -> dict[str, Any] | None:
    return None if best is None else {"value": best.value} | _source(best)


def _reason_data(reason: Reason) -> dict[str, Any]:
    return {"code": reason.code, "details": reason.details}


def _thresholds(reasons: Sequence[Reason], rules: RuleSet) -> dict[str, Any]:
    names = [name for reason in reasons for name in _THRESHOLDS[reason.code]]
    # Version 2 settings are recorded where they differ from version 1's behaviour.
    if rules.nadir_window != 2 and any("nadir" in reason.details for reason in reasons):
        names.append("nadir_window")
    if any("corroborated_by" in reason.details for reason in reasons):
        names.append("corroborating_signs")
    return {name: _json_value(getattr(rules, name)) for name in dict.fromkeys(names)}


def _response_data(response: ResponseFacts) -> dict[str, Any]:
    return {
        "id": response.id,
        "answered_at": response.answered_at.isoformat(),
        "day": response.day,
        "pain_walking": response.pain_walking,
        "pain_rest": response.pain_rest,
        "analgesic_step": response.analgesic_step,
        "aid_level": response.aid_level,
        "fell": response.fell,
        "symptoms": sorted(response.symptoms),
        "change": response.change,
        "call_request": response.call_request,
        "mobility_score": response.mobility_score,
    }


def _reference_data(procedure: ProcedureFacts, ref: _Reference) -> dict[str, Any]:
    nadir = ref.nadir
    previous = ref.previous
    return {
        "nadir": None
        if nadir is None
        else {
            "value": _json_number(nadir.value),
            "response_ids": [r.id for r in nadir.responses],
            "days": [r.day for r in nadir.responses],
        }
        | ({"settled": True} if nadir.settled else {}),
        "best_mobility": _best_data(ref.best_mobility),
        "previous": None if previous is None else _response_data(previous),
        "lowest_analgesic_step": _best_data(ref.lowest_analgesic),
        "best_aid_level": _best_data(ref.best_aid),
        "baseline": {
            "pain_walking": procedure.baseline_pain_walking,
            "pain_rest": procedure.baseline_pain_rest,
            "mobility_score": procedure.baseline_mobility,
            "analgesic_step": procedure.baseline_analgesic_step,
            "aid_level": procedure.baseline_aid_level,
        },
    }


def _response_signal(
    kind: str,
    reasons: list[Reason],
    procedure: ProcedureFacts,
    response: ResponseFacts,
    ref: _Reference,
    rules: RuleSet,
    extra: dict[str, Any],
) -> Signal:
    evidence = {
        "rule": {"key": kind, "version": rules.version},
        "response": _response_data(response),
        "reference": _reference_data(procedure, ref),
        "reasons": [_reason_data(reason) for reason in reasons],
        "thresholds": _thresholds(reasons, rules),
    } | extra
    return Signal(
        kind=kind,
        severity=rules.severities[kind],
        response_id=response.id,
        answered_at=response.answered_at,
        rule_key=kind,
        rule_version=rules.version,
        reasons=tuple(reasons),
        evidence=evidence,
        summary=wording.summary(kind, reasons, response, ref),
    )


def _no_response_signal(item: MissedFacts, reasons: list[Reason], rules: RuleSet) -> Signal:
    missed = reasons[0].details["missed"]
    evidence = {
        "rule": {"key": "no_response", "version": rules.version},
        "missed": missed,
        "reasons": [_reason_data(reason) for reason in reasons],
        "thresholds": _thresholds(reasons, rules),
    }
    summary = wording.no_response_summary([m["day"] for m in missed], item.day)
    return Signal(
        kind="no_response",
        severity=rules.severities["no_response"],
        response_id=None,
        answered_at=item.closes_at,
        rule_key="no_response",
        rule_version=rules.version,
        reasons=tuple(reasons),
        evidence=evidence,
        summary=summary,
    )
