"""Schemas of alerts, triage actions and the rule-quality report."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from backend import fields
from backend.alerts.models import ALERT_STATUSES, OUTCOMES
from backend.alerts.rules import ALERT_KINDS, SEVERITIES
from backend.dumping import CompiledDumpSchema


class AlertQueryArgsSchema(ma.Schema):
    status = fields.String(
        validate=validate.OneOf(ALERT_STATUSES), metadata={"x-enum-name": "AlertStatus"}
    )
    severity = fields.String(validate=validate.OneOf(SEVERITIES))
    kind = fields.String(
        validate=validate.OneOf(ALERT_KINDS), metadata={"x-enum-name": "AlertKind"}
    )
    patient_id = fields.UUID()
    owner = fields.String(
        validate=validate.OneOf(("me", "none")),
        metadata={"description": "`me`: the caller's alerts; `none`: the shared queue's"},
    )
    snoozed = fields.Boolean(
        load_default=False,
        metadata={"description": "true: only the alerts snoozed until later (else left out)"},
    )
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
    owner = fields.Nested(
        UserRefSchema, allow_none=True, metadata={"description": "null: the shared queue"}
    )
    owned_since = fields.DateTime(allow_none=True)
    snoozed = fields.Boolean(metadata={"description": "put aside until `snoozed_until`"})
    back_from_snooze = fields.Boolean(
        metadata={"description": "its snooze is over: at the top of its severity until acted on"}
    )
    snoozed_until = fields.DateTime(allow_none=True)
    snooze_reason = fields.String(allow_none=True)
    new = fields.Boolean(metadata={"description": "nobody of the team has opened it yet"})
    seen_at = fields.DateTime(allow_none=True)
    seen_by = fields.Nested(UserRefSchema, allow_none=True)


class CallSchema(ma.Schema):
    result = fields.String(metadata={"description": "`no_answer` or `spoke`"})
    attempt = fields.Integer()
    by = fields.Nested(UserRefSchema, allow_none=True)
    at = fields.DateTime()


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
    calls = fields.List(fields.Nested(CallSchema))


class AlertListSchema(CompiledDumpSchema):
    """The queue: 50 to 200 alerts a request, dumped by the compiled plan (``backend.dumping``)."""

    items = fields.List(fields.Nested(AlertSchema))
    next_cursor = fields.String(allow_none=True)


class ResolveSchema(ma.Schema):
    outcome = fields.String(required=True, validate=validate.OneOf(OUTCOMES))
    note = fields.String(load_default=None, validate=validate.Length(min=1, max=4000))


REASON = validate.Length(min=1, max=1000)


class OwnerSchema(ma.Schema):
    user_id = fields.UUID(
        load_default=None,
        metadata={"description": "the nurse of the site to give it to; absent: the caller"},
    )
    expected_owner_id = fields.UUID(
        load_default=None,
        allow_none=True,
        metadata={
            "description": "the owner the caller saw (null: nobody); 409 when it changed since"
        },
    )


class SnoozeSchema(ma.Schema):
    until = fields.AwareDateTime(required=True)
    reason = fields.String(required=True, validate=REASON)


class TargetSchema(ma.Schema):
    due_at = fields.AwareDateTime(required=True)
    reason = fields.String(required=True, validate=REASON)


class CallCreateSchema(ma.Schema):
    result = fields.String(required=True, validate=validate.OneOf(("no_answer", "spoke")))
    note = fields.String(load_default=None, validate=validate.Length(min=1, max=4000))


class BulkAcknowledgeSchema(ma.Schema):
    alert_ids = fields.List(
        fields.UUID(),
        required=True,
        validate=validate.Length(min=1, max=100),
        metadata={"description": "exactly the alerts the nurse selected (no 'all')"},
    )
    comment = fields.String(required=True, validate=validate.Length(min=1, max=4000))

    @ma.validates("alert_ids")
    def _distinct(self, value: list[object], **_: object) -> None:
        if len(set(value)) != len(value):
            raise ma.ValidationError("names an alert twice")


class AlertStateSchema(ma.Schema):
    id = fields.UUID()
    status = fields.String()


class BulkAcknowledgeResultSchema(ma.Schema):
    acknowledged = fields.List(fields.Nested(AlertSchema))
    unchanged = fields.List(
        fields.Nested(AlertStateSchema),
        metadata={"description": "already acknowledged or resolved by someone: left as they are"},
    )


class HandoverNoteSchema(ma.Schema):
    id = fields.UUID()
    author = fields.Nested(UserRefSchema)
    text = fields.String()
    created_at = fields.DateTime()
    read_by = fields.Nested(UserRefSchema, allow_none=True)
    read_at = fields.DateTime(allow_none=True)


class HandoverNoteCreateSchema(ma.Schema):
    text = fields.String(required=True, validate=validate.Length(min=1, max=4000))


class OpenCountSchema(ma.Schema):
    severity = fields.String()
    open = fields.Integer()
    acknowledged = fields.Integer()


class HandoverSchema(ma.Schema):
    since = fields.DateTime(metadata={"description": "the start of the caller's last shift"})
    open = fields.List(fields.Nested(OpenCountSchema))
    overdue = fields.List(fields.Nested(AlertSchema))
    mine = fields.List(fields.Nested(AlertSchema))
    snoozed = fields.List(fields.Nested(AlertSchema), metadata={"description": "by return time"})
    new = fields.List(fields.Nested(AlertSchema))
    notes = fields.List(fields.Nested(HandoverNoteSchema))


class TeamMetricsArgsSchema(ma.Schema):
    weeks = fields.QueryInteger(load_default=12, validate=validate.Range(min=1, max=52))


class SeverityMetricsSchema(ma.Schema):
    severity = fields.String()
    alerts = fields.Integer()
    acknowledged = fields.Integer()
    median_seconds_to_acknowledge = fields.Float(allow_none=True)
    p90_seconds_to_acknowledge = fields.Float(allow_none=True)
    resolved = fields.Integer()
    median_seconds_to_resolve = fields.Float(allow_none=True)
    p90_seconds_to_resolve = fields.Float(allow_none=True)
    overdue_share = fields.Float(allow_none=True)


class RateSchema(ma.Schema):
    kind = fields.String()
    rule_version = fields.Integer()
    alerts = fields.Integer()
    per_100_patient_weeks = fields.Float(allow_none=True)


class PeriodMetricsSchema(ma.Schema):
    alerts = fields.Integer()
    patient_weeks = fields.Float()
    by_severity = fields.List(fields.Nested(SeverityMetricsSchema))
    rates = fields.List(fields.Nested(RateSchema))
    false_alarm_share = fields.Float(allow_none=True)


class WeekMetricsSchema(PeriodMetricsSchema):
    week_start = fields.DateTime()


class TeamMetricsSchema(ma.Schema):
    since = fields.DateTime()
    until = fields.DateTime()
    weeks = fields.List(fields.Nested(WeekMetricsSchema))
    totals = fields.Nested(PeriodMetricsSchema)


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
