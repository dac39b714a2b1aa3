"""Schemas of the research API: the outcome report, exports, studies and randomisation."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from backend import fields
from backend.patients.models import (
    ANAESTHESIAS,
    BONE_QUALITIES,
    ETIOLOGIES,
    LOCATIONS,
    PROCEDURE_KINDS,
)
from backend.research.services import GROUPS
from backend.research.stats import MASK, OUTCOMES


class MaskedCount(fields.Raw):
    """A count of patients, or "<5" when 1 to 4 (research.md: never a number that could single
    someone out)."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(
            metadata={
                "oneOf": [{"type": "integer", "minimum": 0}, {"type": "string", "enum": [MASK]}],
                "description": 'A number of patients; "<5" when 1 to 4.',
            },
            **kwargs,  # type: ignore[arg-type]
        )


class OutcomeQueryArgsSchema(ma.Schema):
    group = fields.String(
        load_default="kind",
        validate=validate.OneOf(GROUPS),
        metadata={"x-enum-name": "ResearchGroup"},
    )
    outcome = fields.String(
        load_default="pain_walking",
        validate=validate.OneOf(OUTCOMES),
        metadata={
            "description": "Outcome of the cement alone vs cement plus screws comparison",
            "x-enum-name": "ResearchOutcome",
        },
    )
    kind = fields.String(
        validate=validate.OneOf(PROCEDURE_KINDS), metadata={"x-enum-name": "ProcedureKind"}
    )
    etiology = fields.String(validate=validate.OneOf(ETIOLOGIES))
    location = fields.String(validate=validate.OneOf(LOCATIONS))
    bone_quality = fields.String(validate=validate.OneOf(BONE_QUALITIES))
    anaesthesia = fields.String(validate=validate.OneOf(ANAESTHESIAS))
    arm = fields.String(validate=validate.Length(min=1, max=64))
    age_band = fields.String(validate=validate.OneOf(("<75", "75-84", "85+")))


class MeanSchema(ma.Schema):
    n = MaskedCount()
    mean = fields.Float(allow_none=True)
    low = fields.Float(allow_none=True, metadata={"description": "95 % CI (t distribution)"})
    high = fields.Float(allow_none=True)


class ProportionSchema(ma.Schema):
    k = MaskedCount()
    n = MaskedCount()
    share = fields.Float(allow_none=True)
    low = fields.Float(allow_none=True, metadata={"description": "95 % Wilson interval"})
    high = fields.Float(allow_none=True)


class OutcomeEstimateSchema(ma.Schema):
    value = fields.Nested(MeanSchema)
    change = fields.Nested(MeanSchema, metadata={"description": "Change from baseline"})


class TimePointSchema(ma.Schema):
    time_point = fields.String()
    target_day = fields.Integer()
    window = fields.List(fields.Integer())
    completeness = fields.Nested(ProportionSchema, metadata={"description": "answered/expected"})
    outcomes = fields.Dict(keys=fields.String(), values=fields.Nested(OutcomeEstimateSchema))
    responders = fields.Nested(
        ProportionSchema,
        metadata={"description": "Walking pain improved by >= 2 points and >= 30 %"},
    )


class CurvePointSchema(ma.Schema):
    day = fields.Integer()
    at_risk = MaskedCount()
    events = MaskedCount()
    estimate = fields.Float(allow_none=True)
    low = fields.Float(allow_none=True)
    high = fields.Float(allow_none=True)


class SurvivalSchema(ma.Schema):
    kaplan_meier = fields.List(
        fields.Nested(CurvePointSchema),
        metadata={"description": "Free of confirmed loosening or revision (deaths censored)"},
    )
    cumulative_incidence = fields.List(
        fields.Nested(CurvePointSchema),
        metadata={"description": "Aalen-Johansen, death as a competing event"},
    )


class GroupReportSchema(ma.Schema):
    value = fields.String()
    patients = MaskedCount()
    time_points = fields.List(fields.Nested(TimePointSchema))
    events = fields.Dict(keys=fields.String(), values=MaskedCount())
    loosening_or_revision = fields.Nested(SurvivalSchema, allow_none=True)


