"""Research API (physicians and admins of the site): outcomes, exports, randomisation."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Response, current_app, send_from_directory, url_for
from flask.views import MethodView
from flask_smorest import Blueprint

from backend.audit.services import record
from backend.auth.guards import current_staff, site_scoped, staff_required
from backend.clock import utcnow
from backend.errors import NotFound, problems
from backend.patients.models import Patient
from backend.research import randomisation, services
from backend.research.schemas import (
    AllocationSchema,
    ExportSchema,
    OutcomeQueryArgsSchema,
    OutcomeReportSchema,
    RandomiseSchema,
    StudyCreateSchema,
    StudySchema,
)
from backend.schemas import EmptySchema

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
        return report


def present_export(job: Any) -> dict[str, Any]:
    files = []
    if job.status == "done" and job.manifest:
        files = [
            {
                "name": name,
                "sha256": digest,
                "url": url_for("research.ExportFile", export_id=job.id, name=name),
            }
            for name, digest in sorted(job.manifest["files"].items())
        ]
        files.append(
            {
                "name": "manifest.json",
                "sha256": None,
                "url": url_for("research.ExportFile", export_id=job.id, name="manifest.json"),
            }
        )
    return {
        "id": job.id,
        "status": job.status,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "error": job.error,
        "requested_by_role": job.requested_role,
        "files": files,
        "manifest": job.manifest if job.status == "done" else None,
    }


@blp.route("/exports")
class Exports(MethodView):
    @staff_required(*RESEARCH_ROLES)
    @blp.arguments(EmptySchema, required=False)
    @blp.response(202, ExportSchema)
    @problems(blp, 401, 403, 409)
    def post(self, _body: dict[str, Any]) -> dict[str, Any]:
        """Ask for a pseudonymised export of the site; the scheduler builds it (202)"""
        job = services.request_export(current_staff(), now=utcnow(), config=current_app.config)
        return present_export(job)


@blp.route("/exports/<uuid:export_id>")
class ExportById(MethodView):
    @staff_required(*RESEARCH_ROLES)
    @blp.response(200, ExportSchema)
    @problems(blp, 401, 403, 404)
    def get(self, export_id: uuid.UUID) -> dict[str, Any]:
        """An export's state, then its files"""
        return present_export(services.get_export(current_staff(), export_id))


@blp.route("/exports/<uuid:export_id>/files/<string:name>")
class ExportFile(MethodView):
    @staff_required(*RESEARCH_ROLES)
    @blp.response(200, description="The file (CSV, Parquet or JSON)")
    @problems(blp, 401, 403, 404)
    def get(self, export_id: uuid.UUID, name: str) -> Response:
        """Download one file of a finished export (audited)"""
        job = services.get_export(current_staff(), export_id)
        allowed = set((job.manifest or {}).get("files", {})) | {"manifest.json"}
        if job.status != "done" or name not in allowed or not job.directory:
            raise NotFound()
        record(
            "research.export.downloaded",
            now=utcnow(),
            actor=current_staff(),
            resource_type="research_export",
            resource_id=job.id,
            details={"file": name},
        )
        return send_from_directory(job.directory, name, as_attachment=True)


def present_study(study: Any) -> dict[str, Any]:
    return {
        "id": study.id,
        "key": study.key,
        "title": study.title,
        "arms": study.arms,
        "strata": study.strata,
        "block_sizes": study.block_sizes,
        "seed_sha256": study.seed_sha256,
        "created_at": study.created_at,
        "balance": randomisation.balance(study),
    }


@blp.route("/studies")
class Studies(MethodView):
    @staff_required(*RESEARCH_ROLES)
    @blp.arguments(StudyCreateSchema)
    @blp.response(201, StudySchema)
    @problems(blp, 401, 403, 409, 422)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create a randomised study and its concealed allocation lists"""
        principal = current_staff()
        assert principal.site_id is not None
        study = randomisation.create_study(
            site_id=principal.site_id, actor=principal, now=utcnow(), **body
        )
        return present_study(study)


@blp.route("/studies/<uuid:study_id>")
class StudyById(MethodView):
    @staff_required(*RESEARCH_ROLES)
    @blp.response(200, StudySchema)
    @problems(blp, 401, 403, 404)
    def get(self, study_id: uuid.UUID) -> dict[str, Any]:
        """A study and its balance per stratum (never an upcoming allocation)"""
        return present_study(randomisation.get_study(current_staff(), study_id))


@blp.route("/studies/<uuid:study_id>/randomisations")
class Randomisations(MethodView):
    @staff_required(*RESEARCH_ROLES)
    @blp.arguments(RandomiseSchema)
    @blp.response(200, AllocationSchema)
    @problems(blp, 401, 403, 404, 409, 422)
    def post(self, body: dict[str, Any], study_id: uuid.UUID) -> dict[str, Any]:
        """Randomise a consented patient, once: a second call returns the same arm"""
        principal = current_staff()
        study = randomisation.get_study(principal, study_id)
        patient = site_scoped(Patient, body["patient_id"], principal)
        allocation, first = randomisation.randomise(
            principal, study, patient, body["strata"], now=utcnow()
        )
        return {
            "study_id": study.id,
            "patient_id": patient.id,
            "stratum": allocation.stratum,
            "arm": allocation.arm,
            "allocated_at": allocation.allocated_at,
            "first_time": first,
        }
