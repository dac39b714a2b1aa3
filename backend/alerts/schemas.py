"""Schemas of alerts, triage actions and the rule-quality report."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from backend import fields
from backend.alerts.models import ALERT_STATUSES, OUTCOMES
from backend.alerts.rules import ALERT_KINDS, SEVERITIES


class AlertQueryArgsSchema(ma.Schema):
    status = fields.String(
        validate=validate.OneOf(ALERT_STATUSES), metadata={"x-enum-name": "AlertStatus"}
    )
    severity = fields.String(validate=validate.OneOf(SEVERITIES))
    kind = fields.String(
        validate=validate.OneOf(ALERT_KINDS), metadata={"x-enum-name": "AlertKind"}
    )
    patient_id = fields.UUID()
    limit = fields.QueryInteger(load_default=50, validate=validate.Range(min=1, max=200))
    cursor = fields.String(load_default=None, validate=validate.Length(max=512))


class PatientRefSchema(ma.Schema):
    id = fields.UUID()
    mrn = fields.String()
    given_name = fields.String()
    family_name = fields.String()


class UserRefSchema(ma.Schema):
    id = fields.UUID()
    full_name = fields.String()
    email = fields.String()


class RuleRefSchema(ma.Schema):
    key = fields.String()
    version = fields.Integer()


class AlertSchema(ma.Schema):
    id = fields.UUID()
    patient = fields.Nested(PatientRefSchema)
    kind = fields.String()
    severity = fields.String()
    status = fields.String()
    overdue = fields.Boolean()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    due_at = fields.DateTime()
    summary = fields.String(
        metadata={
            "description": "One sentence in the caller's language: the staff member's "
            "own `locale`, else the best of `Accept-Language` among `fr` and `en`, else the "
            "site's language"
        }
    )
    rule = fields.Nested(RuleRefSchema)
    evidence = fields.Dict()
    acknowledged_by = fields.Nested(UserRefSchema, allow_none=True)
    acknowledged_at = fields.DateTime(allow_none=True)
    resolved_by = fields.Nested(UserRefSchema, allow_none=True)
    resolved_at = fields.DateTime(allow_none=True)
    outcome = fields.String(allow_none=True)


class NoteSchema(ma.Schema):
    id = fields.UUID()
    author = fields.Nested(UserRefSchema)
    text = fields.String()
    created_at = fields.DateTime()


class HistoryEntrySchema(ma.Schema):
    action = fields.String()
    actor = fields.Nested(UserRefSchema, allow_none=True)
    occurred_at = fields.DateTime()
    details = fields.Dict()


class AlertDetailSchema(AlertSchema):
    notes = fields.List(fields.Nested(NoteSchema))
    history = fields.List(fields.Nested(HistoryEntrySchema))


class AlertListSchema(ma.Schema):
    items = fields.List(fields.Nested(AlertSchema))
    next_cursor = fields.String(allow_none=True)


class ResolveSchema(ma.Schema):
    outcome = fields.String(required=True, validate=validate.OneOf(OUTCOMES))
    note = fields.String(load_default=None, validate=validate.Length(min=1, max=4000))


class NoteCreateSchema(ma.Schema):
    text = fields.String(required=True, validate=validate.Length(min=1, max=4000))


class RuleReportRowSchema(ma.Schema):
    rule = fields.Nested(RuleRefSchema)
    alerts = fields.Integer()
    resolved = fields.Integer()
    outcomes = fields.Dict(keys=fields.String(), values=fields.Integer())
    false_alarm_share = fields.Float(allow_none=True)
    imaging_ordered = fields.Integer()
    loosening_confirmed = fields.Integer()
    revision_planned = fields.Integer()
    median_seconds_to_acknowledge = fields.Float(allow_none=True)


class RuleComparisonRowSchema(ma.Schema):
    candidate_version = fields.Integer()
    active_versions = fields.List(fields.Integer())
    kind = fields.String()
    patients_candidate = fields.Integer(metadata={"description": "would have been alerted"})
    patients_active = fields.Integer(metadata={"description": "alerted by the active version"})
    patients_both = fields.Integer()
    candidate_only = fields.Integer()
    active_only = fields.Integer()
    median_lead_days = fields.Float(
        allow_none=True,
        metadata={"description": "candidate earlier (positive) or later, on patients both flag"},
    )
    outcomes_candidate_agreed = fields.Dict(keys=fields.String(), values=fields.Integer())
    outcomes_candidate_silent = fields.Dict(keys=fields.String(), values=fields.Integer())


class RuleReportSchema(ma.Schema):
    items = fields.List(fields.Nested(RuleReportRowSchema))
    comparison = fields.List(
        fields.Nested(RuleComparisonRowSchema),
        metadata={"description": "shadow candidate versions against the alerts raised"},
    )


class RuleVersionChangeSchema(ma.Schema):
    active_version = fields.Integer()
    candidate_version = fields.Integer(allow_none=True)
    set_at = fields.DateTime()
    set_by = fields.Nested(UserRefSchema, allow_none=True)
    reason = fields.String(allow_none=True)


class RuleVersionsSchema(ma.Schema):
    active_version = fields.Integer()
    candidate_version = fields.Integer(allow_none=True)
    available_versions = fields.List(fields.Integer())
    history = fields.List(fields.Nested(RuleVersionChangeSchema))


class RuleVersionsUpdateSchema(ma.Schema):
    active_version = fields.Integer(required=True, strict=True)
    candidate_version = fields.Integer(load_default=None, allow_none=True, strict=True)
    reason = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=1000))
