"""Schemas of instruments, assignments and responses."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import validate

from backend import fields
from backend.dumping import CompiledDumpSchema
from backend.pagination import PageArgsSchema
from backend.patients.schemas import AssignmentSchema
from backend.questionnaires.models import ASSIGNMENT_STATUSES, CHANNELS, SOURCES


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
    source = fields.String(
        required=True,
        validate=validate.OneOf(("patient", "caregiver")),
        metadata={"x-enum-name": "PhoneSource"},
    )
    answers = fields.Dict(
        keys=fields.String(), required=True, metadata={"description": "item id -> value"}
    )

    def handle_error(self, error: ma.ValidationError, data: Any, **kwargs: Any) -> None:
        """When another field is refused, the answers' problems are named with it (every bad
        field at once): the service, which checks them on the way in, is never reached.

        On this error path only, and through the service's own reader of the definition (read
        once per process, as every answer does): the one place a schema may read."""
        from backend.questionnaires.services import (
            clean_free_text,
            instrument_definition,
            validate_answers,
        )

        messages = error.messages
        if not isinstance(messages, dict) or not isinstance(data, dict):
            return
        if messages.keys() & {"instrument", "version", "answers"}:
            return
        if not isinstance(data.get("answers"), dict):
            return
        definition = instrument_definition(data["instrument"], data["version"])
        if definition is None:
            return
        answers = clean_free_text(definition, data["answers"])
        for problem in validate_answers(definition, answers):
            item = problem["pointer"].removeprefix("/answers/")
            messages.setdefault("answers", {}).setdefault(item, []).append(problem["detail"])


class StaffResponseCreateSchema(ResponseCreateSchema):
    """Answers a nurse enters after a phone call; the source is always `nurse`."""

    source = fields.String(
        load_default="nurse",
        validate=validate.OneOf(("nurse",)),
        metadata={"x-enum-name": "StaffSource"},
    )


class IdempotencyHeaderSchema(ma.Schema):
    class Meta:
        unknown = ma.EXCLUDE

    idempotency_key = fields.UUID(
        data_key="Idempotency-Key",
        required=True,
        metadata={
            "description": "A UUID chosen by the sender (the phone, the nurse's page) once "
            "per answer; a retry sends the same one and gets the first result back"
        },
    )


class AdviceSchema(ma.Schema):
    emergency = fields.Boolean()
    message = fields.String(metadata={"description": "Show at once, in the patient's language"})


class EnteredBySchema(ma.Schema):
    """Who entered a response, as the patient's phone may see it."""

    kind = fields.String(
        metadata={
            "description": "`patient` (on the phone), `caregiver` (on the patient's phone) "
            "or `nurse` (typed in after a phone call)",
            "enum": list(SOURCES),
            "x-enum-name": "EnteredByKind",
        }
    )
    display_name = fields.String(
        allow_none=True,
        metadata={
            "description": "The name of the staff member who typed it in (the display name "
            "of the account, nothing else of it); null when the patient or a caregiver sent it"
        },
    )
    channel = fields.String(
        metadata={
            "description": "The way it came in: `app` (the phone app), `sms` or `email` (the "
            "web link of a reminder sent that way), `phone` (a nurse during a phone call)",
            "enum": list(CHANNELS),
            "x-enum-name": "AnswerChannel",
        }
    )


class StaffEnteredBySchema(EnteredBySchema):
    """Who entered a response, as the staff of the patient's site see it."""

    user_id = fields.UUID(
        allow_none=True, metadata={"description": "The staff account; null unless `nurse`"}
    )


class _ResponseFields(ma.Schema):
    id = fields.UUID()
    assignment_id = fields.UUID(allow_none=True)
    answered_at = fields.DateTime()
    received_at = fields.DateTime()
    scores = fields.Dict()


class ResponseCreatedSchema(CompiledDumpSchema, _ResponseFields):
    """The phone's answer, as stored (dumped by the compiled plan: ``backend.dumping``; the
    201 of every answer sent)."""

    entered_by = fields.Nested(EnteredBySchema, attribute="attribution")
    advice = fields.Dict(
        allow_none=True,
        metadata={
            "description": "Present when the app must show something at once "
            "(a red flag: call the emergency number)"
        },
    )


class StaffResponseCreatedSchema(ResponseCreatedSchema):
    """The answer a nurse entered, as stored: the advice is what to tell the patient now."""

    entered_by = fields.Nested(StaffEnteredBySchema, attribute="attribution")


class MyResponseSchema(_ResponseFields):
    """One of the patient's own responses (no advice: that was for the moment of sending)."""

    instrument = fields.String(attribute="instrument_key")
    version = fields.Integer(attribute="instrument_version")
    day = fields.Integer()
    source = fields.String()
    answers = fields.Dict()
    entered_by = fields.Nested(EnteredBySchema, attribute="attribution")


class ResponseSchema(MyResponseSchema):
    """A response as the staff of the patient's site see it."""

    entered_by = fields.Nested(StaffEnteredBySchema, attribute="attribution")


class ResponseListSchema(ma.Schema):
    items = fields.List(fields.Nested(MyResponseSchema))
    next_cursor = fields.String(allow_none=True)


class AssignmentListSchema(ma.Schema):
    items = fields.List(fields.Nested(AssignmentSchema))
    next_cursor = fields.String(allow_none=True)


class AssignmentQueryArgsSchema(PageArgsSchema):
    status = fields.String(
        validate=validate.OneOf(ASSIGNMENT_STATUSES), metadata={"x-enum-name": "AssignmentStatus"}
    )


class InstrumentSchema(ma.Schema):
    key = fields.String()
    version = fields.Integer()
    locale = fields.String()
    title = fields.String()
    items = fields.List(fields.Dict())
    scores = fields.List(fields.String())
    licence = fields.String()


__all__ = ["PageArgsSchema"]
