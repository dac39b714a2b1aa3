"""The statistics of the outcome report (research.md), as pure functions on plain data.

No database and no Flask here: the services load rows, these functions compute. scipy (t and
normal quantiles) and lifelines (Kaplan-Meier, Aalen-Johansen) are imported inside the
functions that need them, so an API worker that never builds a report never loads them.

Decisions where research.md is silent (each tested in tests/research/test_stats.py):
1. Time point: per outcome, the response closest to the target day among those in the window
   that carry that outcome (the Parker mobility score is only asked in the follow-up
   questionnaire, so a closer check-in does not hide it). A tie in distance goes to the earlier
   day (the answer given nearer to the previous time point is not preferred: both are as far;
   the earlier one was given first and cannot have been influenced by the later one).
2. Responder: walking pain improved by at least 2 points AND by at least 30 % of baseline
   (Farrar 2001). A baseline of 0 or 1 cannot improve by 2 points: never a responder.
3. Small cells: a count of 1 to 4 patients is shown as "<5" and the statistics computed from
   that cell (mean, interval, share) are withheld (None). A count of 0 singles nobody out and
   is shown. A responder share is withheld too when its complement (non-responders) is 1-4,
   since n and k would give it away.
4. Kaplan-Meier and cumulative incidence: days are integers, so events and censorings tie. The
   usual convention (an event at day t happened before a censoring at day t) is applied by
   ordering tied rows before handing them to lifelines, instead of its random jitter, so the
   same data always give the same curve. Curve values are reported only while 5 or more
   patients are at risk; the at-risk table masks 1-4 as "<5".
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

SMALL_CELL = 5
MASK = "<5"

# research.md, "Time points and outcomes".
OUTCOMES = ("pain_walking", "pain_rest", "mobility_score", "analgesic_step", "aid_level")
# Responder definition (Farrar 2001, minimal clinically important difference in pain).
RESPONDER_MIN_POINTS = 2
RESPONDER_MIN_FRACTION = 0.30


@dataclass(frozen=True)
class TimePoint:
    key: str
    target: int
    start: int
    end: int

    def contains(self, day: int) -> bool:
        return self.start <= day <= self.end


TIME_POINTS = (
    TimePoint("month_1", 30, 21, 45),
    TimePoint("month_3", 90, 60, 120),
    TimePoint("month_6", 180, 150, 240),
    TimePoint("month_12", 365, 300, 450),
)
TIME_POINTS_BY_KEY = {tp.key: tp for tp in TIME_POINTS}


@dataclass(frozen=True)
class Observation:
    """One response of one patient: its day since discharge and its outcome values."""

    day: int
    values: Mapping[str, float | int | None]


def select_value(
    observations: Iterable[Observation], time_point: TimePoint, outcome: str
) -> tuple[int, float] | None:
    """The (day, value) of ``outcome`` at ``time_point``, or None when missing (never imputed)."""
    best: tuple[int, int, float] | None = None
    for obs in observations:
        value = obs.values.get(outcome)
        if value is None or not time_point.contains(obs.day):
            continue
        key = (abs(obs.day - time_point.target), obs.day, float(value))
        if best is None or key[:2] < best[:2]:
            best = key
    return (best[1], best[2]) if best else None


def is_responder(baseline_walking: float, walking: float) -> bool:
    """Walking pain improved by >= 2 points and >= 30 % of baseline (decision 2)."""
    improvement = baseline_walking - walking
    return (
        improvement >= RESPONDER_MIN_POINTS
        and baseline_walking > 0
        and improvement >= RESPONDER_MIN_FRACTION * baseline_walking
    )


def masked_count(n: int) -> int | str:
    """A count as the report shows it: 1-4 become "<5" (decision 3)."""
    return MASK if 0 < n < SMALL_CELL else n


def is_small(n: int) -> bool:
    return 0 < n < SMALL_CELL


@dataclass(frozen=True)
class MeanEstimate:
    n: int
    mean: float | None
    low: float | None
    high: float | None

    def as_dict(self) -> dict[str, Any]:
        if self.n < SMALL_CELL:
            return {"n": masked_count(self.n), "mean": None, "low": None, "high": None}
        return {"n": self.n, "mean": self.mean, "low": self.low, "high": self.high}


def mean_ci(values: Sequence[float], confidence: float = 0.95) -> MeanEstimate:
    """Mean with its t-distribution confidence interval (n - 1 degrees of freedom)."""
    from scipy import stats

    n = len(values)
    if n == 0:
        return MeanEstimate(0, None, None, None)
    mean = math.fsum(values) / n
    if n == 1:
        return MeanEstimate(1, mean, None, None)
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
    return MeanEstimate(n, mean, mean - half, mean + half)


@dataclass(frozen=True)
class Proportion:
    k: int
    n: int
    share: float | None
    low: float | None
    high: float | None

    def as_dict(self) -> dict[str, Any]:
        hidden = self.n < SMALL_CELL or is_small(self.k) or is_small(self.n - self.k)
        if hidden:
            return {
                "k": masked_count(self.k),
                "n": masked_count(self.n),
                "share": None,
                "low": None,
                "high": None,
            }
        return {"k": self.k, "n": self.n, "share": self.share, "low": self.low, "high": self.high}


def wilson(k: int, n: int, confidence: float = 0.95) -> Proportion:
    """A binomial share with its Wilson score interval (Wilson 1927; Newcombe 1998)."""
    from scipy import stats

    if n == 0:
        return Proportion(k, n, None, None, None)
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    p = k / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return Proportion(k, n, p, max(0.0, centre - half), min(1.0, centre + half))


@dataclass(frozen=True)
class Difference:
    """``mean(b) - mean(a)`` with its Welch confidence interval."""

    n_a: int
    n_b: int
    difference: float | None
    low: float | None
    high: float | None
    df: float | None

    def as_dict(self) -> dict[str, Any]:
        if self.n_a < SMALL_CELL or self.n_b < SMALL_CELL:
            return {
                "n_a": masked_count(self.n_a),
                "n_b": masked_count(self.n_b),
                "difference": None,
                "low": None,
                "high": None,
            }
        return {
            "n_a": self.n_a,
            "n_b": self.n_b,
            "difference": self.difference,
            "low": self.low,
            "high": self.high,
        }


def welch_difference(
    a: Sequence[float], b: Sequence[float], confidence: float = 0.95
) -> Difference:
    """Difference in means (b - a) with the Welch-Satterthwaite t interval."""
    from scipy import stats

    n_a, n_b = len(a), len(b)
    if n_a < 2 or n_b < 2:
        return Difference(n_a, n_b, None, None, None, None)
    mean_a, mean_b = math.fsum(a) / n_a, math.fsum(b) / n_b
    var_a = math.fsum((v - mean_a) ** 2 for v in a) / (n_a - 1)
    var_b = math.fsum((v - mean_b) ** 2 for v in b) / (n_b - 1)
    se2 = var_a / n_a + var_b / n_b
    diff = mean_b - mean_a
    if se2 == 0:
        return Difference(n_a, n_b, diff, diff, diff, None)
    df = se2**2 / ((var_a / n_a) ** 2 / (n_a - 1) + (var_b / n_b) ** 2 / (n_b - 1))
    half = float(stats.t.ppf(0.5 + confidence / 2, df)) * math.sqrt(se2)
    return Difference(n_a, n_b, diff, diff - half, diff + half, df)


# --- time to event ---------------------------------------------------------------------------

CENSORED, EVENT, COMPETING = 0, 1, 2


def _ordered(durations: Sequence[float], codes: Sequence[int]) -> tuple[list[float], list[int]]:
    """Break ties deterministically: at one day, events first (decision 4). Among tied events
    the order changes no estimate at the end of the day, only the steps inside it."""
    out_d: list[float] = []
    out_c: list[int] = []
    seen: dict[float, int] = {}
    for d, c in sorted(zip(durations, codes, strict=True), key=lambda x: (x[0], x[1] == 0)):
        if c == CENSORED:
            out_d.append(float(d))
        else:
            k = seen.get(d, 0) + 1
            seen[d] = k
            out_d.append(float(d) - k * 1e-6)
        out_c.append(int(c))
    return out_d, out_c


def _at_risk(durations: Sequence[float], day: int) -> int:
    return sum(1 for d in durations if d >= day)


def kaplan_meier(
    durations: Sequence[float], events: Sequence[bool], days: Sequence[int]
) -> list[dict[str, Any]]:
    """Kaplan-Meier survival (free of the event) at each of ``days``, with its 95 % interval
    (lifelines: Greenwood variance, log(-log) transform), numbers at risk and events so far."""
    if not durations:
        return [_empty_point(day) for day in days]
    from lifelines import KaplanMeierFitter

    codes = [EVENT if e else CENSORED for e in events]
    d, c = _ordered(durations, codes)
    km = KaplanMeierFitter().fit(d, event_observed=[x == EVENT for x in c])
    out = []
    for day in days:
        at_risk = _at_risk(durations, day)
        events_so_far = sum(1 for t, e in zip(durations, events, strict=True) if e and t <= day)
        point: dict[str, Any] = {
            "day": day,
            "at_risk": masked_count(at_risk),
            "events": masked_count(events_so_far),
            "estimate": None,
            "low": None,
            "high": None,
        }
        if at_risk >= SMALL_CELL:
            ci = km.confidence_interval_survival_function_
            row = ci[ci.index <= day + 1e-9].iloc[-1]
            point.update(
                estimate=float(km.survival_function_at_times(day + 1e-9).iloc[0]),
                low=float(row.iloc[0]),
                high=float(row.iloc[1]),
            )
        out.append(point)
    return out


def cumulative_incidence(
    durations: Sequence[float], codes: Sequence[int], days: Sequence[int]
) -> list[dict[str, Any]]:
    """Aalen-Johansen cumulative incidence of the event (code 1) with death as a competing
    event (code 2); code 0 is censored. lifelines' estimator and its delta-method interval."""
    if not durations or not any(c == EVENT for c in codes):
        # No event of interest: the incidence is 0 throughout (no interval to give).
        return [
            {
                "day": day,
                "at_risk": masked_count(_at_risk(durations, day)),
                "events": 0,
                "estimate": 0.0 if _at_risk(durations, day) >= SMALL_CELL else None,
                "low": None,
                "high": None,
            }
            for day in days
        ]
    import warnings

    from lifelines import AalenJohansenFitter

    d, c = _ordered(durations, codes)
    fitter = AalenJohansenFitter(calculate_variance=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ties are already broken (decision 4)
        fitter.fit(d, c, event_of_interest=EVENT)
    cif = fitter.cumulative_density_
    ci = fitter.confidence_interval_
    out = []
    for day in days:
        at_risk = _at_risk(durations, day)
        upto = cif[cif.index <= day + 1e-9]
        estimate = float(upto.iloc[-1, 0]) if len(upto) else 0.0
        ci_upto = ci[ci.index <= day + 1e-9]
        low = high = None
        if len(ci_upto):
            low_v, high_v = (float(v) for v in ci_upto.iloc[-1])
            low = None if math.isnan(low_v) else low_v
            high = None if math.isnan(high_v) else high_v
        point: dict[str, Any] = {
            "day": day,
            "at_risk": masked_count(at_risk),
            "events": masked_count(
                sum(1 for t, k in zip(durations, codes, strict=True) if k == EVENT and t <= day)
            ),
            "estimate": estimate if at_risk >= SMALL_CELL else None,
            "low": low if at_risk >= SMALL_CELL else None,
            "high": high if at_risk >= SMALL_CELL else None,
        }
        out.append(point)
    return out


def _empty_point(day: int) -> dict[str, Any]:
    return {"day": day, "at_risk": 0, "events": 0, "estimate": None, "low": None, "high": None}
