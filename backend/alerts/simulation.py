"""Synthetic cohorts run through the real alert engine, to compare rule versions before they
alert anyone (``flask rules simulate``; docs/simulation.md gives the model and its sources).

Pure and standard library only, deterministic for a seed: every random draw comes from a
generator seeded by (seed, patient, purpose, day), so the same patient answers the same way
under every rule version, and only the check-ins a version asks for differ.

Steps, per patient:
1. Draw the patient: procedure kind, age, baseline, the settled level the procedure brings,
   whether and when an event (screw loosening, or a new fracture after cementoplasty) starts,
   and the day of death if within the horizon.
2. Walk the protocol's questionnaires and the confirmation check-ins the engine asks for, in
   time order. Each is answered or missed with the same response model (missingness rising
   with age); an answered one becomes a ``ResponseFacts`` drawn from the patient's true state
   that day, a missed one a ``MissedFacts`` once its window closes.
3. After every answer, ``rules.evaluate`` re-evaluates the whole history, exactly as the
   service does; a confirmation check-in it asks for is planned three days later unless a
   questionnaire opens sooner or an alert of the kind it would confirm is open.
4. Signals become alerts as the database would group them (one open alert per kind), each
   resolved by a nurse ``resolve_days`` later; an event patient leaves the cohort once the
   alert of the event's kind fires after onset (imaging and revision follow).
"""

from __future__ import annotations

import json
import math
import random
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from backend.alerts.rules import (
    PROCEDURE_KINDS,
    MissedFacts,
    ProcedureFacts,
    ResponseFacts,
    RuleSet,
    Signal,
    evaluate,
)

PROTOCOL_DIR = Path(__file__).resolve().parent.parent / "questionnaires" / "data"
HIGH_KINDS = ("possible_screw_loosening", "pain_recurrence")
DISCHARGE = date(2026, 1, 5)


@dataclass(frozen=True)
class Parameters:
    """The cohort model. Every default is a published figure or a stated assumption
    (docs/simulation.md, "Parameters")."""

    # Procedure mix (assumption: a screw-heavy IR practice).
    share_screw_fixation: float = 0.35
    share_screw_cementoplasty: float = 0.15
    share_cementoplasty: float = 0.45
    # share_sclerotherapy is the rest.
    age_min: float = 72.0
    age_mode: float = 84.0
    age_max: float = 100.0
    # Walking pain before the procedure and its relief (VERTOS II: 7.8 -> about 2.6 at month 1).
    baseline_pain_mean: float = 7.8
    baseline_pain_sd: float = 1.2
    relief_mean: float = 5.0
    relief_sd: float = 2.3
    relief_days: float = 5.0  # time constant of the fall from baseline to the settled level
    # Day-to-day noise of a 0-10 rating: about one point (SD), varying between patients.
    noise_sd: float = 1.0
    noise_spread: float = 0.25  # each patient's SD is noise_sd x U(1 - spread, 1 + spread)
    # Minimal clinically important difference: 2 points or 30 %.
    mcid_points: float = 2.0
    mcid_relative: float = 0.30
    # Events. Screw back-out seen between day 6 and day 69; revision in up to 20 %.
    loosening_rate: float = 0.20
    loosening_onset_min: float = 6.0
    loosening_onset_max: float = 69.0
    # New fracture or cement failure after cementoplasty or sclerotherapy (assumption from the
    # 10-20 % new vertebral fractures within a year after vertebroplasty).
    recurrence_rate: float = 0.10
    recurrence_onset_min: float = 7.0
    recurrence_onset_max: float = 180.0
    # How an event shows: pain returns over a ramp to at least one MCID above the settled level,
    # a share of the way back to the baseline (assumption).
    event_ramp_min: float = 3.0
    event_ramp_max: float = 21.0
    event_return_min: float = 0.5
    event_return_max: float = 1.0
    # Secondary signs (assumptions), per answered report.
    mechanical_sign_event: float = 0.30
    mechanical_sign_stable: float = 0.01
    contralateral_pain: float = 0.01
    much_worse_event: float = 0.40
    much_worse_stable: float = 0.02
    mobility_drop_event: float = 0.50
    aid_worse_event: float = 0.30
    call_request_stable: float = 0.02
    call_request_event: float = 0.10
    falls_per_year: float = 0.33  # one in three people over 65 falls each year (WHO)
    # Questionnaires: about 10 % unanswered, more with age (+1 point per year above the mode).
    missing_rate: float = 0.10
    missing_per_year_of_age: float = 0.01
    # About 10 % die within a year (clinical.md); hazard doubling every 9 years of age.
    mortality_one_year: float = 0.10
    # The horizon: six months and the day-180 window.
    horizon_days: int = 187
    resolve_days: float = 2.0  # a nurse resolves each alert this long after it opens

    def __post_init__(self) -> None:
        shares = self.share_screw_fixation + self.share_screw_cementoplasty
        if not 0 <= shares + self.share_cementoplasty <= 1:
            raise ValueError("procedure shares: expected a sum between 0 and 1")
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise ValueError(f"{f.name}: expected a non-negative number, got {value!r}")


