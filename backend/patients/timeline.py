"""The patient's timeline: procedure, baseline, responses in answered order, schedule, alerts.

Other domains add their sections through the ``patient_timeline`` signal (``backend.signals``):
the alert engine adds ``alerts``. This module sends the signal and never imports them; an
application in which nobody answers it refuses to start, so a section cannot silently stay
empty.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import current_app

from backend import fields, signals
from backend.dumping import CompiledDumpSchema
from backend.patients.models import Patient
from backend.patients.schemas import AssignmentSchema, PatientSchema, ProcedureSchema
from backend.questionnaires.schemas import ResponseSchema
from backend.questionnaires.services import list_responses

# The sections other domains contribute; each must come back from the signal.
CONTRIBUTED = ("alerts",)


class TimelineSchema(CompiledDumpSchema):
    """A year of answers and schedule a request, dumped by the compiled plan
    (``backend.dumping``)."""

    patient = fields.Nested(PatientSchema)
    procedure = fields.Nested(ProcedureSchema, allow_none=True)
    procedures = fields.List(fields.Nested(ProcedureSchema))
    responses = fields.List(
        fields.Nested(ResponseSchema),
        metadata={"description": "Every response in answered order, each with who entered it"},
    )
    schedule = fields.List(fields.Nested(AssignmentSchema))
    # By name: the alerts domain declares the schema of the section it contributes.
    alerts = fields.List(
        fields.Nested("AlertSchema"),
        metadata={
            "description": "The patient's alerts, oldest first, resolved ones included; "
            "summaries in the caller's language"
        },
    )


def build_timeline(patient: Patient, now: datetime, locale: str) -> dict[str, Any]:
    """The timeline in a bounded number of queries, whatever the length of the history."""
    # Every questionnaire belongs to one of the patient's procedures, whose schedules came with
    # them (``Procedure.schedule``, loaded with the patient): the patient's schedule is theirs
    # together, not read a second time.
    schedule = sorted(
        (a for procedure in patient.procedures for a in procedure.schedule),
        key=lambda a: a.opens_at,
    )
    timeline: dict[str, Any] = {
        "patient": patient,
        "procedure": patient.current_procedure,
        "procedures": patient.procedures,
        "responses": list_responses(patient.id),
        "schedule": schedule,
    }
    for _receiver, sections in signals.patient_timeline.send(
        current_app._get_current_object(),  # type: ignore[attr-defined]
        patient=patient,
        now=now,
        locale=locale,
    ):
        timeline.update(sections)
    missing = [name for name in CONTRIBUTED if name not in timeline]
    if missing:
        raise RuntimeError(f"No receiver of patient_timeline gave: {', '.join(missing)}")
    return timeline
