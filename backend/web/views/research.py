"""The physician's research page: the outcome report at a glance, each figure with its table."""

from __future__ import annotations

import base64
from typing import Any

from flask import Response, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from marshmallow import ValidationError

from backend.clock import utcnow
from backend.research import services
from backend.research.schemas import OutcomeQueryArgsSchema
from backend.web.blueprint import bp, error_page
from backend.web.i18n import label
from backend.web.session import current_staff, staff_page

GROUP_LABELS = {
    "kind": _l("Procedure"),
    "etiology": _l("Etiology"),
    "location": _l("Location"),
    "bone_quality": _l("Bone quality"),
    "anaesthesia": _l("Anaesthesia"),
    "arm": _l("Study arm"),
    "age_band": _l("Age band"),
}
OUTCOME_LABELS = {
    "pain_walking": _l("Walking pain (0-10)"),
    "pain_rest": _l("Rest pain (0-10)"),
    "mobility_score": _l("Parker mobility score (0-9)"),
    "analgesic_step": _l("Analgesic step (0-3)"),
    "aid_level": _l("Walking-aid level (0-5)"),
}
TIME_POINT_LABELS = {
    "month_1": _l("Month 1"),
    "month_3": _l("Month 3"),
    "month_6": _l("Month 6"),
    "month_12": _l("Month 12"),
}
VOCABULARY = {
    "kind": "procedure_kind",
    "etiology": "etiology",
    "location": "location",
    "bone_quality": "bone_quality",
    "anaesthesia": "anaesthesia",
}


def value_label(group: str, value: str) -> str:
    if value == "unknown":
        return str(_("Not recorded"))
    vocabulary = VOCABULARY.get(group)
    return label(value, vocabulary) if vocabulary else value


def _img(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


@bp.get("/research")
@staff_page
def research() -> Response | str:
    """Outcomes by group for the site's physicians and administrators (nurses: 403)."""
    from backend.research import plots

    if current_staff().role not in {"physician", "admin"}:
        return error_page(403, _("Not allowed"), _("This page is for physicians."))
    try:
        args = OutcomeQueryArgsSchema(only=("group", "outcome")).load(
            {k: request.args[k] for k in ("group", "outcome") if request.args.get(k)}
        )
    except ValidationError:
        args = {"group": "kind", "outcome": "pain_walking"}
    group, outcome = args["group"], args["outcome"]
    report = services.outcome_report(
        current_staff(), group=group, filters={}, outcome=outcome, now=utcnow()
    )
    labels = {g["value"]: value_label(group, g["value"]) for g in report["groups"]}
    axis = {
        "day": _("Days since discharge"),
        "value": str(OUTCOME_LABELS[outcome]),
        "difference": _("Difference in mean change (cement plus screws minus cement alone)"),
        "incidence": _("Cumulative incidence"),
        "at_risk": _("At risk"),
        "completeness": _("Answered / expected"),
        "time_points": "|".join(str(v) for v in TIME_POINT_LABELS.values()),
    }
    forest_tp = request.args.get("time_point", "month_3")
    if forest_tp not in TIME_POINT_LABELS:
        forest_tp = "month_3"
    forest_rows = _forest_rows(report, forest_tp)
    survival = report["overall"]["loosening_or_revision"] if report["overall"] else None
    figures: dict[str, Any] = {
        "trajectories": _img(plots.trajectories(report, outcome, labels, axis)),
        "forest": _img(plots.forest(forest_rows, axis)),
        "completeness": _img(plots.completeness(report, labels, axis)),
        "incidence": _img(
            plots.incidence(
                survival,
                {
                    "cumulative_incidence": _("Aalen-Johansen (death competing)"),
                    "kaplan_meier": _("1 - Kaplan-Meier (deaths censored)"),
                },
                axis,
            )
        )
        if survival
        else None,
    }
    page = render_template(
        "web/research.html",
        nav="research",
        report=report,
        group=group,
        outcome=outcome,
        labels=labels,
        figures=figures,
        forest_rows=forest_rows,
        forest_tp=forest_tp,
        survival=survival,
        group_labels=GROUP_LABELS,
        outcome_labels=OUTCOME_LABELS,
        time_point_labels=TIME_POINT_LABELS,
    )
    return page


def _forest_rows(report: dict[str, Any], time_point: str) -> list[dict[str, Any]]:
    comparison = report["comparison"]
    rows = []
    overall = next(d for d in comparison["overall"] if d["time_point"] == time_point)
    rows.append({**overall, "label": _("All patients"), "overall": True})
    for sub in comparison["subgroups"]:
        d = next(x for x in sub["time_points"] if x["time_point"] == time_point)
        if d["n_a"] == 0 or d["n_b"] == 0:
            continue  # a subgroup with one procedure only compares nothing
        rows.append(
            {
                **d,
                "label": f"{GROUP_LABELS[sub['variable']]}: "
                f"{value_label(sub['variable'], sub['value'])}",
            }
        )
    return rows
