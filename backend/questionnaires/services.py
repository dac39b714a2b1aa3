"""Instruments, answer validation and scoring, and recording a response exactly once.

``record_response`` is the one way a response enters the database, whoever sends it (the
patient's phone, a caregiver on it, a nurse after a phone call). No answer is lost, doubled or
silently accepted when wrong:

1. A known ``Idempotency-Key`` replays the first result (same body) or is refused (another body).
   The database decides it: the key is unique per patient, so it is looked up only when the
   answer cannot be stored (refused by a check below, or the unique constraint's conflict), not
   before every answer.
2. Every rule is checked and every bad field reported at once (422); nothing is stored.
3. The row is inserted with ``ON CONFLICT DO NOTHING``; the database's unique constraints (one
   response per assignment, one per patient and key) decide a race between two identical
   requests, and the loser replays the winner's result instead of failing.
4. The assignment is completed and ``response_recorded`` is sent (the alert engine listens) in
   the same transaction, so an answer and the alerts it raises commit together.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy.orm import selectinload

from backend import signals
from backend.audit.models import AuditEvent
from backend.audit.services import event_values
from backend.auth.principal import Principal
from backend.errors import Conflict, NotFound, Problem, ValidationProblem, field_error
from backend.extensions import db
from backend.fields import strip_control_characters
from backend.locales import FALLBACK_LOCALE, LOCALES
from backend.patients.models import CURRENT_PROCEDURE_ORDER, Patient, Procedure
from backend.questionnaires.models import CHANNELS, Assignment, Instrument, Response
from backend.questionnaires.planning import day_number
from backend.questionnaires.vocabulary import AID_LEVELS, ANALGESIC_STEPS

FUTURE_TOLERANCE = timedelta(minutes=5)  # phone clocks drift; beyond this is a wrong clock


# --- instruments -------------------------------------------------------------------------------


def get_instrument(key: str, version: int | None = None) -> Instrument:
    query = db.select(Instrument).filter_by(key=key)
    if version is not None:
        query = query.filter_by(version=version)
    instrument: Instrument | None = db.session.execute(
        query.order_by(Instrument.version.desc()).limit(1)
    ).scalar_one_or_none()
    if instrument is None:
        raise NotFound()
    return instrument


def instrument_definition(key: str, version: int) -> Mapping[str, Any] | None:
    """The definition of one version of an instrument (None: no such version), read once per
    application: a published version never changes (a change is a new version), so every
    answer need not read it again. Treat it as read-only."""
    from flask import current_app

    cache: dict[tuple[str, int], Mapping[str, Any]] = current_app.extensions.setdefault(
        "instrument_definitions", {}
    )
    definition = cache.get((key, version))
    if definition is None:
        definition = db.session.execute(
            sa.select(Instrument.definition).filter_by(key=key, version=version)
        ).scalar_one_or_none()
        if definition is not None:
            cache[(key, version)] = definition
    return definition


def localise(definition: Mapping[str, Any], locale: str) -> dict[str, Any]:
    """The definition with every text in one language (French when the locale is unknown)."""

    def pick(value: Any) -> Any:
        if isinstance(value, dict) and set(value) <= set(LOCALES) and value:
            return value.get(locale) or value.get(FALLBACK_LOCALE) or next(iter(value.values()))
        if isinstance(value, dict):
            return {k: pick(v) for k, v in value.items()}
        if isinstance(value, list):
            return [pick(v) for v in value]
        return value

    localised: dict[str, Any] = pick(dict(definition))
    localised["locale"] = locale
    return localised


# --- validation and scoring --------------------------------------------------------------------


def validate_answers(definition: Mapping[str, Any], answers: Any) -> list[dict[str, str]]:
    """Every problem with the answers, each with its JSON pointer; empty when valid."""
    if not isinstance(answers, dict):
        return [field_error("/answers", "must be an object of item: value")]
    errors: list[dict[str, str]] = []
    items = {item["id"]: item for item in definition["items"]}
    for key in answers:
        if key not in items:
            errors.append(field_error(f"/answers/{key}", "is not an item of this instrument"))
    for item_id, item in items.items():
        pointer = f"/answers/{item_id}"
        if item_id not in answers or answers[item_id] is None:
            if item.get("required"):
                errors.append(field_error(pointer, "is required"))
            continue
        problem = _item_problem(item, answers[item_id])
        if problem:
            errors.append(field_error(pointer, problem))
    return errors


def clean_free_text(definition: Mapping[str, Any], answers: Any) -> Any:
    """The answers with control characters (NUL, escape codes, unpaired surrogates) stripped
    from free-text items; a text left empty is dropped.

    A patient's answers must never be lost to a stray character in a comment: a phone's
    keyboard or a paste can put one there, PostgreSQL cannot store a NUL, and refusing the whole
    response would drop a red-flag answer with it. The clinical answers are never altered (a
    bad character there is a 422 like any wrong value); only the comment loses what it cannot
    hold and carries no meaning.
    """
    if not isinstance(answers, dict):
        return answers
    texts = {item["id"] for item in definition["items"] if item["type"] == "text"}
    cleaned: dict[str, Any] = {}
    for key, value in answers.items():
        if key in texts and isinstance(value, str):
            value = strip_control_characters(value)
            if not value:
                continue
        cleaned[key] = value
    return cleaned


def _item_problem(item: Mapping[str, Any], value: Any) -> str | None:
    kind = item["type"]
    if kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            return "must be a whole number"
        if not item["minimum"] <= value <= item["maximum"]:
            return f"must be between {item['minimum']} and {item['maximum']}"
    elif kind in {"choice", "choice_integer"}:
        allowed = [option["value"] for option in item["options"]]
        if isinstance(value, bool) or value not in allowed:
            return f"must be one of {', '.join(str(a) for a in allowed)}"
    elif kind == "multi_choice":
        allowed = [option["value"] for option in item["options"]]
        if not isinstance(value, list):
            return "must be a list (empty for none)"
        unknown = [v for v in value if v not in allowed]
        if unknown:
            return f"has unknown values: {', '.join(map(str, unknown))}"
        if len(set(value)) != len(value):
            return "lists a value twice"
    elif kind == "boolean":
        if not isinstance(value, bool):
            return "must be true or false"
    elif kind == "text":
        if not isinstance(value, str):
            return "must be text"
        if len(value) > item["max_length"]:
            return f"must have at most {item['max_length']} characters"
    return None


def pain_band(value: int) -> str:
    """0 none, 1-3 mild, 4-6 moderate, 7-10 severe (clinical.md)."""
    if value == 0:
        return "none"
    if value <= 3:
        return "mild"
    if value <= 6:
        return "moderate"
    return "severe"


def score(answers: Mapping[str, Any]) -> dict[str, Any]:
    """The derived scores of the clinical specification, stored with each response."""
    pms = [answers.get(k) for k in ("pms_indoors", "pms_outdoors", "pms_shopping")]
    return {
        "mobility_score": sum(pms) if all(isinstance(v, int) for v in pms) else None,  # type: ignore[arg-type]
        "analgesic_step": ANALGESIC_STEPS.index(answers["analgesics"]),
        "aid_level": AID_LEVELS.index(answers["walking_aid"]),
        "pain_rest_band": pain_band(answers["pain_rest"]),
        "pain_walking_band": pain_band(answers["pain_walking"]),
    }


# --- what the phone shows after a response -----------------------------------------------------


def advice_for(response: Response, patient: Patient) -> dict[str, Any] | None:
    """The first advice a ``response_advice`` receiver gives (the alert engine's emergency
    advice after a red flag), else None."""
    for advice in signals.send(signals.response_advice, response=response, patient=patient):
        if advice:
            return dict(advice)
    return None


# --- recording ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recorded:
    response: Response
    replayed: bool


class Answered:
    """A stored response as its sender is told of it: the row's fields and the ``advice`` to
    show at once (decided by the service, so the schema that dumps it never queries)."""

    def __init__(self, response: Response, advice: dict[str, Any] | None) -> None:
        self._response, self.advice = response, advice

    def __getattr__(self, name: str) -> Any:
        return getattr(self._response, name)


def request_fingerprint(body: Mapping[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _replay(patient: Patient, key: str, fingerprint: str) -> Recorded | None:
    existing = db.session.execute(
        db.select(Response).filter_by(patient_id=patient.id, idempotency_key=key)
    ).scalar_one_or_none()
    if existing is None:
        return None
    if existing.request_hash != fingerprint:
        raise ValidationProblem(
            [{"header": "Idempotency-Key", "detail": "was already used with another body"}],
            detail="This Idempotency-Key was used for a different request.",
        )
    return Recorded(existing, replayed=True)


def record_response(
    actor: Principal,
    patient: Patient,
    body: Mapping[str, Any],
    *,
    now: datetime,
    idempotency_key: str | None,
    fingerprint: str,
    channel: str | None = None,
) -> Recorded:
    """Store one response (see the module docstring for the guarantees).

    ``channel``: the way it came in (``CHANNELS``); by default ``phone`` for a staff member
    (typed in during a call) and ``app`` for the patient's phone; a reminder's link says
    ``sms`` or ``email``.
    """
    if channel is None:
        channel = "phone" if actor.is_staff else "app"
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}")
    try:
        checked = _checked(actor, patient, body, now)
    except Problem:
        # A retry of a stored answer may now be refused (its questionnaire is answered, the
        # day's check-ins are used up): it replays instead. A known key is looked up only on
        # this path and on the unique constraint's conflict below, not before every answer.
        if idempotency_key:
            replay = _replay(patient, idempotency_key, fingerprint)
            if replay:
                return replay
        raise
    procedure, assignment, answers = checked
    answered_at: datetime = body["answered_at"]
    source = body["source"]
    values = {
        "id": uuid.uuid4(),
        "patient_id": patient.id,
        "procedure_id": procedure.id,
        "assignment_id": assignment.id if assignment else None,
        "instrument_key": body["instrument"],
        "instrument_version": body["version"],
        "day": day_number(procedure.discharged_on, answered_at, patient.timezone),
        "answered_at": answered_at.astimezone(UTC),  # as stored, and read back
        "received_at": now.astimezone(UTC),
        "source": source,
        "answers": dict(answers),
        "scores": score(answers),
        "idempotency_key": idempotency_key,
        "request_hash": fingerprint,
        "entered_by_id": actor.id if actor.is_staff else None,
        "channel": channel,
    }
    audit = event_values(
        "response.create",
        now=now,
        actor=actor,
        resource_type="response",
        resource_id=values["id"],
        patient_id=patient.id,
        details={"source": source, "channel": channel},
    )
    if not _insert_with_audit(values, audit):
        # A retry, or a concurrent twin that won the race: the stored answer replays (or its
        # key with another body is refused).
        if idempotency_key:
            replay = _replay(patient, idempotency_key, fingerprint)
            if replay:
                return replay
        raise Conflict("This questionnaire has already been answered.")
    # The row as stored, in the session as if read back (its values are all known here).
    response = Response(**values)
    orm.make_transient_to_detached(response)
    db.session.add(response)

    if assignment is not None:
        assignment.status = "completed"
        assignment.status_changed_at = now
    signals.send(
        signals.response_recorded, response=response, patient=patient, procedure=procedure, now=now
    )
    return Recorded(response, replayed=False)


def _insert_with_audit(values: dict[str, Any], audit: dict[str, Any]) -> bool:
    """Insert the response and its audit row; False (nothing inserted) when a unique constraint
    (one response per assignment, one per patient and key) already holds its twin.

    ``ON CONFLICT DO NOTHING``: the conflict leaves the row out instead of failing, so no
    savepoint is needed and the transaction lives on (a twin still in flight is waited for,
    then decides). On PostgreSQL both rows are written by one statement (the audit row's
    INSERT reads the response's from a data-modifying CTE: no response, no audit row); SQLite
    runs the two inserts one after the other.
    """
    statements = _statements()
    if statements.together is not None:
        bound = {f"r_{k}": v for k, v in values.items()} | {f"a_{k}": v for k, v in audit.items()}
        return db.session.execute(statements.together, bound).first() is not None
    if db.session.execute(statements.insert, values).first() is None:
        return False
    db.session.execute(statements.audit, audit)
    return True


class _Statements:
    """The statements of recording an answer, built once per process and dialect: their values
    are bound parameters, so an answer no longer builds (and hashes) each one anew."""

    def __init__(self, dialect: str) -> None:
        responses, audit = Response.__table__, AuditEvent.__table__
        patient_id = sa.bindparam("patient_id", type_=Patient.id.type)
        # The patient's lock with the current procedure (``_check_checkin_budget``).
        self.lock = (
            sa.select(Procedure)
            .join(Patient, Patient.id == Procedure.patient_id)
            .where(Patient.id == patient_id)
            .order_by(*(c.desc() for c in CURRENT_PROCEDURE_ORDER))
            .limit(1)
            .options(orm.lazyload(Procedure.schedule), orm.lazyload(Procedure.protocol))
            .with_for_update(of=Patient)
        )
        self.recent = (
            sa.select(responses.c.received_at)
            .where(
                responses.c.patient_id == patient_id,
                responses.c.assignment_id.is_(None),
                responses.c.entered_by_id.is_(None),
                responses.c.received_at > sa.bindparam("since", type_=responses.c.received_at.type),
            )
            .order_by(responses.c.received_at.desc())
            .limit(sa.bindparam("limit", type_=sa.Integer))
        )
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as postgresql_insert

            inserted = (
                postgresql_insert(responses)
                .values({c: sa.bindparam(f"r_{c}", type_=responses.c[c].type) for c in _COLUMNS})
                .on_conflict_do_nothing()
                .returning(responses.c.id)
                .cte("inserted")
            )
            names = [c.name for c in audit.c]
            row = sa.select(*(sa.bindparam(f"a_{c}", type_=audit.c[c].type) for c in names))
            self.together: sa.Insert | None = (
                sa.insert(audit)
                .from_select(names, row.select_from(inserted))
                .add_cte(inserted)
                .returning(audit.c.id)
            )
        else:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            self.together = None
            self.insert = (
                sqlite_insert(responses).on_conflict_do_nothing().returning(responses.c.id)
            )
            self.audit = sa.insert(audit)


_COLUMNS = (
    "id",
    "patient_id",
    "procedure_id",
    "assignment_id",
    "instrument_key",
    "instrument_version",
    "day",
    "answered_at",
    "received_at",
    "source",
    "answers",
    "scores",
    "idempotency_key",
    "request_hash",
    "entered_by_id",
    "channel",
)


def _statements() -> _Statements:
    return _prepared(db.session.get_bind().dialect.name)


@functools.cache
def _prepared(dialect: str) -> _Statements:
    return _Statements(dialect)


def _checked(
    actor: Principal, patient: Patient, body: Mapping[str, Any], now: datetime
) -> tuple[Procedure, Assignment | None, Any]:
    """The procedure, the assignment (locked) and the cleaned answers of a response that may be
    stored; a ``Problem`` (every bad field at once, 409, 429) otherwise."""
    counted = body.get("assignment_id") is None and not actor.is_staff
    current = _check_checkin_budget(patient, now) if counted else None

    answered_at: datetime = body["answered_at"]
    errors: list[dict[str, str]] = []
    definition = instrument_definition(body["instrument"], body["version"])
    if definition is None:
        errors.append(field_error("/instrument", "no such instrument and version"))

    assignment: Assignment | None = None
    if body.get("assignment_id") is not None:
        # Locked: the scheduler closing this window (SKIP LOCKED) waits for the answer instead
        # of marking it missed under it.
        assignment = db.session.get(Assignment, body["assignment_id"], with_for_update=True)
        if assignment is None or assignment.patient_id != patient.id:
            errors.append(field_error("/assignment_id", "no such questionnaire for you"))
            assignment = None
        elif (assignment.instrument_key, assignment.instrument_version) != (
            body["instrument"],
            body["version"],
        ):
            errors.append(
                field_error(
                    "/instrument",
                    f"this questionnaire is {assignment.instrument_key} "
                    f"version {assignment.instrument_version}",
                )
            )
    elif body["instrument"] != "checkin":
        errors.append(field_error("/instrument", "an unscheduled answer must be a checkin"))

    procedure = current if counted else _procedure_for(patient, assignment)
    if procedure is None:
        raise Conflict("No procedure is recorded for this patient yet.")
    if answered_at > now + FUTURE_TOLERANCE:
        errors.append(field_error("/answered_at", "is in the future"))
    elif day_number(procedure.discharged_on, answered_at, patient.timezone) < 0:
        errors.append(field_error("/answered_at", "is before the discharge"))
    elif assignment is not None and answered_at < assignment.opens_at:
        errors.append(field_error("/answered_at", "is before the questionnaire opened"))
    answers: Any = body["answers"]
    if definition is not None:
        answers = clean_free_text(definition, answers)
        errors.extend(validate_answers(definition, answers))
    if errors:
        raise ValidationProblem(errors)

    if assignment is not None:
        _check_assignment_accepts(assignment, answered_at, now)
    return procedure, assignment, answers


CHECKIN_WINDOW = timedelta(hours=24)


def _check_checkin_budget(patient: Patient, now: datetime) -> Procedure | None:
    """429 when the phone has sent ``CHECKIN_LIMIT_PER_DAY`` unscheduled check-ins in 24 hours;
    else the patient's current procedure, read by the statement that takes the lock (one round
    trip less than reading it apart).

    Counted in the database (every worker sees the same rows), by the server's receipt time (a
    phone's clock can lie), with the patient's row locked so that two workers cannot both
    accept the last one. A person sends a few a day at most; the limit also bounds the history
    the alert engine re-evaluates at each answer. The phone keeps the refused answer and sends
    it again after ``Retry-After`` (same Idempotency-Key): it is delayed, not lost.
    """
    from flask import current_app

    limit = int(current_app.config["CHECKIN_LIMIT_PER_DAY"])
    # The lock first, then the count in a statement of its own: a statement sees the answers
    # committed before it began, so a count in the locking statement could miss the one a
    # worker committed while this one waited. (A patient without a procedure locks nothing,
    # and is refused below whatever the count.)
    statements = _statements()
    current: Procedure | None = db.session.execute(
        statements.lock, {"patient_id": patient.id}
    ).scalar_one_or_none()
    recent = list(
        db.session.execute(
            statements.recent,
            {"patient_id": patient.id, "since": now - CHECKIN_WINDOW, "limit": limit},
        ).scalars()
    )
    if len(recent) < limit:
        return current
    frees_at = recent[-1] + CHECKIN_WINDOW  # the oldest of the last ``limit`` leaves the window
    wait = max(1, math.ceil((frees_at - now).total_seconds()))
    raise Problem(
        f"At most {limit} unscheduled check-ins in 24 hours. Keep this answer and send it again "
        "later. If you feel very unwell, call 15 (or 112).",
        status=429,
        title="Too Many Requests",
        slug="too-many-checkins",
        headers={"Retry-After": str(wait)},
    )


def _procedure_for(patient: Patient, assignment: Assignment | None) -> Procedure | None:
    """The assignment's procedure, else the patient's current one (``current_procedure``), read
    without its schedule and protocol: recording an answer needs neither."""
    lean = (orm.lazyload(Procedure.schedule), orm.lazyload(Procedure.protocol))
    if assignment is not None:
        return db.session.get(Procedure, assignment.procedure_id, options=lean)
    if "procedures" not in sa.inspect(patient).unloaded:
        return patient.current_procedure
    procedure: Procedure | None = db.session.execute(
        sa.select(Procedure)
        .where(Procedure.patient_id == patient.id)
        .order_by(*(c.desc() for c in CURRENT_PROCEDURE_ORDER))
        .limit(1)
        .options(*lean)
    ).scalar_one_or_none()
    return procedure


def _check_assignment_accepts(assignment: Assignment, answered_at: datetime, now: datetime) -> None:
    """409 unless the questionnaire can still take this answer.

    A late sync is fine when the answer was given inside the window (offline phones); an
    answer given after the window closed is refused.
    """
    if assignment.status == "completed":
        raise Conflict("This questionnaire has already been answered.")
    if assignment.status == "cancelled":
        raise Conflict("This questionnaire was cancelled.")
    if answered_at > assignment.closes_at:
        raise Problem(
            "This questionnaire closed before it was answered.",
            status=409,
            title="Conflict",
            slug="questionnaire-closed",
        )


def list_assignments(patient: Patient, now: datetime, status: str | None) -> list[Assignment]:
    assignments = db.session.execute(
        db.select(Assignment)
        .filter_by(patient_id=patient.id)
        .order_by(Assignment.opens_at, Assignment.id)
    ).scalars()
    return [a for a in assignments if status is None or a.effective_status(now) == status]


def list_responses(patient_id: uuid.UUID) -> list[Response]:
    return list(
        db.session.execute(
            db.select(Response)
            .filter_by(patient_id=patient_id)
            .options(selectinload(Response.entered_by))
            .order_by(Response.answered_at, Response.id)
        ).scalars()
    )


def answer_ways(patient_ids: list[uuid.UUID]) -> dict[uuid.UUID, dict[str, Any]]:
    """How each patient answers, for the nurse pages (who drifts from the app to the links, or
    to needing a call): ``counts`` per channel, ``recent`` (the channels of the last five
    answers, oldest first) and ``last``. One query; patients without an answer are absent."""
    channel = sa.func.coalesce(
        Response.channel, sa.case((Response.source == "nurse", "phone"), else_="app")
    )
    rows = db.session.execute(
        sa.select(Response.patient_id, channel)
        .where(Response.patient_id.in_(patient_ids))
        .order_by(Response.patient_id, Response.answered_at, Response.id)
    ).all()
    ways: dict[uuid.UUID, dict[str, Any]] = {}
    for patient_id, via in rows:
        entry = ways.setdefault(patient_id, {"counts": {}, "recent": [], "last": None})
        entry["counts"][via] = entry["counts"].get(via, 0) + 1
        entry["recent"] = [*entry["recent"][-4:], via]
        entry["last"] = via
    return ways
