"""The patient's timeline: procedure, baseline, responses in answered order, schedule, alerts.

Other domains add sections (the alert engine adds ``alerts``) through ``timeline_sections``, so
this module does not depend on them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import marshmallow as ma
from marshmallow import fields

from backend.extensions import db
from backend.patients.models import Patient
from backend.patients.schemas import AssignmentSchema, PatientSchema, ProcedureSchema
from backend.questionnaires.models import Assignment
from backend.questionnaires.schemas import ResponseSchema
from backend.questionnaires.services import list_responses

TimelineSection = Callable[[Patient, datetime], tuple[str, list[dict[str, Any]]]]
timeline_sections: list[TimelineSection] = []


class TimelineSchema(ma.Schema):
    patient = fields.Nested(PatientSchema)
    procedure = fields.Nested(ProcedureSchema, allow_none=True)
    procedures = fields.List(fields.Nested(ProcedureSchema))
    responses = fields.List(fields.Nested(ResponseSchema))
    schedule = fields.List(fields.Nested(AssignmentSchema))
    alerts = fields.List(fields.Dict(), metadata={"description": "The patient's alerts"})


def build_timeline(patient: Patient, now: datetime) -> dict[str, Any]:
    schedule = db.session.execute(
        db.select(Assignment).filter_by(patient_id=patient.id).order_by(Assignment.opens_at)
    ).scalars()
    timeline: dict[str, Any] = {
        "patient": patient,
        "procedure": patient.current_procedure,
        "procedures": patient.procedures,
        "responses": list_responses(patient.id),
        "schedule": list(schedule),
        "alerts": [],
    }
    for section in timeline_sections:
        name, items = section(patient, now)
        timeline[name] = items
    return timeline
