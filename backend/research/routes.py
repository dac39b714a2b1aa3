"""Research API (physicians and admins of the site): outcomes, exports, randomisation."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from backend.auth.guards import current_staff, staff_required
from backend.clock import utcnow
from backend.errors import problems
from backend.extensions import db
from backend.research import services
from backend.research.schemas import OutcomeQueryArgsSchema, OutcomeReportSchema

blp = Blueprint(
    "research",
    __name__,
    url_prefix="/api/v1/research",
    description="Research: outcomes by subgroup, pseudonymised export, randomisation",
)

RESEARCH_ROLES = ("physician", "admin")
FILTERS = ("kind", "etiology", "location", "bone_quality", "anaesthesia", "arm", "age_band")


@blp.route("/outcomes")
class Outcomes(MethodView):
    @staff_required(*RESEARCH_ROLES)
    @blp.arguments(OutcomeQueryArgsSchema, location="query")
    @blp.response(200, OutcomeReportSchema)
    @problems(blp, 401, 403)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Outcomes per time point and group, the headline comparison, events, survival"""
        report = services.outcome_report(
            current_staff(),
            group=args["group"],
            filters={k: args[k] for k in FILTERS if args.get(k)},
            outcome=args["outcome"],
            now=utcnow(),
        )
        db.session.commit()
        return report
