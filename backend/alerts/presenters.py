"""Alerts as the API and the pages show them, and the alerts section of a patient's timeline.

The wording of an alert's summary is decided once, by the rules (``backend.alerts.rules``), in
every language, and stored with the alert; ``present`` only picks the caller's language. A
presenter never queries: ``load_named`` loads the patients and staff a page names in two queries,
and ``present`` takes them from it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import Flask
from marshmallow.utils import ensure_text_type
from sqlalchemy import orm

from backend.alerts.models import Alert
from backend.auth.models import User
from backend.extensions import db
from backend.locales import FALLBACK_LOCALE
from backend.patients.models import Patient

# What an alert shows of its patient (``PatientRefSchema`` and the queue page).
PATIENT_COLUMNS = (
    Patient.id,
    Patient.site_id,
    Patient.mrn,
    Patient.given_name,
    Patient.family_name,
    Patient.birth_date,
)


OWNER_ACTIONS = ("taken", "assigned", "released")


def staff_ref(user_id: uuid.UUID | None) -> User | None:
    """The staff member named by an id, from the session when a page loaded them."""
    return db.session.get(User, user_id) if user_id else None


def summary_in(alert: Alert, locale: str) -> str:
    """The alert's one-sentence summary in ``locale`` (French when it has none in it)."""
    return str(alert.summary.get(locale) or alert.summary.get(FALLBACK_LOCALE) or "")


@dataclass(frozen=True)
class Named:
    """The patients and staff a set of alerts names, loaded once for all of them."""

    patients: Mapping[uuid.UUID, Patient]
    users: Mapping[uuid.UUID, User]

    def user(self, user_id: uuid.UUID | None) -> User | None:
        return self.users.get(user_id) if user_id else None


def load_named(
    alerts: Iterable[Alert], detail: bool = False, known: Mapping[uuid.UUID, Patient] | None = None
) -> Named:
    """The patients and staff named by ``alerts`` (with their notes' and history's authors when
    ``detail``), in at most two queries whatever their number. A patient comes with the columns
    an alert shows, without its procedures and schedule (loaded only if something asks);
    ``known``: patients the caller already holds (not read again), as is an alert's patient
    that came with it (``Alert.patient``, loaded by ``services.queue``)."""
    alerts = list(alerts)
    known = dict(known or {})
    for a in alerts:  # read with the alerts (``services.queue``)
        if "patient" in a.__dict__:
            known.setdefault(a.patient_id, a.__dict__["patient"])
    patient_ids = {a.patient_id for a in alerts} - known.keys()
    user_ids = {
        u
        for a in alerts
        for u in (a.acknowledged_by_id, a.resolved_by_id, a.owner_id, a.seen_by_id)
        if u
    }
    if detail:
        user_ids |= {n.author_id for a in alerts for n in a.notes}
        user_ids |= {e.actor_id for a in alerts for e in a.history if e.actor_id}
        user_ids |= {
            uuid.UUID(e.details["to"])
            for a in alerts
            for e in a.history
            if e.action in OWNER_ACTIONS and e.details.get("to")
        }
    patients = (
        {
            p.id: p
            for p in db.session.execute(
                db.select(Patient)
                .where(Patient.id.in_(patient_ids))
                .options(orm.load_only(*PATIENT_COLUMNS), orm.lazyload("*"))
            ).scalars()
        }
        if patient_ids
        else {}
    ) | known
    return Named(patients, load_users(user_ids))