def parameters_with(overrides: Mapping[str, str]) -> Parameters:
    """Parameters with ``name=value`` overrides (e.g. from the command line); names checked."""
    known = {f.name: f.type for f in fields(Parameters)}
    values: dict[str, Any] = {}
    for name, text in overrides.items():
        if name not in known:
            raise ValueError(f"{name}: unknown simulation parameter")
        try:
            values[name] = int(text) if name == "horizon_days" else float(text)
        except ValueError:
            raise ValueError(f"{name}: expected a number, got {text!r}") from None
    return replace(Parameters(), **values)


# --------------------------------------------------------------------------------------------
# Patients
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Patient:
    index: int
    kind: str
    age: float
    baseline: float  # true walking pain before the procedure
    settled: float  # true walking pain once the procedure's relief has settled
    noise: float  # SD of this patient's day-to-day noise
    responder: bool  # relief of at least one MCID
    event: str | None  # "loosening", "recurrence" or None
    onset: float | None
    ramp: float
    event_level: float  # true walking pain once the event's ramp is complete
    death: float | None
    baseline_mobility: int
    baseline_aid: int
    mobility_deficit: int
    missing: float


def _rng(seed: int, *key: object) -> random.Random:
    # A reproducible cohort, not a secret: a seeded Mersenne Twister is the right tool.
    return random.Random(":".join(str(k) for k in (seed, *key)))  # noqa: S311


def _clip(value: float, low: float = 0.0, high: float = 10.0) -> float:
    return min(high, max(low, value))


def _is_mcid(improvement: float, reference: float, p: Parameters) -> bool:
    return improvement >= p.mcid_points or improvement >= p.mcid_relative * reference


def draw_patient(seed: int, index: int, p: Parameters) -> Patient:
    r = _rng(seed, index, "patient")
    u = r.random()
    cuts = (
        (p.share_screw_fixation, "screw_fixation"),
        (p.share_screw_fixation + p.share_screw_cementoplasty, "screw_fixation_cementoplasty"),
        (
            p.share_screw_fixation + p.share_screw_cementoplasty + p.share_cementoplasty,
            "cementoplasty",
        ),
    )
    kind = next((name for cut, name in cuts if u < cut), "sclerotherapy")
    age = r.triangular(p.age_min, p.age_max, p.age_mode)
    baseline = _clip(r.gauss(p.baseline_pain_mean, p.baseline_pain_sd), 4, 10)
    settled = _clip(baseline - r.gauss(p.relief_mean, p.relief_sd), 0, baseline)
    responder = _is_mcid(baseline - settled, baseline, p)
    noise = p.noise_sd * r.uniform(1 - p.noise_spread, 1 + p.noise_spread)
    screw = kind.startswith("screw")
    rate = p.loosening_rate if screw else p.recurrence_rate
    event: str | None = None
    onset: float | None = None
    if r.random() < rate:
        event = "loosening" if screw else "recurrence"
        low, high = (
            (p.loosening_onset_min, p.loosening_onset_max)
            if screw
            else (p.recurrence_onset_min, p.recurrence_onset_max)
        )
        onset = r.uniform(low, high)
    ramp = r.uniform(p.event_ramp_min, p.event_ramp_max)
    back = r.uniform(p.event_return_min, p.event_return_max)
    # The event is a clinically important return of pain: at least one MCID above settled.
    mcid = max(p.mcid_points, p.mcid_relative * settled) if settled > 0 else p.mcid_points
    event_level = _clip(settled + max(mcid, back * (baseline - settled)))
    # Constant hazard giving the one-year mortality at the mode, doubling every 9 years of age.
    hazard = -math.log(1 - p.mortality_one_year) / 365 * 2 ** ((age - p.age_mode) / 9)
    death_day = r.expovariate(hazard) if hazard > 0 else math.inf
    death = death_day if death_day < p.horizon_days else None
    baseline_mobility = max(0, min(9, round(r.gauss(6.5 - (age - 84) * 0.15, 1.8))))
    baseline_aid = min(4, max(0, round(r.gauss(1.2 + (age - 84) * 0.05, 1.0))))
    deficit = r.choices((0, 1, 2), (0.6, 0.3, 0.1))[0]
    missing = _clip(p.missing_rate + p.missing_per_year_of_age * (age - p.age_mode), 0.02, 0.6)
    return Patient(
        index=index,
        kind=kind,
        age=age,
        baseline=baseline,
        settled=settled,
        noise=noise,
        responder=responder,
        event=event,
        onset=onset,
        ramp=ramp,
        event_level=event_level,
        death=death,
        baseline_mobility=baseline_mobility,
        baseline_aid=baseline_aid,
        mobility_deficit=deficit,
        missing=missing,
    )


