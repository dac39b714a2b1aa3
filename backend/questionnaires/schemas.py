"""Schemas of instruments, assignments and responses."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from backend.pagination import PageArgsSchema
from backend.patients.schemas import AssignmentSchema
from backend.questionnaires.models import ASSIGNMENT_STATUSES


class ResponseCreateSchema(ma.Schema):
    """A completed questionnaire as the phone sends it."""

    assignment_id = fields.UUID(
        required=True,
        allow_none=True,
        metadata={"description": "null for an unscheduled check-in"},
    )
    instrument = fields.String(required=True, validate=validate.Length(min=1, max=32))
    version = fields.Integer(required=True, validate=validate.Range(min=1))
    answered_at = fields.AwareDateTime(
        required=True, metadata={"description": "When the patient answered (RFC 3339, offset)"}
    )
    source = fields.String(required=True, validate=validate.OneOf(("patient", "caregiver")))
    answers = fields.Dict(
        keys=fields.String(), required=True, metadata={"description": "item id -> value"}
    )


class StaffResponseCreateSchema(ResponseCreateSchema):
    """Answers a nurse enters after a phone call; the source is always `nurse`."""

    source = fields.String(load_default="nurse", validate=validate.OneOf(("nurse",)))


class IdempotencyHeaderSchema(ma.Schema):
    class Meta:
        unknown = ma.EXCLUDE

    idempotency_key = fields.UUID(
        data_key="Idempotency-Key",
        required=True,
        metadata={"description": "A UUID chosen by the phone; a retry sends the same one"},
    )


class OptionalIdempotencyHeaderSchema(IdempotencyHeaderSchema):
    idempotency_key = fields.UUID(data_key="Idempotency-Key", load_default=None)


class AdviceSchema(ma.Schema):
    emergency = fields.Boolean()
    message = fields.String(metadata={"description": "Show at once, in the patient's language"})


class ResponseCreatedSchema(ma.Schema):
    id = fields.UUID()
    assignment_id = fields.UUID(allow_none=True)
    answered_at = fields.DateTime()
    received_at = fields.DateTime()
    scores = fields.Dict()
    advice = fields.Method(
        "get_advice",
        metadata={
            "description": "Present when the app must show something at once "
            "(a red flag: call the emergency number)"
        },
    )

    def get_advice(self, obj: Any) -> dict[str, Any] | None:
        from backend.questionnaires.services import advice_for

        return advice_for(obj)


class ResponseSchema(ResponseCreatedSchema):
    instrument = fields.String(attribute="instrument_key")
    version = fields.Integer(attribute="instrument_version")
    day = fields.Integer()
    source = fields.String()
    answers = fields.Dict()


class ResponseListSchema(ma.Schema):
    items = fields.List(fields.Nested(ResponseSchema))
    next_cursor = fields.String(allow_none=True)


class AssignmentListSchema(ma.Schema):
    items = fields.List(fields.Nested(AssignmentSchema))
    next_cursor = fields.String(allow_none=True)


class AssignmentQueryArgsSchema(ma.Schema):
    status = fields.String(validate=validate.OneOf(ASSIGNMENT_STATUSES))


class InstrumentSchema(ma.Schema):
    key = fields.String()
    version = fields.Integer()
    locale = fields.String()
    title = fields.String()
    items = fields.List(fields.Dict())
    scores = fields.List(fields.String())
    licence = fields.String()


__all__ = ["PageArgsSchema"]
