"""Read and search in the care scope: which rows a reader may see, the search parameters, and
keyset paging (by id, so a page stays right while rows arrive and deep pages cost the same).

Every query is bounded by the reader's site; another site's id answers 404 exactly like one
that does not exist. Presenting a page costs a fixed number of queries (definitions, staff
names, consent decisions, procedures are loaded per page, never per resource).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from backend.alerts.models import Alert
from backend.auth.models import Site, User
from backend.extensions import db
from backend.fhir import mapping
from backend.fhir.errors import FhirError
from backend.patients.models import Consent, Patient, Procedure
from backend.questionnaires.models import Instrument, Response
from backend.research.models import Allocation, Study

DEFAULT_COUNT, MAX_COUNT = 50, 200
COMMON = {"_id", "_lastUpdated", "_count", "_cursor", "_format"}
PREFIXES = {"gt": sa.Column.__gt__, "ge": sa.Column.__ge__, "lt": sa.Column.__lt__,
            "le": sa.Column.__le__}  # fmt: skip
Presented = list[tuple[dict[str, Any], uuid.UUID | None]]


@dataclass
class TypeDef:
    """One resource type served from a table of ours."""

    name: str
    select: Callable[[uuid.UUID], sa.Select[Any]]
    id_col: Any
    updated_col: Any
    present: Callable[[Sequence[Any], mapping.View], Presented]
    patient_col: Any = None
    params: set[str] = field(default_factory=set)
    filters: Mapping[str, Callable[[sa.Select[Any], str], sa.Select[Any]]] = field(
        default_factory=dict
    )


# --- per type: rows of a site, and their presentation --------------------------------------------


def _definitions() -> dict[tuple[str, int], dict[str, Any]]:
    return {
        (i.key, i.version): i.definition
        for i in db.session.execute(db.select(Instrument)).scalars()
    }


def staff_names(ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not ids:
        return {}
    rows = db.session.execute(sa.select(User.id, User.full_name).where(User.id.in_(ids)))
    return {uid: (name or "nurse") for uid, name in rows}


def _present_patients(rows: Sequence[Any], view: mapping.View) -> Presented:
    return [(mapping.patient(p, view), p.id) for p in rows]


def _present_procedures(rows: Sequence[Any], view: mapping.View) -> Presented:
    return [(mapping.procedure(p, view), p.patient_id) for p in rows]


def _present_responses(rows: Sequence[Any], view: mapping.View) -> Presented:
    definitions = _definitions()
    return [
        (
            mapping.questionnaire_response(
                r,
                view,
                definitions.get((r.instrument_key, r.instrument_version)),
                entered_by_name=(r.entered_by.full_name or None) if r.entered_by else None,
            ),
            r.patient_id,
        )
        for r in rows
    ]


def _present_impressions(rows: Sequence[Any], view: mapping.View) -> Presented:
    return [(mapping.clinical_impression(a, view), a.patient_id) for a in rows]


def alert_staff(alerts: Sequence[Alert]) -> set[uuid.UUID]:
    ids = {a.acknowledged_by_id for a in alerts} | {a.resolved_by_id for a in alerts}
    ids |= {n.author_id for a in alerts for n in a.notes}
    return {i for i in ids if i is not None}


def _present_tasks(rows: Sequence[Any], view: mapping.View) -> Presented:
    names = staff_names(alert_staff(rows))
    return [(mapping.task(a, view, staff_names=names), a.patient_id) for a in rows]


def _present_consents(rows: Sequence[Any], view: mapping.View) -> Presented:
    """Rows are ``given`` decisions; the withdrawal that ended each is looked up once."""
    patient_ids = {c.patient_id for c in rows}
    decisions: dict[uuid.UUID, list[Consent]] = {}
    for c in db.session.execute(
        db.select(Consent)
        .where(Consent.patient_id.in_(patient_ids))
        .order_by(Consent.decided_on, Consent.recorded_at, Consent.id)
    ).scalars():
        decisions.setdefault(c.patient_id, []).append(c)
    wanted = {c.id for c in rows}
    out: Presented = []
    for pid in sorted(patient_ids):
        for resource in mapping.consents(pid, decisions.get(pid, []), view):
            if uuid.UUID(resource["id"]) in wanted:
                out.append((resource, pid))
    order = {c.id: i for i, c in enumerate(rows)}
    return sorted(out, key=lambda pair: order[uuid.UUID(pair[0]["id"])])


def _present_studies(rows: Sequence[Any], view: mapping.View) -> Presented:
    return [(mapping.research_study(s, view), None) for s in rows]


def actual_arms(patient_ids: set[uuid.UUID]) -> dict[uuid.UUID, str | None]:
    """The study arm recorded on each patient's latest procedure (what was performed)."""
    arms: dict[uuid.UUID, str | None] = {}
    for pid, arm in db.session.execute(
        sa.select(Procedure.patient_id, Procedure.study_arm)
        .where(Procedure.patient_id.in_(patient_ids))
        .order_by(Procedure.discharged_on, Procedure.created_at)
    ):
        arms[pid] = arm
    return arms