def true_pain(patient: Patient, day: float, p: Parameters) -> float:
    """The patient's true walking pain on a day: relief settling, then the event's ramp."""
    level = patient.settled + (patient.baseline - patient.settled) * math.exp(-day / p.relief_days)
    if patient.onset is not None and day > patient.onset:
        share = min(1.0, (day - patient.onset) / patient.ramp)
        level += share * max(0.0, patient.event_level - level)
    return level


def _event_active(patient: Patient, day: float) -> bool:
    """The event shows in secondary signs once half its ramp is done."""
    return patient.onset is not None and day >= patient.onset + patient.ramp / 2


def _analgesic_step(pain: float) -> int:
    # WHO ladder by pain band: mild none or paracetamol, moderate weak opioid, severe strong.
    if pain < 1.5:
        return 0
    if pain < 4:
        return 1
    if pain < 6.5:
        return 2
    return 3


def procedure_facts(patient: Patient) -> ProcedureFacts:
    baseline = round(patient.baseline)
    return ProcedureFacts(
        kind=patient.kind,
        discharged_on=DISCHARGE,
        baseline_pain_walking=baseline,
        baseline_pain_rest=max(0, baseline - 3),
        baseline_mobility=patient.baseline_mobility,
        baseline_analgesic_step=_analgesic_step(patient.baseline),
        baseline_aid_level=patient.baseline_aid,
    )


def draw_response(
    seed: int,
    patient: Patient,
    key: str,
    at: datetime,
    day: int,
    interval: float,
    followup: bool,
    p: Parameters,
) -> ResponseFacts:
    """One answer given on ``day`` (``interval`` days after the previous questionnaire)."""
    r = _rng(seed, patient.index, "answer", key)
    pain = true_pain(patient, day + 0.5, p)
    active = _event_active(patient, day)
    walking = round(_clip(r.gauss(pain, patient.noise)))
    rest = round(_clip(r.gauss(pain * 0.6, patient.noise)))
    step = _analgesic_step(pain + r.gauss(0, 0.5))
    aid = patient.baseline_aid + (1 if active and r.random() < p.aid_worse_event else 0)
    symptoms: set[str] = set()
    if patient.kind.startswith("screw") or patient.kind == "other_hardware":
        chance = p.mechanical_sign_event if active else p.mechanical_sign_stable
        if r.random() < chance:
            symptoms.add(r.choice(("clicking", "giving_way", "entry_point_bump")))
    if r.random() < p.contralateral_pain:
        symptoms.add("new_contralateral_pain")
    improvement = (patient.baseline - pain) / patient.baseline if patient.baseline else 0.0
    if r.random() < (p.much_worse_event if active else p.much_worse_stable):
        change = "much_worse"
    elif improvement >= 0.5:
        change = "much_improved"
    elif improvement >= p.mcid_relative:
        change = "minimally_improved"
    else:
        change = "no_change"
    mobility = None
    if followup:
        mobility = patient.baseline_mobility - patient.mobility_deficit
        if active and r.random() < p.mobility_drop_event:
            mobility -= 2
        mobility = max(0, min(9, mobility))
    fall_chance = 1 - math.exp(-p.falls_per_year * max(interval, 1) / 365)
    call_chance = p.call_request_event if active else p.call_request_stable
    return ResponseFacts(
        id=key,
        answered_at=at,
        day=day,
        pain_walking=walking,
        pain_rest=rest,
        analgesic_step=step,
        aid_level=min(5, aid),
        fell=r.random() < fall_chance,
        symptoms=frozenset(symptoms),
        change=change,
        call_request=r.random() < call_chance,
        mobility_score=mobility,
    )