def present(
    alert: Alert, now: datetime, locale: str, named: Named | None = None, detail: bool = False
) -> dict[str, Any]:
    """An alert as the API shows it: the summary in ``locale``, overdue as of now. ``named``
    holds the patients and staff it names (``load_named``); a presenter never queries else."""
    if named is None:
        named = load_named([alert], detail=detail)
    view: dict[str, Any] = {
        "id": alert.id,
        "patient": named.patients[alert.patient_id],
        "kind": alert.kind,
        "severity": alert.severity,
        "status": alert.status,
        "overdue": alert.is_overdue(now),
        "created_at": alert.created_at,
        "updated_at": alert.updated_at,
        "due_at": alert.due_at,
        "summary": summary_in(alert, locale),
        "rule": {"key": alert.rule_key, "version": alert.rule_version},
        "evidence": alert.evidence,
        "acknowledged_by": named.user(alert.acknowledged_by_id),
        "acknowledged_at": alert.acknowledged_at,
        "resolved_by": named.user(alert.resolved_by_id),
        "resolved_at": alert.resolved_at,
        "outcome": alert.outcome,
        "owner": named.user(alert.owner_id),
        "owned_since": alert.owned_since,
        "snoozed": alert.is_snoozed(now),
        "back_from_snooze": alert.is_back_from_snooze(now),
        "snoozed_until": alert.snoozed_until,
        "snooze_reason": alert.snooze_reason,
        "new": alert.seen_at is None,
        "seen_at": alert.seen_at,
        "seen_by": named.user(alert.seen_by_id),
    }
    if detail:
        view["calls"] = [
            {
                "result": e.details.get("result"),
                "attempt": e.details.get("attempt"),
                "by": named.user(e.actor_id),
                "at": e.occurred_at,
            }
            for e in alert.history
            if e.action == "call_attempt"
        ]
        view["notes"] = [
            {
                "id": n.id,
                "author": named.user(n.author_id),
                "text": n.text,
                "created_at": n.created_at,
            }
            for n in alert.notes
        ]
        view["history"] = [
            {
                "action": e.action,
                "actor": named.user(e.actor_id),
                "occurred_at": e.occurred_at,
                "details": e.details,
                # The pages name whom an alert was given to (the API gives the id in details).
                "to_user": named.user(uuid.UUID(e.details["to"]))
                if e.action in OWNER_ACTIONS and e.details.get("to")
                else None,
            }
            for e in alert.history
        ]
    return view


def present_page(
    alerts: list[Alert],
    now: datetime,
    locale: str,
    known: Mapping[uuid.UUID, Patient] | None = None,
) -> list[dict[str, Any]]:
    """A page of alerts: the patients and staff it names in two queries, not two per alert
    (``known``: patients the caller holds already)."""
    named = load_named(alerts, known=known)
    return [present(a, now, locale, named) for a in alerts]


def present_rows(rows: Sequence[Any], now: datetime) -> list[dict[str, Any]]:
    """``present_page`` of a queue read as columns (``services.queue(columns=True)``), for the
    queue page: the same keys and values (the summary in the language the queue was read in),
    the patient a ``PatientRef``."""
    alerts = [row._asdict() for row in rows]
    users = _row_users(alerts)
    out = []
    for a in alerts:
        status, due_at, snoozed_until, summary = (
            a["status"],
            a["due_at"],
            a["snoozed_until"],
            a["summary"],
        )
        out.append(
            {
                "id": a["id"],
                "patient": PatientRef(
                    a["patient_id"],
                    a["patient_mrn"],
                    a["patient_given_name"],
                    a["patient_family_name"],
                    a["patient_birth_date"],
                ),
                "kind": a["kind"],
                "severity": a["severity"],
                "status": status,
                "overdue": status == "open" and now >= due_at,  # Alert.is_overdue
                "created_at": a["created_at"],
                "updated_at": a["updated_at"],
                "due_at": due_at,
                "summary": summary,  # chosen in the statement (``QUEUE_COLUMNS``)
                "rule": {"key": a["rule_key"], "version": a["rule_version"]},
                "evidence": a["evidence"],
                "acknowledged_by": users.get(a["acknowledged_by_id"]),
                "acknowledged_at": a["acknowledged_at"],
                "resolved_by": users.get(a["resolved_by_id"]),
                "resolved_at": a["resolved_at"],
                "outcome": a["outcome"],
                "owner": users.get(a["owner_id"]),
                "owned_since": a["owned_since"],
                # Alert.is_snoozed and is_back_from_snooze
                "snoozed": snoozed_until is not None and now < snoozed_until,
                "back_from_snooze": snoozed_until is not None and now >= snoozed_until,
                "snoozed_until": snoozed_until,
                "snooze_reason": a["snooze_reason"],
                "new": a["seen_at"] is None,
                "seen_at": a["seen_at"],
                "seen_by": users.get(a["seen_by_id"]),
            }
        )
    return out


def _text(value: Any) -> Any:
    """A ``String`` field's dump of a value (text as it is; None stays None)."""
    return value if value is None or type(value) is str else ensure_text_type(value)


def _user_ref(user: User | None) -> dict[str, Any] | None:
    """``UserRefSchema``'s dump of a staff member (None: nobody)."""
    if user is None:
        return None
    return {"id": str(user.id), "full_name": _text(user.full_name), "email": _text(user.email)}