def _present_subjects(rows: Sequence[Any], view: mapping.View) -> Presented:
    arms = actual_arms({a.patient_id for a in rows})
    return [
        (mapping.research_subject(a, view, actual_arm=arms.get(a.patient_id)), a.patient_id)
        for a in rows
    ]


def _identifier_filter(query: sa.Select[Any], value: str) -> sa.Select[Any]:
    system, bar, mrn = value.rpartition("|")
    if not bar:
        return query.where(Patient.mrn == value)
    site_code = system.rstrip("/").rsplit("/", 1)[-1]
    return query.join(Site, Site.id == Patient.site_id).where(
        Patient.mrn == mrn, Site.code == site_code
    )


def _alerts(site_id: uuid.UUID) -> sa.Select[Any]:
    return sa.select(Alert).options(selectinload(Alert.notes)).where(Alert.site_id == site_id)


TYPES: dict[str, TypeDef] = {
    "Patient": TypeDef(
        "Patient",
        lambda site: db.select(Patient).where(Patient.site_id == site),
        Patient.id,
        Patient.updated_at,
        _present_patients,
        params={"identifier"},
        filters={"identifier": _identifier_filter},
    ),
    "Procedure": TypeDef(
        "Procedure",
        lambda site: db.select(Procedure).where(Procedure.site_id == site),
        Procedure.id,
        Procedure.created_at,
        _present_procedures,
        Procedure.patient_id,
    ),
    "QuestionnaireResponse": TypeDef(
        "QuestionnaireResponse",
        lambda site: (
            db.select(Response)
            .options(selectinload(Response.entered_by))
            .join(Patient, Patient.id == Response.patient_id)
            .where(Patient.site_id == site)
        ),
        Response.id,
        Response.received_at,
        _present_responses,
        Response.patient_id,
    ),
    "ClinicalImpression": TypeDef(
        "ClinicalImpression",
        _alerts,
        Alert.id,
        Alert.updated_at,
        _present_impressions,
        Alert.patient_id,
    ),
    "Task": TypeDef("Task", _alerts, Alert.id, Alert.updated_at, _present_tasks, Alert.patient_id),
    "Consent": TypeDef(
        "Consent",
        lambda site: (
            db.select(Consent)
            .join(Patient, Patient.id == Consent.patient_id)
            .where(Patient.site_id == site, Consent.decision == "given")
        ),
        Consent.id,
        Consent.recorded_at,
        _present_consents,
        Consent.patient_id,
    ),
    "ResearchStudy": TypeDef(
        "ResearchStudy",
        lambda site: db.select(Study).where(Study.site_id == site),
        Study.id,
        Study.created_at,
        _present_studies,
    ),
    "ResearchSubject": TypeDef(
        "ResearchSubject",
        # Only slots a physician has filled: an empty slot is the concealed allocation list.
        lambda site: (
            db.select(Allocation)
            .join(Study, Study.id == Allocation.study_id)
            .where(Study.site_id == site, Allocation.patient_id.is_not(None))
        ),
        Allocation.id,
        Allocation.allocated_at,
        _present_subjects,
        Allocation.patient_id,
    ),
}
DEFINITION_TYPES = ("Questionnaire", "CodeSystem")
SERVED_TYPES = (*TYPES, *DEFINITION_TYPES)


def allowed_params(name: str) -> set[str]:
    if name == "Questionnaire":
        return COMMON | {"url", "version"}
    if name == "CodeSystem":
        return COMMON | {"url"}
    typedef = TYPES[name]
    return COMMON | typedef.params | ({"patient"} if typedef.patient_col is not None else set())


# --- parameters ----------------------------------------------------------------------------------