# --------------------------------------------------------------------------------------------
# Follow-up of one patient under one rule version
# --------------------------------------------------------------------------------------------


CANDIDATE_PROTOCOL_DIR = PROTOCOL_DIR / "candidates"


@lru_cache(maxsize=32)
def _protocol_files(directory: Path) -> tuple[tuple[frozenset[str], int, str], ...]:
    found = []
    for path in sorted(directory.glob("protocol.*.json")):
        protocol = json.loads(path.read_text(encoding="utf-8"))
        found.append(
            (frozenset(protocol["applies_to"]), int(protocol["version"]), json.dumps(protocol))
        )
    return tuple(found)


def load_protocol(kind: str, directory: Path = PROTOCOL_DIR) -> list[dict[str, Any]]:
    """The items (day, instrument, window) of the latest protocol in ``directory`` applying to a
    procedure kind, falling back to the project's protocols (as the service picks them)."""
    for folder in dict.fromkeys((directory, PROTOCOL_DIR)):
        matching = [(v, text) for kinds, v, text in _protocol_files(folder) if kind in kinds]
        if matching:
            return list(json.loads(max(matching)[1])["items"])
    raise LookupError(f"no protocol applies to {kind!r}")


def protocols_from(directory: Path) -> dict[str, list[dict[str, Any]]]:
    """Every procedure kind's protocol items from a folder of protocol files."""
    return {kind: load_protocol(kind, directory) for kind in PROCEDURE_KINDS}


@dataclass
class Outcome:
    """What one patient's follow-up produced under one rule version."""

    patient: Patient
    followed_days: float
    alerts: dict[str, int] = field(default_factory=dict)
    first_high: float | None = None  # day of the first high alert (any time)
    detected_day: float | None = None  # day of the first high alert at or after onset
    extra_checkins: int = 0
    extra_answered: int = 0  # confirmation check-ins answered (same response model)
    answered: int = 0
    questionnaires: int = 0


@dataclass(frozen=True)
class _Item:
    opens: datetime
    closes: datetime
    day: int
    key: str
    reason: str  # "protocol" or "confirmation"
    followup: bool


def _at(day: float) -> datetime:
    return datetime.combine(DISCHARGE, time(10), UTC) + timedelta(days=day)


def _day_of(instant: datetime) -> float:
    return (instant - _at(0)).total_seconds() / 86400


def follow(
    patient: Patient,
    rules: RuleSet,
    seed: int,
    p: Parameters,
    protocol: Sequence[Mapping[str, Any]] | None = None,
) -> Outcome:
    """One patient's six months under one rule version (steps 2 to 4 of the module doc)."""
    items = protocol if protocol is not None else load_protocol(patient.kind)
    end = float(p.horizon_days) if patient.death is None else patient.death
    facts = procedure_facts(patient)
    queue: list[_Item] = [
        _Item(
            _at(int(i["day"])),
            _at(int(i["day"]) + int(i["window_days"])),
            int(i["day"]),
            f"p{int(i['day']):03d}",
            "protocol",
            i["instrument"] == "followup",
        )
        for i in items
    ]
    responses: list[ResponseFacts] = []
    missed: list[MissedFacts] = []
    open_until: dict[str, datetime] = {}  # kind -> when the nurse resolves its open alert
    outcome = Outcome(patient, end)
    seen: set[tuple[str, str | None, datetime]] = set()
    last_day = 0.0
    while queue:
        queue.sort(key=lambda item: (item.opens, item.key))
        item = queue.pop(0)
        if _day_of(item.opens) >= end:
            break
        outcome.questionnaires += 1
        r = _rng(seed, patient.index, "when", item.key)
        if r.random() < patient.missing:
            if _day_of(item.closes) < end:
                missed.append(MissedFacts(item.key, item.day, item.closes, item.reason))
                # A miss is evaluated when its window closes, with what is known by then.
                _collect(facts, responses, missed, rules, item.closes, open_until, outcome, seen, p)
            continue
        # Answered when it opens, or after the reminders of the next two days.
        offset = r.choices((0, 1, 2), (0.7, 0.2, 0.1))[0]
        answered = item.opens + timedelta(days=offset, hours=r.uniform(0, 8))
        if _day_of(answered) >= end:
            continue
        day = item.day + offset
        response = draw_response(
            seed, patient, item.key, answered, day, day - last_day, item.followup, p
        )
        last_day = day
        responses.append(response)
        outcome.answered += 1
        if item.reason == "confirmation":
            outcome.extra_answered += 1
        requests = _collect(facts, responses, missed, rules, answered, open_until, outcome, seen, p)
        if outcome.detected_day is not None:
            outcome.followed_days = outcome.detected_day  # imaging and revision take over
            break
        for request in requests:
            if request.response_id != response.id:
                continue  # asked (and planned or dismissed) when that response came
            opens = datetime.combine(request.due.date(), time(10), UTC)
            if any(opens <= until for k, until in open_until.items() if k in HIGH_KINDS):
                continue  # the alert it would confirm is open: cancelled
            if any(answered < q.opens <= opens for q in queue):
                continue  # a questionnaire opens sooner
            due_day = (opens.date() - DISCHARGE).days
            queue.append(
                _Item(
                    opens,
                    opens + timedelta(days=3),
                    due_day,
                    f"c{due_day:03d}-{response.id}",
                    "confirmation",
                    False,
                )
            )
            outcome.extra_checkins += 1
    return outcome