class OverallSchema(ma.Schema):
    time_points = fields.List(fields.Nested(TimePointSchema))
    events = fields.Dict(keys=fields.String(), values=MaskedCount())
    loosening_or_revision = fields.Nested(SurvivalSchema, allow_none=True)


class DifferenceSchema(ma.Schema):
    time_point = fields.String()
    n_a = MaskedCount()
    n_b = MaskedCount()
    difference = fields.Float(allow_none=True, metadata={"description": "mean change b - a"})
    low = fields.Float(allow_none=True, metadata={"description": "95 % CI (Welch)"})
    high = fields.Float(allow_none=True)


class SubgroupDifferenceSchema(ma.Schema):
    variable = fields.String()
    value = fields.String()
    time_points = fields.List(fields.Nested(DifferenceSchema))


class ComparisonSchema(ma.Schema):
    a = fields.String()
    b = fields.String()
    outcome = fields.String()
    overall = fields.List(fields.Nested(DifferenceSchema))
    subgroups = fields.List(fields.Nested(SubgroupDifferenceSchema))


class OutcomeReportSchema(ma.Schema):
    generated_at = fields.DateTime()
    group = fields.String()
    filters = fields.Dict(keys=fields.String(), values=fields.String())
    patients = MaskedCount()
    groups = fields.List(fields.Nested(GroupReportSchema))
    overall = fields.Nested(OverallSchema, allow_none=True)
    comparison = fields.Nested(ComparisonSchema)


class ExportFileSchema(ma.Schema):
    name = fields.String()
    sha256 = fields.String()
    url = fields.String(metadata={"description": "Download (GET, same authorisation)"})


class ExportSchema(ma.Schema):
    id = fields.UUID()
    status = fields.String(
        metadata={"enum": ["pending", "running", "done", "failed"], "x-enum-name": "ExportStatus"}
    )
    created_at = fields.DateTime()
    started_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)
    error = fields.String(allow_none=True)
    requested_by_role = fields.String()
    files = fields.List(fields.Nested(ExportFileSchema), metadata={"description": "When done"})
    manifest = fields.Dict(allow_none=True)


KEY = validate.Regexp(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class StudyCreateSchema(ma.Schema):
    key = fields.String(required=True, validate=KEY)
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    arms = fields.List(fields.String(validate=KEY), required=True)
    strata = fields.Dict(
        keys=fields.String(validate=KEY),
        values=fields.List(fields.String(validate=KEY)),
        load_default=dict,
        metadata={"example": {"etiology": ["osteoporotic", "neoplastic"]}},
    )
    block_sizes = fields.List(
        fields.Integer(),
        load_default=lambda: [2, 4],
        metadata={"description": "Block totals, multiples of the number of arms"},
    )
    list_length = fields.Integer(load_default=400, validate=validate.Range(min=10, max=5000))


class StratumBalanceSchema(ma.Schema):
    stratum = fields.String()
    randomised = fields.Integer()
    arms_in_completed_blocks = fields.Dict(keys=fields.String(), values=fields.Integer())
    in_block_in_progress = fields.Integer(
        metadata={"description": "Randomised in the block in progress (arms not shown)"}
    )


class StudySchema(ma.Schema):
    id = fields.UUID()
    key = fields.String()
    title = fields.String()
    arms = fields.List(fields.String())
    strata = fields.Dict(keys=fields.String(), values=fields.List(fields.String()))
    block_sizes = fields.List(fields.Integer())
    seed_sha256 = fields.String()
    created_at = fields.DateTime()
    balance = fields.List(fields.Nested(StratumBalanceSchema))


class RandomiseSchema(ma.Schema):
    patient_id = fields.UUID(required=True)
    strata = fields.Dict(keys=fields.String(), values=fields.String(), load_default=dict)


class AllocationSchema(ma.Schema):
    study_id = fields.UUID()
    patient_id = fields.UUID()
    stratum = fields.String()
    arm = fields.String()
    allocated_at = fields.DateTime()
    first_time = fields.Boolean(
        metadata={"description": "False when the patient had already been randomised"}
    )
