"""Staff endpoints for patients, procedures, enrollment codes, nurse-entered answers, timeline;
and the phone's enrollment claim."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Response, current_app, jsonify
from flask.views import MethodView
from flask_smorest import Blueprint

from backend.audit.services import record
from backend.auth.guards import current_staff, staff_required
from backend.clock import utcnow
from backend.errors import NotFound, Problem, problems
from backend.extensions import db, limiter
from backend.locales import staff_locale
from backend.pagination import paginate
from backend.patients import lifecycle, services
from backend.patients.models import Patient, Procedure
from backend.patients.schemas import (
    ClaimResultSchema,
    ClaimSchema,
    ConsentCreateSchema,
    ConsentListSchema,
    ConsentSchema,
    EnrolledDeviceListSchema,
    EnrolledDeviceSchema,
    EnrollmentCodeCreateSchema,
    EnrollmentCodeSchema,
    PatientCreateSchema,
    PatientListSchema,
    PatientQueryArgsSchema,
    PatientSchema,
    PatientUpdateSchema,
    ProcedureCreateSchema,
    ProcedureSchema,
    ProcedureUpdateSchema,
    StatusChangeCreateSchema,
    StatusChangeSchema,
    StatusHistorySchema,
)
from backend.patients.timeline import TimelineSchema, build_timeline
from backend.questionnaires.routes import submit_response
from backend.questionnaires.schemas import (
    IdempotencyHeaderSchema,
    StaffResponseCreatedSchema,
    StaffResponseCreateSchema,
)
from backend.schemas import EmptySchema
from backend.uow import keep_on_error

blp = Blueprint(
    "patients", __name__, url_prefix="/api/v1/patients", description="Patients (staff of the site)"
)
enrollment_blp = Blueprint(
    "enrollment", __name__, url_prefix="/api/v1/enrollment", description="Phone enrollment"
)


@blp.route("")
class Patients(MethodView):
    @staff_required()
    @blp.arguments(PatientQueryArgsSchema, location="query")
    @blp.response(200, PatientListSchema)
    @problems(blp, 401)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Search the patients of your site (by MRN or name) and filter by status"""
        query = services.search_patients(current_staff(), args.get("q"), args.get("status"))
        items, cursor = paginate(
            query, [Patient.created_at, Patient.id], args["limit"], args["cursor"]
        )
        now = utcnow()
        for patient in items:
            record(
                "patient.read",
                now=now,
                actor=current_staff(),
                resource_type="patient",
                resource_id=patient.id,
                patient_id=patient.id,
                details={"via": "list"},
            )
        return {"items": items, "next_cursor": cursor}

    @staff_required()
    @blp.arguments(PatientCreateSchema)
    @blp.response(201, PatientSchema)
    @problems(blp, 401, 409)
    def post(self, body: dict[str, Any]) -> Patient:
        """Register a patient at discharge"""
        patient = services.create_patient(current_staff(), body, now=utcnow())
        return patient


@blp.route("/<uuid:patient_id>")
class PatientById(MethodView):
    @staff_required()
    @blp.response(200, PatientSchema)
    @problems(blp, 401, 404)
    def get(self, patient_id: uuid.UUID) -> Patient:
        """One patient of your site"""
        patient = services.get_patient(current_staff(), patient_id)
        record(
            "patient.read",
            now=utcnow(),
            actor=current_staff(),
            resource_type="patient",
            resource_id=patient.id,
            patient_id=patient.id,
        )
        return patient

    @staff_required()
    @blp.arguments(PatientUpdateSchema)
    @blp.response(200, PatientSchema)
    @problems(blp, 401, 404, 409)
    def patch(self, body: dict[str, Any], patient_id: uuid.UUID) -> Patient:
        """Update a patient (a status change needs `status_reason`, as POST .../status)"""
        principal = current_staff()
        patient = services.get_patient(principal, patient_id)
        services.update_patient(principal, patient, body, now=utcnow())
        return patient