def _collect(
    facts: ProcedureFacts,
    responses: Sequence[ResponseFacts],
    missed: Sequence[MissedFacts],
    rules: RuleSet,
    now: datetime,
    open_until: dict[str, datetime],
    outcome: Outcome,
    seen: set[tuple[str, str | None, datetime]],
    p: Parameters,
) -> list[Any]:
    """Evaluate the history as the service does and open alerts for the new signals."""
    evaluation = evaluate(facts, responses, missed, rules)
    new: list[Signal] = []
    for signal in evaluation.signals:
        key = (signal.kind, signal.response_id, signal.answered_at)
        if key not in seen:
            seen.add(key)
            new.append(signal)
    patient = outcome.patient
    for signal in new:
        until = open_until.get(signal.kind)
        if until is not None and signal.answered_at <= until:
            continue  # joins the alert already open (or the episode its resolution closed)
        open_until[signal.kind] = now + timedelta(days=p.resolve_days)
        outcome.alerts[signal.kind] = outcome.alerts.get(signal.kind, 0) + 1
        if signal.kind in HIGH_KINDS:
            day = _day_of(now)
            if outcome.first_high is None:
                outcome.first_high = day
            onset = patient.onset
            if onset is not None and outcome.detected_day is None and day >= onset:
                outcome.detected_day = day
    return list(evaluation.confirmation_requests)


# --------------------------------------------------------------------------------------------
# Cohort and report
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VersionReport:
    version: str
    patients: int
    events: int
    detected: int
    sensitivity: float | None
    stable: int
    stable_falsely_alerted: float | None
    stable_any_alert: float | None
    treatment_failures: int
    treatment_failures_flagged: float | None
    median_delay_days: float | None
    p90_delay_days: float | None
    alerts_per_100_patient_months: float
    high_alerts_per_100_patient_months: float
    extra_checkins_per_100_patients: float
    questionnaires_per_patient: float
    answered_share: float
    by_event: dict[str, dict[str, Any]]


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _p90(values: Sequence[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.9 * len(ordered)) - 1)]