# What ``dump_page`` reads of an alert and of its patient.
_ALERT_READ = frozenset(
    (
        "id", "patient_id", "kind", "severity", "status", "due_at", "created_at", "updated_at",
        "summary", "rule_key", "rule_version", "evidence", "acknowledged_by_id",
        "acknowledged_at", "resolved_by_id", "resolved_at", "outcome", "owner_id",
        "owned_since", "snoozed_until", "snooze_reason", "seen_at", "seen_by_id",
    )
)  # fmt: skip
_PATIENT_READ = frozenset(("id", "mrn", "given_name", "family_name"))

# What a list reads of an alert and its patient when the queue is read as columns
# (``services.queue(columns=True)``): the row's names are the alert's, and the patient's with
# ``patient_`` before them (its id is the alert's ``patient_id``).
QUEUE_COLUMNS = (
    *(getattr(Alert, name) for name in sorted(_ALERT_READ - {"summary"})),
    # ``summary_in`` in SQL: the caller's language (bound as ``locale``), else French, else "";
    # the row holds the sentence, not the summary's object in every language.
    sa.func.coalesce(
        sa.func.nullif(
            Alert.summary[sa.bindparam("locale", type_=sa.JSON.JSONStrIndexType())].as_string(), ""
        ),
        sa.func.nullif(Alert.summary[FALLBACK_LOCALE].as_string(), ""),
        "",
    ).label("summary"),
    *(
        column.label(f"patient_{column.key}")
        for column in PATIENT_COLUMNS
        if column.key not in ("id", "site_id")
    ),
)


@dataclass(frozen=True, slots=True)
class PatientRef:
    """What a queue read as columns holds of an alert's patient (``PatientRefSchema``'s fields
    and the queue page's)."""

    id: uuid.UUID
    mrn: str
    given_name: str
    family_name: str
    birth_date: Any


def load_users(user_ids: Iterable[uuid.UUID | None]) -> dict[uuid.UUID, User]:
    """The staff members named (None: nobody), in one query when there is any."""
    wanted = {u for u in user_ids if u}
    if not wanted:
        return {}
    return {
        u.id: u for u in db.session.execute(db.select(User).where(User.id.in_(wanted))).scalars()
    }


def _row_users(rows: Sequence[Mapping[str, Any]]) -> dict[uuid.UUID, User]:
    return load_users(
        u
        for a in rows
        for u in (a["acknowledged_by_id"], a["resolved_by_id"], a["owner_id"], a["seen_by_id"])
    )


def _loaded(entity: Any, names: frozenset[str]) -> Mapping[str, Any]:
    """The entity's values of ``names``: its ``__dict__`` when the query loaded them all (the
    queue's statement does), else each read as an attribute (an expired one is loaded as
    usual). Each attribute read through SQLAlchemy's descriptor was a twentieth of the page."""
    values = entity.__dict__
    if values.keys() >= names:
        return values  # type: ignore[no-any-return]
    return {name: getattr(entity, name) for name in names}


def dump_page(
    alerts: list[Alert], now: datetime, locale: str, named: Named | None = None
) -> list[dict[str, Any]]:
    """``AlertSchema``'s dump of ``present_page(alerts, now, locale)``, made in one step from the
    alerts: the queue's fifty alerts of 27 fields were presented as dicts, then read back and
    formatted field by field by the compiled plan (``backend.dumping``), a quarter of the
    request's CPU. The schema stays the contract and the OpenAPI document's source; a test
    compares this with marshmallow's dump of the presented page, field for field, for alerts in
    every state (tests/test_dumping.py), and one that names every field of ``AlertSchema``
    fails when a field is added there and not here."""
    if named is None:
        named = load_named(alerts)
    patients = named.patients
    pairs = []
    for alert in alerts:
        a = _loaded(alert, _ALERT_READ)
        pairs.append((a, _loaded(patients[a["patient_id"]], _PATIENT_READ)))
    return _dump(pairs, now, locale, named.users)


def dump_rows(rows: Sequence[Any], now: datetime) -> list[dict[str, Any]]:
    """``dump_page`` of a queue read as columns (``services.queue(columns=True)``): the same
    items, the summary in the language the queue was read in (tests/test_dumping.py compares
    them for alerts in every state)."""
    alerts = [row._asdict() for row in rows]
    pairs = [
        (
            a,
            {
                "id": a["patient_id"],
                "mrn": a["patient_mrn"],
                "given_name": a["patient_given_name"],
                "family_name": a["patient_family_name"],
            },
        )
        for a in alerts
    ]
    return _dump(pairs, now, None, _row_users(alerts))