@blp.route("/<uuid:patient_id>/status")
class PatientStatus(MethodView):
    @staff_required()
    @blp.arguments(StatusChangeCreateSchema)
    @blp.response(201, StatusChangeSchema)
    @problems(blp, 401, 404, 409)
    def post(self, body: dict[str, Any], patient_id: uuid.UUID) -> Any:
        """Change the patient's status with the reason (paused optionally until a date)"""
        principal = current_staff()
        patient = services.get_patient(principal, patient_id)
        change = lifecycle.change_status(
            principal,
            patient,
            body["status"],
            body["reason"],
            now=utcnow(),
            paused_until=body.get("paused_until"),
        )
        return change

    @staff_required()
    @blp.response(200, StatusHistorySchema)
    @problems(blp, 401, 404)
    def get(self, patient_id: uuid.UUID) -> dict[str, Any]:
        """The patient's status history: from, to, why, who (or the system) and when"""
        patient = services.get_patient(current_staff(), patient_id)
        items = lifecycle.status_history(patient)
        record(
            "patient.status.read",
            now=utcnow(),
            actor=current_staff(),
            resource_type="patient",
            resource_id=patient.id,
            patient_id=patient.id,
        )
        return {"items": items}


@blp.route("/<uuid:patient_id>/consents")
class Consents(MethodView):
    @staff_required()
    @blp.arguments(ConsentCreateSchema)
    @blp.response(201, ConsentSchema)
    @problems(blp, 401, 404)
    def post(self, body: dict[str, Any], patient_id: uuid.UUID) -> Any:
        """Record a consent decision; withdrawing care consent ends the follow-up at once"""
        principal = current_staff()
        patient = services.get_patient(principal, patient_id)
        consent = lifecycle.record_consent(principal, patient, body, now=utcnow())
        return consent

    @staff_required()
    @blp.response(200, ConsentListSchema)
    @problems(blp, 401, 404)
    def get(self, patient_id: uuid.UUID) -> dict[str, Any]:
        """The patient's consent decisions and the current state per purpose"""
        patient = services.get_patient(current_staff(), patient_id)
        record(
            "consent.read",
            now=utcnow(),
            actor=current_staff(),
            resource_type="patient",
            resource_id=patient.id,
            patient_id=patient.id,
        )
        return {"current": lifecycle.consent_state(patient), "items": patient.consents}


@blp.route("/<uuid:patient_id>/procedures")
class Procedures(MethodView):
    @staff_required()
    @blp.arguments(ProcedureCreateSchema)
    @blp.response(201, ProcedureSchema)
    @problems(blp, 401, 404)
    def post(self, body: dict[str, Any], patient_id: uuid.UUID) -> Procedure:
        """Record the procedure and baseline; the follow-up schedule is planned from it"""
        principal = current_staff()
        patient = services.get_patient(principal, patient_id)
        procedure = services.create_procedure(principal, patient, body, now=utcnow())
        db.session.flush()  # the schedule it planned, read back with it
        db.session.refresh(procedure)
        return procedure


@blp.route("/<uuid:patient_id>/procedures/<uuid:procedure_id>")
class ProcedureById(MethodView):
    @staff_required()
    @blp.arguments(ProcedureUpdateSchema)
    @blp.response(200, ProcedureSchema)
    @problems(blp, 401, 404)
    def patch(
        self, body: dict[str, Any], patient_id: uuid.UUID, procedure_id: uuid.UUID
    ) -> Procedure:
        """Correct a procedure; a new discharge date re-plans the unanswered questionnaires"""
        principal = current_staff()
        patient = services.get_patient(principal, patient_id)
        procedure = db.session.get(Procedure, procedure_id)
        if procedure is None or procedure.patient_id != patient.id:
            raise NotFound()
        services.update_procedure(principal, procedure, body, now=utcnow())
        db.session.flush()  # the schedule it planned, read back with it
        db.session.refresh(procedure)
        return procedure


@blp.route("/<uuid:patient_id>/enrollment-codes")
class EnrollmentCodes(MethodView):
    @staff_required()
    @blp.arguments(EnrollmentCodeCreateSchema, required=False)
    @blp.response(201, EnrollmentCodeSchema)
    @problems(blp, 401, 404, 409)
    def post(self, body: dict[str, Any], patient_id: uuid.UUID) -> dict[str, Any]:
        """Issue a single-use enrollment code for the patient's phone (older codes stop working;
        with `revoke_devices` the phones enrolled before are cut off; 409 without care consent)"""
        principal = current_staff()
        patient = services.get_patient(principal, patient_id)
        code, expires_at = services.create_enrollment_code(
            principal, patient, now=utcnow(), revoke_devices=bool(body.get("revoke_devices"))
        )
        return {"code": code, "expires_at": expires_at}


