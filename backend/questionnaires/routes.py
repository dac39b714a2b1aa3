"""The phone's endpoints (``/me``) and the instrument definitions."""

from __future__ import annotations

import uuid
from typing import Any

from flask import g, request
from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy.orm import selectinload

from backend.audit.services import record
from backend.auth.guards import authenticate_request, patient_required
from backend.auth.principal import Principal
from backend.clock import utcnow
from backend.errors import NotFound, problems
from backend.extensions import db
from backend.locales import FALLBACK_LOCALE, accepted_locale
from backend.pagination import PageArgsSchema, aware_datetime, paginate, paginate_sorted
from backend.patients import services as patients
from backend.patients.models import Patient
from backend.patients.schemas import DeviceUpdateSchema, MeSchema
from backend.questionnaires import services
from backend.questionnaires.models import Response
from backend.questionnaires.schemas import (
    AssignmentListSchema,
    AssignmentQueryArgsSchema,
    IdempotencyHeaderSchema,
    InstrumentSchema,
    ResponseCreatedSchema,
    ResponseCreateSchema,
    ResponseListSchema,
)

me_blp = Blueprint("me", __name__, url_prefix="/api/v1/me", description="The patient's phone")
instruments_blp = Blueprint(
    "instruments", __name__, url_prefix="/api/v1/instruments", description="Questionnaires"
)


def current_patient() -> Patient:
    """The signed-in patient: the row authentication read (``g.patient``), else read now."""
    principal: Principal = g.principal
    patient: Patient | None = g.get("patient")
    if patient is None or patient.id != principal.id:
        patient = db.session.get(Patient, principal.id)
    if patient is None:
        raise NotFound()
    return patient


@me_blp.route("")
class Me(MethodView):
    @patient_required
    @me_blp.response(200, MeSchema)
    @problems(me_blp, 401)
    def get(self) -> Patient:
        """The patient's own profile"""
        return current_patient()


@me_blp.route("/assignments")
class MyAssignments(MethodView):
    @patient_required
    @me_blp.arguments(AssignmentQueryArgsSchema, location="query")
    @me_blp.response(200, AssignmentListSchema)
    @problems(me_blp, 401)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """The patient's questionnaires, optionally by status"""
        patient = current_patient()
        items = services.list_assignments(patient, utcnow(), args.get("status"))
        page, cursor = paginate_sorted(items, ASSIGNMENT_PAGE_KEYS, args["limit"], args["cursor"])
        return {"items": page, "next_cursor": cursor}


# The order of ``list_assignments``, each key with the way a cursor's string reads back.
ASSIGNMENT_PAGE_KEYS = (("opens_at", aware_datetime), ("id", uuid.UUID))


@me_blp.route("/responses")
class MyResponses(MethodView):
    @patient_required
    @me_blp.arguments(PageArgsSchema, location="query")
    @me_blp.response(200, ResponseListSchema)
    @problems(me_blp, 401)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """The patient's own responses, in answered order"""
        patient = current_patient()
        items, cursor = paginate(
            db.select(Response)
            .filter_by(patient_id=patient.id)
            .options(selectinload(Response.entered_by)),
            [Response.answered_at, Response.id],
            args["limit"],
            args["cursor"],
        )
        return {"items": items, "next_cursor": cursor}

    # Schema instances, not classes: webargs would build a schema (deep copies of its fields)
    # for every answer sent; a schema keeps no state between loads.
    @patient_required
    @me_blp.arguments(IdempotencyHeaderSchema(), location="headers")
    @me_blp.arguments(ResponseCreateSchema())
    @me_blp.response(201, ResponseCreatedSchema)
    @problems(me_blp, 401, 409, 429)
    def post(self, headers: dict[str, Any], body: dict[str, Any]) -> Any:
        """Send a completed questionnaire (a retry with the same Idempotency-Key is safe)"""
        return submit_response(g.principal, current_patient(), body, headers["idempotency_key"])


def submit_response(
    actor: Principal, patient: Patient, body: dict[str, Any], key: uuid.UUID | None
) -> tuple[services.Answered, int, dict[str, str]]:
    """Record a response from a request and commit; shared by the phone's and the nurse's
    endpoints. A replay answers exactly as the first time, and says it is one."""
    result = services.record_response(
        actor,
        patient,
        body,
        now=utcnow(),
        idempotency_key=str(key) if key else None,
        fingerprint=services.request_fingerprint(request.get_json()),
    )
    answered = services.Answered(result.response, services.advice_for(result.response, patient))
    return answered, 201, {"Idempotent-Replayed": "true" if result.replayed else "false"}


@me_blp.route("/device")
class MyDevice(MethodView):
    @patient_required
    @me_blp.arguments(DeviceUpdateSchema)
    @me_blp.response(204)
    @problems(me_blp, 401)
    def put(self, body: dict[str, Any]) -> None:
        """Store the new push token after the OS rotated it"""
        patients.update_device(g.principal, body, now=utcnow())


def _locale(principal: Principal) -> str:
    best = accepted_locale(request.accept_languages)
    if best:
        return best
    if principal.is_patient:
        patient = db.session.get(Patient, principal.id)
        if patient is not None:
            return patient.locale
    return FALLBACK_LOCALE


@instruments_blp.route("/<key:key>")
class InstrumentLatest(MethodView):
    @instruments_blp.response(200, InstrumentSchema)
    @problems(instruments_blp, 401, 404)
    def get(self, key: str) -> dict[str, Any]:
        """The latest version of an instrument, in the requested language"""
        principal = authenticate_request()
        return services.localise(services.get_instrument(key).definition, _locale(principal))


# The version is bounded by its column (2**31 would fail in PostgreSQL, not be missing).
@instruments_blp.route("/<key:key>/versions/<int(min=1, max=2147483647):version>")
class InstrumentVersion(MethodView):
    @instruments_blp.response(200, InstrumentSchema)
    @problems(instruments_blp, 401, 404)
    def get(self, key: str, version: int) -> dict[str, Any]:
        """One version of an instrument, in the requested language"""
        principal = authenticate_request()
        return services.localise(
            services.get_instrument(key, version).definition, _locale(principal)
        )


__all__ = ["instruments_blp", "me_blp", "record"]