def _dump(
    pairs: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]],
    now: datetime,
    locale: str | None,
    users: Mapping[uuid.UUID, User],
) -> list[dict[str, Any]]:
    """``AlertSchema``'s dump of each alert's values and its patient's (``dump_page``); a
    summary is the alert's in every language, shown in ``locale``, or a row's sentence."""
    # Written out field by field, without a call per field: a page is 50 alerts of 27 fields.
    # A ``String`` field's dump (``_text``) converts only a value that is not text already, a
    # ``DateTime`` field's is its ISO 8601 form (None stays None).
    out = []
    for a, patient in pairs:
        ack_id, resolved_id, owner_id, seen_id = (
            a["acknowledged_by_id"],
            a["resolved_by_id"],
            a["owner_id"],
            a["seen_by_id"],
        )
        snoozed_until = a["snoozed_until"]
        status = a["status"]
        evidence = a["evidence"]
        summary = a["summary"]  # an alert's object in every language, or a row's sentence
        if type(summary) is not str:  # summary_in
            summary = str(summary.get(locale or "") or summary.get(FALLBACK_LOCALE) or "")
        rule_version = a["rule_version"]
        mrn, given_name, family_name, kind, severity, rule_key, outcome, snooze_reason = [
            t if t is None or type(t) is str else ensure_text_type(t)
            for t in (
                patient["mrn"],
                patient["given_name"],
                patient["family_name"],
                a["kind"],
                a["severity"],
                a["rule_key"],
                a["outcome"],
                a["snooze_reason"],
            )
        ]
        status_text = status if status is None or type(status) is str else ensure_text_type(status)
        created_at, updated_at, due_at = a["created_at"], a["updated_at"], a["due_at"]
        acknowledged_at, resolved_at, owned_since, seen_at = (
            a["acknowledged_at"],
            a["resolved_at"],
            a["owned_since"],
            a["seen_at"],
        )
        out.append(
            {
                "id": str(a["id"]),
                "patient": {
                    "id": str(patient["id"]),
                    "mrn": mrn,
                    "given_name": given_name,
                    "family_name": family_name,
                },
                "kind": kind,
                "severity": severity,
                "status": status_text,
                "overdue": status == "open" and now >= due_at,  # Alert.is_overdue
                "created_at": None if created_at is None else created_at.isoformat(),
                "updated_at": None if updated_at is None else updated_at.isoformat(),
                "due_at": None if due_at is None else due_at.isoformat(),
                "summary": summary,
                "rule": {
                    "key": rule_key,
                    "version": None if rule_version is None else int(rule_version),
                },
                "evidence": None if evidence is None else dict(evidence),
                "acknowledged_by": _user_ref(users.get(ack_id)) if ack_id else None,
                "acknowledged_at": None if acknowledged_at is None else acknowledged_at.isoformat(),
                "resolved_by": _user_ref(users.get(resolved_id)) if resolved_id else None,
                "resolved_at": None if resolved_at is None else resolved_at.isoformat(),
                "outcome": outcome,
                "owner": _user_ref(users.get(owner_id)) if owner_id else None,
                "owned_since": None if owned_since is None else owned_since.isoformat(),
                # Alert.is_snoozed and is_back_from_snooze
                "snoozed": snoozed_until is not None and now < snoozed_until,
                "back_from_snooze": snoozed_until is not None and now >= snoozed_until,
                "snoozed_until": None if snoozed_until is None else snoozed_until.isoformat(),
                "snooze_reason": snooze_reason,
                "new": seen_at is None,
                "seen_at": None if seen_at is None else seen_at.isoformat(),
                "seen_by": _user_ref(users.get(seen_id)) if seen_id else None,
            }
        )
    return out


def timeline_alerts(
    _app: Flask, *, patient: Patient, now: datetime, locale: str
) -> dict[str, list[dict[str, Any]]]:
    """Receiver of ``signals.patient_timeline``: every alert of the patient, oldest first
    (resolved ones too), in at most three queries whatever their number (the timeline shows
    neither their notes nor their history: not loaded)."""
    alerts = list(
        db.session.execute(
            db.select(Alert)
            .filter_by(patient_id=patient.id)
            .order_by(Alert.created_at, Alert.id)
            .options(orm.lazyload(Alert.notes), orm.lazyload(Alert.history))
        ).scalars()
    )
    return {"alerts": present_page(alerts, now, locale, known={patient.id: patient})}