def summarise(name: str, outcomes: Sequence[Outcome]) -> VersionReport:
    events = [o for o in outcomes if o.patient.event is not None and o.patient.onset is not None]
    events = [o for o in events if o.patient.onset < o.followed_days]  # type: ignore[operator]
    detected = [o for o in events if o.detected_day is not None]
    delays = [o.detected_day - o.patient.onset for o in detected]  # type: ignore[operator]
    stable = [o for o in outcomes if o.patient.event is None and o.patient.responder]
    failures = [o for o in outcomes if o.patient.event is None and not o.patient.responder]
    months = sum(o.followed_days for o in outcomes) / 30.4375
    alerts = sum(sum(o.alerts.values()) for o in outcomes)
    high = sum(o.alerts.get(k, 0) for o in outcomes for k in HIGH_KINDS)
    asked = sum(o.questionnaires for o in outcomes)
    by_event: dict[str, dict[str, Any]] = {}
    for kind in ("loosening", "recurrence"):
        cases = [o for o in events if o.patient.event == kind]
        found = [o for o in cases if o.detected_day is not None]
        lags = [o.detected_day - o.patient.onset for o in found]  # type: ignore[operator]
        by_event[kind] = {
            "events": len(cases),
            "sensitivity": _share(len(found), len(cases)),
            "median_delay_days": round(statistics.median(lags), 1) if lags else None,
        }
    return VersionReport(
        version=name,
        patients=len(outcomes),
        events=len(events),
        detected=len(detected),
        sensitivity=_share(len(detected), len(events)),
        stable=len(stable),
        stable_falsely_alerted=_share(sum(o.first_high is not None for o in stable), len(stable)),
        stable_any_alert=_share(sum(bool(o.alerts) for o in stable), len(stable)),
        treatment_failures=len(failures),
        treatment_failures_flagged=_share(
            sum(o.first_high is not None for o in failures), len(failures)
        ),
        median_delay_days=round(statistics.median(delays), 1) if delays else None,
        p90_delay_days=round(_p90(delays), 1) if delays else None,  # type: ignore[arg-type]
        alerts_per_100_patient_months=round(100 * alerts / months, 2) if months else 0.0,
        high_alerts_per_100_patient_months=round(100 * high / months, 2) if months else 0.0,
        extra_checkins_per_100_patients=round(
            100 * sum(o.extra_checkins for o in outcomes) / len(outcomes), 1
        )
        if outcomes
        else 0.0,
        questionnaires_per_patient=round(asked / len(outcomes), 2) if outcomes else 0.0,
        answered_share=round(sum(o.answered for o in outcomes) / asked, 4) if asked else 0.0,
        by_event=by_event,
    )


def simulate(
    rulesets: Mapping[str, RuleSet],
    *,
    seed: int = 20261201,
    patients: int = 2000,
    parameters: Parameters | None = None,
    protocols: Mapping[str, Mapping[str, Sequence[Mapping[str, Any]]]] | None = None,
) -> list[VersionReport]:
    """Run the same cohort through each rule set; ``protocols`` may give a version its own
    protocol per procedure kind (the default is the project's protocol files)."""
    p = parameters or Parameters()
    cohort = [draw_patient(seed, i, p) for i in range(patients)]
    reports = []
    for name, rules in rulesets.items():
        per_kind = (protocols or {}).get(name, {})
        outcomes = [
            follow(patient, rules, seed, p, per_kind.get(patient.kind)) for patient in cohort
        ]
        reports.append(summarise(name, outcomes))
    return reports


_COLUMNS = (
    ("sensitivity", "sensitivity", "pct"),
    ("stable_falsely_alerted", "stable patients falsely alerted (high)", "pct"),
    ("stable_any_alert", "stable patients with any alert", "pct"),
    ("treatment_failures_flagged", "treatment failures flagged", "pct"),
    ("median_delay_days", "median delay (days)", "num"),
    ("p90_delay_days", "p90 delay (days)", "num"),
    ("alerts_per_100_patient_months", "alerts per 100 patient-months", "num"),
    ("high_alerts_per_100_patient_months", "high alerts per 100 patient-months", "num"),
    ("extra_checkins_per_100_patients", "extra check-ins per 100 patients", "num"),
    ("questionnaires_per_patient", "questionnaires asked per patient", "num"),
    ("answered_share", "questionnaires answered", "pct"),
)


def _cell(value: Any, style: str) -> str:
    if value is None:
        return "-"
    return f"{100 * value:.1f} %" if style == "pct" else f"{value:g}"


def format_table(reports: Iterable[VersionReport]) -> str:
    """A Markdown table, one column per version (the form docs/alerts.md quotes)."""
    reports = list(reports)
    head = "| measure | " + " | ".join(f"v{r.version}" for r in reports) + " |"
    lines = [head, "|---|" + "---|" * len(reports)]
    counts = " | ".join(
        f"{r.patients} patients, {r.events} events, {r.stable} stable" for r in reports
    )
    lines.append(f"| cohort | {counts} |")
    for attr, label, style in _COLUMNS:
        cells = " | ".join(_cell(getattr(r, attr), style) for r in reports)
        lines.append(f"| {label} | {cells} |")
    for kind in ("loosening", "recurrence"):
        cells = " | ".join(
            f"{_cell(r.by_event[kind]['sensitivity'], 'pct')} of {r.by_event[kind]['events']}, "
            f"median {_cell(r.by_event[kind]['median_delay_days'], 'num')} d"
            for r in reports
        )
        lines.append(f"| {kind} | {cells} |")
    return "\n".join(lines)


def as_json(reports: Iterable[VersionReport]) -> list[dict[str, Any]]:
    return [{f.name: getattr(r, f.name) for f in fields(r)} for r in reports]
