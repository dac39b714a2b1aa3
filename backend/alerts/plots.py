"""The team page's figures, drawn by matplotlib on the server as SVG (as the research page's:
the object API, no pyplot; each figure has its table of the same numbers beneath it)."""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

SEVERITY_STYLES = {
    "urgent": ("-", "o", "#a4262c"),
    "high": ("--", "s", "#b8500f"),
    "routine": (":", "^", "#1f4e79"),
}


def _figure(width: float = 7.5, height: float = 3.2) -> Any:
    import matplotlib

    matplotlib.rcParams["svg.hashsalt"] = "ir-followup"
    matplotlib.rcParams["svg.fonttype"] = "none"
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _svg(fig: Any) -> str:
    out = io.StringIO()
    fig.savefig(out, format="svg", metadata={"Date": None})
    return out.getvalue()


def _weeks(report: Mapping[str, Any]) -> list[str]:
    return [w["week_start"].strftime("%d/%m") for w in report["weeks"]]


def times(
    report: Mapping[str, Any], what: str, labels: Mapping[str, str], axis: Mapping[str, str]
) -> str:
    """Median (solid marks) and 90th percentile (hollow) hours to ``what`` per week."""
    fig = _figure()
    ax = fig.add_subplot()
    weeks = _weeks(report)
    for severity, (style, marker, colour) in SEVERITY_STYLES.items():
        for key, fill in (("median", colour), ("p90", "none")):
            values = [
                next(r for r in w["by_severity"] if r["severity"] == severity)[
                    f"{key}_seconds_to_{what}"
                ]
                for w in report["weeks"]
            ]
            points = [(i, v / 3600) for i, v in enumerate(values) if v is not None]
            if not points:
                continue
            ax.plot(
                [i for i, _ in points],
                [v for _, v in points],
                linestyle=style if key == "median" else "none",
                marker=marker,
                markerfacecolor=fill,
                color=colour,
                label=f"{labels[severity]} ({axis[key]})",
            )
    ax.set_xticks(range(len(weeks)), weeks, fontsize=8)
    ax.set_ylabel(axis["y"])
    ax.grid(axis="y", alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, ncols=2)
    return _svg(fig)


def overdue(report: Mapping[str, Any], labels: Mapping[str, str], axis: Mapping[str, str]) -> str:
    """Share of each week's alerts acknowledged after their target (or not yet, past it)."""
    fig = _figure()
    ax = fig.add_subplot()
    weeks = _weeks(report)
    for severity, (style, marker, colour) in SEVERITY_STYLES.items():
        values = [
            next(r for r in w["by_severity"] if r["severity"] == severity)["overdue_share"]
            for w in report["weeks"]
        ]
        points = [(i, 100 * v) for i, v in enumerate(values) if v is not None]
        if points:
            ax.plot(
                [i for i, _ in points],
                [v for _, v in points],
                linestyle=style,
                marker=marker,
                color=colour,
                label=labels[severity],
            )
    ax.set_xticks(range(len(weeks)), weeks, fontsize=8)
    ax.set_ylim(0, 100)
    ax.set_ylabel(axis["y"])
    ax.grid(axis="y", alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    return _svg(fig)


def rates(report: Mapping[str, Any], axis: Mapping[str, str], kinds: Mapping[str, str]) -> str:
    """Alerts per 100 patient-weeks over the period, by kind and rule version."""
    rows = [r for r in report["totals"]["rates"] if r["per_100_patient_weeks"] is not None]
    fig = _figure(height=max(1.6, 0.35 * len(rows) + 0.8))
    ax = fig.add_subplot()
    names = [f"{kinds.get(r['kind'], r['kind'])} v{r['rule_version']}" for r in rows]
    ax.barh(range(len(rows)), [r["per_100_patient_weeks"] for r in rows], color="#1f4e79")
    ax.set_yticks(range(len(rows)), names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(axis["x"])
    ax.grid(axis="x", alpha=0.3)
    return _svg(fig)
