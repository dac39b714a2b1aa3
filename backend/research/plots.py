"""The physician page's figures, drawn by matplotlib on the server as SVG.

Each function takes the outcome report (``services.outcome_report``) and labels already in the
reader's language, and returns SVG text; the page shows it as an image with its table of
values beneath (the same numbers, for screen readers and for a slide). matplotlib is imported
here only, through its object API (``Figure``, no pyplot: no global state, safe in threads).
Series differ by line style and marker too, so the figures print in black and white.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

STYLES = [("-", "o"), ("--", "s"), (":", "^"), ("-.", "D"), ((0, (5, 1)), "v"), ((0, (1, 1)), "P")]
COLOURS = ["#1f4e79", "#b8500f", "#2e7d32", "#6a1b9a", "#455a64", "#8d6e00"]


def _figure(width: float = 7.5, height: float = 3.6) -> Any:
    import matplotlib

    matplotlib.rcParams["svg.hashsalt"] = "ir-followup"  # the same data, the same SVG
    matplotlib.rcParams["svg.fonttype"] = "none"  # text stays text (selectable, smaller)
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _svg(fig: Any) -> str:
    out = io.StringIO()
    fig.savefig(out, format="svg", metadata={"Date": None})
    return out.getvalue()


def trajectories(
    report: Mapping[str, Any], outcome: str, labels: Mapping[str, str], axis: Mapping[str, str]
) -> str:
    """Mean value of ``outcome`` by day since discharge, per group, with 95 % bands."""
    fig = _figure()
    ax = fig.add_subplot()
    for i, group in enumerate(report["groups"]):
        points = [
            (tp["target_day"], tp["outcomes"][outcome]["value"])
            for tp in group["time_points"]
            if tp["outcomes"][outcome]["value"]["mean"] is not None
        ]
        if not points:
            continue
        style, marker = STYLES[i % len(STYLES)]
        colour = COLOURS[i % len(COLOURS)]
        days = [d for d, _ in points]
        ax.plot(
            days,
            [v["mean"] for _, v in points],
            linestyle=style,
            marker=marker,
            color=colour,
            label=labels.get(group["value"], group["value"]),
        )
        low = [v["low"] if v["low"] is not None else v["mean"] for _, v in points]
        high = [v["high"] if v["high"] is not None else v["mean"] for _, v in points]
        ax.fill_between(days, low, high, color=colour, alpha=0.15, linewidth=0)
    ax.set_xlabel(axis["day"])
    ax.set_ylabel(axis["value"])
    ax.set_xticks([30, 90, 180, 365])
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best", fontsize="small")
    return _svg(fig)


def forest(rows: Sequence[Mapping[str, Any]], axis: Mapping[str, str]) -> str:
    """Difference in mean change (plus screws minus alone) with its 95 % interval, one row per
    subgroup; rows without an estimate (small cells) are listed but not drawn."""
    height = 1.2 + 0.32 * max(len(rows), 1)
    fig = _figure(7.5, height)
    ax = fig.add_subplot()
    ys = list(range(len(rows)))[::-1]
    for y, row in zip(ys, rows, strict=True):
        if row["difference"] is None:
            continue
        ax.errorbar(
            [row["difference"]],
            [y],
            xerr=[
                [max(0.0, row["difference"] - row["low"])],
                [max(0.0, row["high"] - row["difference"])],
            ],
            fmt="s" if row.get("overall") else "o",
            color="#000",
            markersize=7 if row.get("overall") else 5,
            capsize=3,
        )
    ax.axvline(0, color="#555", linestyle="--", linewidth=1)
    ax.set_yticks(ys, [row["label"] for row in rows], fontsize="small")
    ax.set_xlabel(axis["difference"])
    ax.grid(True, axis="x", alpha=0.3)
    return _svg(fig)


def incidence(
    survival: Mapping[str, Any], labels: Mapping[str, str], axis: Mapping[str, str]
) -> str:
    """Cumulative incidence of confirmed loosening or revision: Aalen-Johansen (death
    competing) beside 1 - Kaplan-Meier (deaths censored), as steps, with numbers at risk."""
    fig = _figure(7.5, 3.8)
    ax = fig.add_subplot()
    for key, (style, marker) in (
        ("cumulative_incidence", ("-", "o")),
        ("kaplan_meier", ("--", "s")),
    ):
        pts = [p for p in survival[key] if p["estimate"] is not None]
        if not pts:
            continue
        days = [p["day"] for p in pts]
        values = [p["estimate"] if key != "kaplan_meier" else 1 - p["estimate"] for p in pts]
        ax.step(
            days,
            values,
            where="post",
            linestyle=style,
            marker=marker,
            color="#000",
            label=labels[key],
        )
    ax.set_xlabel(axis["day"])
    ax.set_ylabel(axis["incidence"])
    ax.set_ylim(bottom=0)
    ax.set_xticks([p["day"] for p in survival["cumulative_incidence"]])
    at_risk = [str(p["at_risk"]) for p in survival["cumulative_incidence"]]
    ax.set_xticklabels(
        [f"{p['day']}\n{n}" for p, n in zip(survival["cumulative_incidence"], at_risk, strict=True)]
    )
    ax.text(0, -0.32, axis["at_risk"], transform=ax.transAxes, fontsize="small", ha="right")
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", fontsize="small")
    return _svg(fig)


def completeness(
    report: Mapping[str, Any], labels: Mapping[str, str], axis: Mapping[str, str]
) -> str:
    """Answered / expected per time point and group, as bars with their Wilson interval."""
    fig = _figure(7.5, 3.2)
    ax = fig.add_subplot()
    groups = report["groups"]
    width = 0.8 / max(len(groups), 1)
    hatches = ["", "//", "..", "xx", "\\\\", "++"]
    for i, group in enumerate(groups):
        labelled = False
        for j, tp in enumerate(group["time_points"]):
            c = tp["completeness"]
            if c["share"] is None:
                continue
            x = j + i * width
            ax.bar(
                x,
                c["share"],
                width,
                color=COLOURS[i % len(COLOURS)],
                alpha=0.6,
                hatch=hatches[i % len(hatches)],
                edgecolor="#000",
                label=None if labelled else labels.get(group["value"], group["value"]),
            )
            labelled = True
            ax.errorbar(
                [x],
                [c["share"]],
                yerr=[[max(0.0, c["share"] - c["low"])], [max(0.0, c["high"] - c["share"])]],
                color="#000",
                capsize=2,
            )
    ax.set_xticks([j + 0.4 - width / 2 for j in range(4)], axis["time_points"].split("|"))
    ax.set_ylim(0, 1)
    ax.set_ylabel(axis["completeness"])
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower left", fontsize="small")
    return _svg(fig)
