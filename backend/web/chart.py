"""The trajectory chart: walking pain, rest pain and mobility score by day since discharge.

Drawn on the server as SVG by a template (``templates/web/_chart.html``) from the geometry
computed here. A charting library was weighed and not taken: matplotlib is a heavy scientific
stack for one fixed chart, and pygal's output leans on its own scripts and styles for what
matters here (reference lines, alert markers linking to the alert, print styles, accessible
text). This is one chart type with three series on one 0-10 scale, so a small pure module that
tests can check point by point is the cheaper thing to keep right.

Series differ by line style and marker shape as well as by colour, so the chart reads in
grey print and for colour-blind nurses. Every number drawn is also in the data table under it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

from backend.alerts.rules import RuleSet, walking_nadir

# Canvas (SVG user units; the SVG scales to its container).
WIDTH, HEIGHT = 760, 330
LEFT, RIGHT, TOP, BOTTOM = 48, 92, 36, 48  # the right margin holds the reference labels
BASELINE_SLOT = 60  # room left of day 0 for the pre-procedure values
Y_MAX = 10  # pain is 0-10, the Parker Mobility Score 0-9: one scale fits both
FLAG_GAP = 24  # alert flags (radius 11) closer than this would overlap
LABEL_GAP = 15  # reference labels (12 px text) closer than this would overlap


@dataclass(frozen=True)
class Point:
    day: int
    value: int
    x: float
    y: float


@dataclass(frozen=True)
class Series:
    key: str  # walking | rest | mobility (CSS class and marker shape)
    points: tuple[Point, ...]
    path: str  # SVG path "M x y L x y ..."
    baseline: Point | None


@dataclass(frozen=True)
class Nadir:
    """Best settled walking pain: the lowest mean of two consecutive reports."""

    value: Fraction
    days: tuple[int, ...]
    y: float
    ring: tuple[Point, ...]  # the reports it comes from


@dataclass(frozen=True)
class AlertMark:
    number: int
    alert_id: str
    kind: str
    severity: str
    status: str
    day: int
    x: float
    flag_x: float  # the numbered flag, moved right when it would cover the previous one
    highlighted: bool


@dataclass(frozen=True)
class Tick:
    value: int
    position: float


@dataclass
class Chart:
    width: int
    height: int
    plot_left: float
    plot_right: float
    plot_top: float
    plot_bottom: float
    baseline_x: float
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    series: list[Series]
    baseline_walking_y: float
    baseline_label_y: float
    nadir: Nadir | None
    nadir_label_y: float | None
    alerts: list[AlertMark]
    today_x: float | None
    today_day: int
    max_day: int
    rows: list[dict[str, Any]] = field(default_factory=list)  # the data table

    def series_by_key(self, key: str) -> Series:
        return next(s for s in self.series if s.key == key)


def _day_of(when: datetime, discharged_on: date, zone: ZoneInfo) -> int:
    return (when.astimezone(zone).date() - discharged_on).days


def _tick_step(max_day: int) -> int:
    for limit, step in ((35, 7), (70, 14), (120, 30), (400, 60)):
        if max_day <= limit:
            return step
    return 90


def build_chart(
    procedure: Any,
    responses: Sequence[Any],
    alerts: Sequence[Any],
    *,
    now: datetime,
    timezone: str,
    highlight: Any = None,
    rules: RuleSet | None = None,
) -> Chart:
    """The chart of one procedure's follow-up. ``responses`` in answered order; ``alerts`` are
    the patient's alerts, each drawn at the day of the report that opened it (else of its
    creation)."""
    zone = ZoneInfo(timezone)
    discharged_on: date = procedure.discharged_on
    today_day = _day_of(now, discharged_on, zone)
    by_id = {str(r.id): r for r in responses}
    alert_days = []
    for alert in alerts:
        opened = by_id.get(str(alert.opened_by_response_id))
        if opened is not None:
            alert_days.append(opened.day)
        else:  # no_response alerts have no report; and reports of an earlier procedure
            alert_days.append(_day_of(alert.created_at, discharged_on, zone))

    last: int = max([30, today_day, *[int(r.day) for r in responses], *alert_days])
    step = _tick_step(last)
    max_day = -(-last // step) * step  # round up to a whole tick

    plot_left, plot_right = float(LEFT), float(WIDTH - RIGHT)
    plot_top, plot_bottom = float(TOP), float(HEIGHT - BOTTOM)
    day0 = plot_left + BASELINE_SLOT
    per_day = (plot_right - day0) / max_day
    per_point = (plot_bottom - plot_top) / Y_MAX

    def x(day: float) -> float:
        return round(day0 + day * per_day, 1)

    def y(value: float) -> float:
        return round(plot_bottom - value * per_point, 1)

    baseline_x = round(plot_left + BASELINE_SLOT / 2 - 6, 1)

    def series(key: str, values: list[tuple[int, int]], baseline: int | None) -> Series:
        points = tuple(Point(day, value, x(day), y(value)) for day, value in values)
        path = " ".join(f"{'M' if i == 0 else 'L'}{p.x} {p.y}" for i, p in enumerate(points))
        base = Point(0, baseline, baseline_x, y(baseline)) if baseline is not None else None
        return Series(key, points, path, base)

    walking = [(r.day, int(r.answers["pain_walking"])) for r in responses]
    rest = [(r.day, int(r.answers["pain_rest"])) for r in responses]
    mobility = [
        (r.day, int(r.scores["mobility_score"]))
        for r in responses
        if r.scores.get("mobility_score") is not None
    ]
    all_series = [
        series("walking", walking, procedure.baseline_pain_walking),
        series("rest", rest, procedure.baseline_pain_rest),
        series("mobility", mobility, procedure.baseline_mobility_score),
    ]

    nadir = None
    found = walking_nadir(walking, rules)  # the rules decide what the nadir is
    if found is not None:
        value, indexes = found
        ring = tuple(all_series[0].points[i] for i in indexes)
        nadir = Nadir(value, tuple(walking[i][0] for i in indexes), y(float(value)), ring)

    # Labels in the right margin, 4 units below their line; apart when the lines are close.
    baseline_label_y = y(procedure.baseline_pain_walking) + 4
    nadir_label_y = None
    if nadir is not None:
        nadir_label_y = nadir.y + 4
        if abs(nadir_label_y - baseline_label_y) < LABEL_GAP:
            nadir_label_y = (
                baseline_label_y + LABEL_GAP
                if nadir.y >= y(procedure.baseline_pain_walking)
                else baseline_label_y - LABEL_GAP
            )

    marks: list[AlertMark] = []
    ordered = sorted(
        zip(alerts, alert_days, strict=True), key=lambda pair: (pair[1], pair[0].created_at)
    )
    for number, (alert, day) in enumerate(ordered, start=1):
        flag_x = x(day)
        if marks and flag_x < marks[-1].flag_x + FLAG_GAP:
            flag_x = marks[-1].flag_x + FLAG_GAP
        marks.append(
            AlertMark(
                number=number,
                alert_id=str(alert.id),
                kind=alert.kind,
                severity=alert.severity,
                status=alert.status,
                day=day,
                x=x(day),
                flag_x=round(flag_x, 1),
                highlighted=highlight is not None and str(alert.id) == str(highlight),
            )
        )

    rows = []
    for r in responses:
        rows.append(
            {
                "day": r.day,
                "answered_at": r.answered_at,
                "instrument": r.instrument_key,
                "pain_walking": r.answers["pain_walking"],
                "pain_rest": r.answers["pain_rest"],
                "mobility_score": r.scores.get("mobility_score"),
            }
        )

    return Chart(
        width=WIDTH,
        height=HEIGHT,
        plot_left=plot_left,
        plot_right=plot_right,
        plot_top=plot_top,
        plot_bottom=plot_bottom,
        baseline_x=baseline_x,
        x_ticks=[Tick(d, x(d)) for d in range(0, max_day + 1, step)],
        y_ticks=[Tick(v, y(v)) for v in range(0, Y_MAX + 1, 2)],
        series=all_series,
        baseline_walking_y=y(procedure.baseline_pain_walking),
        baseline_label_y=baseline_label_y,
        nadir=nadir,
        nadir_label_y=nadir_label_y,
        alerts=marks,
        today_x=x(today_day) if 0 <= today_day <= max_day else None,
        today_day=today_day,
        max_day=max_day,
        rows=rows,
    )