@blp.route("/<uuid:patient_id>/devices")
class Devices(MethodView):
    @staff_required()
    @blp.response(200, EnrolledDeviceListSchema)
    @problems(blp, 401, 404)
    def get(self, patient_id: uuid.UUID) -> dict[str, Any]:
        """The patient's enrolled phones, active and revoked"""
        principal = current_staff()
        patient = services.get_patient(principal, patient_id)
        devices = services.list_devices(principal, patient, now=utcnow())
        return {"items": devices}


@blp.route("/<uuid:patient_id>/devices/<uuid:device_id>/revoke")
class RevokeDevice(MethodView):
    @staff_required()
    @blp.arguments(EmptySchema, required=False)
    @blp.response(200, EnrolledDeviceSchema)
    @problems(blp, 401, 404)
    def post(self, _body: dict[str, Any], patient_id: uuid.UUID, device_id: uuid.UUID) -> Any:
        """Cut a lost phone off: its refresh chain and access tokens stop at once (idempotent)"""
        principal = current_staff()
        patient = services.get_patient(principal, patient_id)
        device = services.revoke_device(
            principal, patient, services.get_device(patient, device_id), now=utcnow()
        )
        return device


@blp.route("/<uuid:patient_id>/responses")
class StaffResponses(MethodView):
    @staff_required()
    @blp.arguments(IdempotencyHeaderSchema, location="headers")
    @blp.arguments(StaffResponseCreateSchema)
    @blp.response(201, StaffResponseCreatedSchema)
    @problems(blp, 401, 404, 409)
    def post(self, headers: dict[str, Any], body: dict[str, Any], patient_id: uuid.UUID) -> Any:
        """Enter a patient's answers after a phone call (source `nurse`; a retry with the same
        Idempotency-Key is safe)"""
        principal = current_staff()
        patient = services.get_patient(principal, patient_id)
        return submit_response(principal, patient, body, headers["idempotency_key"])


@blp.route("/<uuid:patient_id>/timeline")
class Timeline(MethodView):
    @staff_required()
    @blp.response(200, TimelineSchema)
    @problems(blp, 401, 404)
    def get(self, patient_id: uuid.UUID) -> Response:
        """The patient's procedure, baseline, responses with scores, schedule and alerts"""
        principal = current_staff()
        patient = services.get_patient(principal, patient_id)
        now = utcnow()
        timeline = build_timeline(patient, now, staff_locale(principal))
        record(
            "patient.timeline.read",
            now=now,
            actor=current_staff(),
            resource_type="patient",
            resource_id=patient.id,
            patient_id=patient.id,
        )
        # Serialised before the commit, which expires every loaded row: afterwards each
        # response and alert would be read again, one query apiece.
        body = TimelineSchema().dump(timeline)
        return jsonify(body)


def _failed_claim(response: Any) -> bool:
    return bool(response.status_code == 400)


@enrollment_blp.route("/claim")
class Claim(MethodView):
    @limiter.limit(
        lambda: current_app.config["ENROLLMENT_CLAIM_LIMIT"],
        scope="enrollment-claim",
        deduct_when=_failed_claim,
    )
    @enrollment_blp.doc(security=[])
    @enrollment_blp.arguments(ClaimSchema)
    @enrollment_blp.response(201, ClaimResultSchema)
    @problems(enrollment_blp, 400, 429)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Enroll a phone with the code the nurse gave; returns the patient's tokens"""
        try:
            patient, issued = services.claim_enrollment(body["code"], body["device"], now=utcnow())
        except Problem:
            keep_on_error()  # keep the audit row of the failed attempt
            raise
        return {
            "access_token": issued.access_token,
            "refresh_token": issued.refresh_token,
            "token_type": "Bearer",
            "expires_in": issued.expires_in,
            "patient": patient,
        }