def parse_uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def parse_instant(value: str, name: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise FhirError(
            400, f"{name}: {value!r} is not a FHIR instant with a time zone.", expression=[name]
        )
    return parsed


@dataclass
class Params:
    ids: list[str] = field(default_factory=list)
    patients: list[str] = field(default_factory=list)
    updated: list[tuple[str, datetime]] = field(default_factory=list)
    count: int = DEFAULT_COUNT
    cursor: str | None = None
    others: dict[str, str] = field(default_factory=dict)


def parse_params(name: str, args: Any, *, lenient: bool) -> Params:
    """The search parameters of ``args`` (a MultiDict); 400 naming each unknown or bad one
    (``Prefer: handling=lenient`` ignores the unknown ones, as FHIR search allows)."""
    allowed = allowed_params(name)
    unknown = sorted({k for k in args if k not in allowed})
    if unknown and not lenient:
        raise FhirError(
            400,
            f"Unknown or unsupported search parameters for {name}: {', '.join(unknown)}. "
            f"Supported: {', '.join(sorted(allowed))}.",
            expression=unknown,
        )
    params = Params()
    for key in args:
        if key not in allowed:
            continue
        values = args.getlist(key)
        if key == "_id":
            params.ids = [v for value in values for v in value.split(",") if v]
        elif key == "patient":
            params.patients = [
                v.removeprefix("Patient/") for value in values for v in value.split(",") if v
            ]
        elif key == "_lastUpdated":
            for value in values:
                prefix, rest = (value[:2], value[2:]) if value[:2] in PREFIXES else ("eq", value)
                if prefix == "eq":
                    raise FhirError(
                        400,
                        "_lastUpdated takes a prefix gt, ge, lt or le (an instant is never "
                        "equal to a stored time to the microsecond).",
                        expression=["_lastUpdated"],
                    )
                params.updated.append((prefix, parse_instant(rest, "_lastUpdated")))
        elif key == "_count":
            try:
                count = int(values[-1])
            except ValueError:
                count = -1
            if not 0 < count <= MAX_COUNT:
                raise FhirError(
                    400, f"_count must be an integer from 1 to {MAX_COUNT}.", expression=["_count"]
                )
            params.count = count
        elif key == "_cursor":
            if parse_uuid(values[-1]) is None:
                raise FhirError(400, "_cursor is not a cursor of ours.", expression=["_cursor"])
            params.cursor = values[-1]
        elif key == "_format":
            if values[-1] not in {"json", "application/json", "application/fhir+json"}:
                raise FhirError(406, "Only JSON is served (_format=json).")
        else:
            params.others[key] = values[-1]
    return params


# --- running a search ----------------------------------------------------------------------------


def search(typedef: TypeDef, site_id: uuid.UUID, params: Params) -> tuple[list[Any], str | None]:
    """One page of rows (ordered by id) and the cursor of the next page, if any."""
    query = typedef.select(site_id)
    if params.ids:
        ids = [i for i in (parse_uuid(v) for v in params.ids) if i is not None]
        query = query.where(typedef.id_col.in_(ids))
    if params.patients:
        pids = [i for i in (parse_uuid(v) for v in params.patients) if i is not None]
        query = query.where(typedef.patient_col.in_(pids))
    for prefix, value in params.updated:
        query = query.where(PREFIXES[prefix](typedef.updated_col, value))
    for key, text in params.others.items():
        query = typedef.filters[key](query, text)
    if params.cursor:
        query = query.where(typedef.id_col > uuid.UUID(params.cursor))
    rows = list(
        db.session.execute(query.order_by(typedef.id_col).limit(params.count + 1))
        .scalars()
        .unique()
    )
    next_cursor = str(rows[params.count - 1].id) if len(rows) > params.count else None
    return rows[: params.count], next_cursor


def read(typedef: TypeDef, site_id: uuid.UUID, resource_id: str) -> Any:
    """The row behind ``Type/id`` at the reader's site, else 404 (another site's too)."""
    our_id = parse_uuid(resource_id)
    row = None
    if our_id is not None:
        row = (
            db.session.execute(typedef.select(site_id).where(typedef.id_col == our_id))
            .scalars()
            .first()
        )
    if row is None:
        raise FhirError(404, f"{typedef.name}/{resource_id} is not known here.")
    return row


def site_codes() -> dict[uuid.UUID, str]:
    return dict(db.session.execute(sa.select(Site.id, Site.code)).all())
