"""Questionnaires opened and closed on time, and the reminder ladder. Services flush, never commit.

Each service takes ``now`` and a batch ``limit``, claims its due rows with
``FOR UPDATE SKIP LOCKED`` (several schedulers on one PostgreSQL take disjoint rows; SQLite has
one writer at a time), does all its work in the caller's transaction and returns how many rows
it handled. Each claim reads its batch off an index that gives the claim's order (status, due
time, id), so a batch never sorts all that is due. Nothing here calls a provider: reminders
become outbox rows (``backend.notify.enqueue``), a batch in two statements, sent after commit
by the delivery job; before each send the outbox asks this module whether the questionnaire
still wants its reminder (``unwanted_reminders``, the ``outbox_still_wanted`` receiver).

Catching up after an outage: a questionnaire whose window passed while no scheduler ran is
marked ``missed`` (``questionnaire_missed`` is sent); a reminder that is late is still sent
while its questionnaire is open, unless a later rung of the ladder is due within
``SUPERSEDE_WITHIN`` (then that one speaks for both and this one is marked
``expired``/``superseded``), and never in quiet hours.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import lazyload

from backend import signals
from backend.batches import POISON_DELAY
from backend.db import among, insert_rows, new_id, update_rows
from backend.extensions import db
from backend.notify.enqueue import PatientMessage, enqueue_patient_notifications
from backend.notify.quiet_hours import QuietHours, sendable_at
from backend.notify.texts import questionnaire_link
from backend.patients.models import SUSPENDED_STATUSES, Patient
from backend.questionnaires.models import Assignment
from backend.questionnaires.planning import (
    QUESTIONNAIRE_CLOSED,
    local_instant,
    message_no_longer_needed,
)
from backend.schedule.models import Reminder

log = logging.getLogger(__name__)

# The reminder ladder (clinical.md): when the questionnaire opens, then a day and two days
# later at the same local wall-clock time ("+24 h" as a patient reads it, right across DST).
LADDER_DAYS = (0, 1, 2)
# After an outage, a late reminder gives way to the next rung when that one is this close.
SUPERSEDE_WITHIN = timedelta(hours=6)

# --- planning ----------------------------------------------------------------------------------


def reminder_times(
    opens_at: datetime, closes_at: datetime, zone: ZoneInfo, quiet: QuietHours | None = None
) -> list[tuple[int, datetime]]:
    """(rung, due time) of the ladder inside the window, each moved out of quiet hours."""
    local_open = opens_at.astimezone(zone)
    at = time(local_open.hour, local_open.minute, local_open.second)
    times = []
    for rung, days in enumerate(LADDER_DAYS):
        due = local_instant(local_open.date() + timedelta(days=days), at, zone)
        due = sendable_at(max(due, opens_at), zone, quiet)
        if due < closes_at:
            times.append((rung, due))
    return times


def _patients(ids: set[uuid.UUID]) -> dict[uuid.UUID, Patient]:
    # lazyload: the procedures and schedule a Patient loads eagerly are not needed here.
    rows = db.session.execute(
        db.select(Patient).where(Patient.id.in_(ids)).options(lazyload("*"))
    ).scalars()
    return {p.id: p for p in rows}


def _claim_assignments(where: Sequence[object], order: object, limit: int) -> list[Assignment]:
    return list(
        db.session.execute(
            db.select(Assignment)
            .where(*where)  # type: ignore[arg-type]
            .order_by(order, Assignment.id)  # type: ignore[arg-type]
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).scalars()
    )


# --- jobs' services ----------------------------------------------------------------------------


def open_due_assignments(now: datetime, *, limit: int) -> int:
    """Open the questionnaires whose time has come and plan their reminders; the reminder due
    as a questionnaire opens (its ladder's first rung, nearly always) is enqueued at once.

    The whole ladder is planned here, but its last rung's row is not written while the rung
    before it waits: that row carries its planned time (``next_due_at``) and the reminder job
    writes it when it settles the one before (``enqueue_due_reminders``), unless the
    questionnaire no longer wants reminders. A busy minute writes two reminder rows per
    questionnaire instead of three, and an answer before the second rung saves the third."""
    # Columns, not entities, with the patient's in the same statement: only the claimed
    # questionnaires are locked (``OF assignments``), and only followed patients' open (a
    # suspended one's questionnaire waits: it opens on the resumption if its window is still
    # open, else it is cancelled).
    claimed = db.session.execute(
        db.select(Assignment.id, Assignment.patient_id, Assignment.opens_at, Assignment.closes_at)
        .add_columns(Patient.site_id, Patient.locale, Patient.contact_channels, Patient.timezone)
        .join(Patient, Patient.id == Assignment.patient_id)
        .where(
            Assignment.status == "pending",
            Assignment.opens_at <= now,
            Assignment.closes_at > now,
            Patient.status == "active",
        )
        .order_by(Assignment.opens_at, Assignment.id)
        .limit(limit)
        .with_for_update(of=Assignment, skip_locked=True)  # type: ignore[arg-type]
    ).all()
    if not claimed:
        return 0
    table = Assignment.__table__
    db.session.execute(
        sa.update(table)
        .where(among(db.session, table.c.id, [row.id for row in claimed]))
        .values(status="open", status_changed_at=now)
    )
    reminders = [
        _pending_reminder(row.id, row.patient_id, rung, due, now)
        for row in claimed
        # ZoneInfo keeps one instance per zone: a batch's few zones are each read once.
        for rung, due in reminder_times(row.opens_at, row.closes_at, ZoneInfo(row.timezone))
    ]
    _enqueue_due_now(reminders, {row.id: row for row in claimed}, now)
    insert_rows(db.session, Reminder.__table__, _last_rungs_carried(reminders))
    return len(claimed)


def _pending_reminder(
    assignment_id: uuid.UUID, patient_id: uuid.UUID, rung: int, due_at: datetime, now: datetime
) -> dict[str, Any]:
    """A reminder row to write (``insert_rows``: every column, no Python-side default), pending
    until ``due_at``; the rung after it, if it carries one, is set by ``_last_rungs_carried``."""
    return {
        "id": new_id(),
        "assignment_id": assignment_id,
        "patient_id": patient_id,
        "rung": rung,
        "due_at": due_at,
        "status": "pending",
        "reason": None,
        "notification_id": None,
        "next_due_at": None,
        "created_at": now,
        "updated_at": now,
    }


def _last_rungs_carried(reminders: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows to write of the ladders just planned (in rung order per questionnaire): a
    ladder's last rung is left out when the rung before it is still pending, and its planned
    time rides on that row (``next_due_at``) until the reminder job settles it. Everything the
    job decides about the last rung (its time, whether it supersedes a late one) is then the
    same as when its row was written at once."""
    last: dict[uuid.UUID, dict[str, Any]] = {}
    before: dict[uuid.UUID, dict[str, Any]] = {}
    for reminder in reminders:
        key = reminder["assignment_id"]
        if key in last:
            before[key] = last[key]
        last[key] = reminder
    carried = set()
    for key, previous in before.items():
        if previous["status"] == "pending":
            previous["next_due_at"] = last[key]["due_at"]
            carried.add(id(last[key]))
    return [reminder for reminder in reminders if id(reminder) not in carried]


def _enqueue_due_now(
    reminders: list[dict[str, Any]], opened: dict[uuid.UUID, Any], now: datetime
) -> None:
    """Decide now, as ``enqueue_due_reminders`` would a moment later, about the reminders of the
    questionnaires just opened that are already due, before their rows are written
    (``reminders`` are updated in place): each is written once, enqueued (or superseded, or
    moved out of quiet hours), instead of written ``pending``, claimed and rewritten by that
    job (a fifth of the database's work per reminder of a busy minute). The questionnaire is
    open and its patient followed (the opening's claim says so), and its lock rules out a twin.
    A reminder whose message cannot be built stays ``pending``: the job postpones it."""
    rungs: dict[uuid.UUID, list[dict[str, Any]]] = defaultdict(list)
    for reminder in reminders:
        rungs[reminder["assignment_id"]].append(reminder)
    due: list[tuple[dict[str, Any], PatientMessage]] = []
    for reminder in reminders:
        if reminder["due_at"] > now:
            continue
        row = opened[reminder["assignment_id"]]
        if any(
            other["rung"] > reminder["rung"] and other["due_at"] <= now + SUPERSEDE_WITHIN
            for other in rungs[reminder["assignment_id"]]
        ):
            reminder.update(status="expired", reason="superseded")
            continue
        if (quiet_end := sendable_at(now, row.timezone)) > now:
            reminder["due_at"] = quiet_end
            continue
        patient = _Recipient(
            row.patient_id, row.site_id, row.locale, row.contact_channels, "active", row.timezone
        )
        try:
            message = _reminder_message(reminder["id"], row.id, row.closes_at, patient)
        except Exception as exc:  # noqa: BLE001 - left pending: the reminder job postpones it
            log.debug("reminder left to the reminder job (%s)", type(exc).__name__)
            continue
        due.append((reminder, message))
    ids = enqueue_patient_notifications([message for _, message in due], now=now)
    for (reminder, _), notification_id in zip(due, ids, strict=True):
        if notification_id is None:
            reminder.update(status="skipped", reason="no_contact_channel")
        else:
            reminder.update(status="enqueued", notification_id=notification_id)


def close_expired_assignments(now: datetime, *, limit: int) -> int:
    """Mark ``missed`` the questionnaires whose window closed unanswered; send
    ``questionnaire_missed`` for each."""
    assignments = _claim_assignments(
        [Assignment.status.in_(("pending", "open")), Assignment.closes_at <= now],
        Assignment.closes_at,
        limit,
    )
    if not assignments:
        return 0
    patients = _patients({a.patient_id for a in assignments})
    closed = 0
    for assignment in assignments:
        # One savepoint each: a receiver that fails leaves its questionnaire open for the next pass
        # (logged, retried) without holding back the others.
        try:
            with db.session.begin_nested():
                _close(assignment, patients[assignment.patient_id], now)
        except Exception:
            log.exception("could not mark a questionnaire missed", extra={"id": str(assignment.id)})
            continue
        closed += 1
    return closed


def _close(assignment: Assignment, patient: Patient, now: datetime) -> None:
    followed = patient.followed
    if followed:
        assignment.status = "missed"
    else:
        # Not owed: its window passed while the follow-up was suspended (or it had ended and
        # this one escaped the cancellation). Nothing is missed, no no_response follows.
        assignment.status = "cancelled"
        assignment.status_reason = (
            f"passed_while_{patient.status}"
            if patient.status in SUSPENDED_STATUSES
            else f"patient_{patient.status}"
        )
    assignment.status_changed_at = now
    # Its reminders still waiting will never be useful.
    pending = db.session.execute(
        db.select(Reminder).where(
            Reminder.assignment_id == assignment.id, Reminder.status == "pending"
        )
    ).scalars()
    for reminder in pending:
        if followed:
            _settle(reminder, "expired", "questionnaire_closed", now)
        else:
            _settle(reminder, "skipped", f"patient_{patient.status}", now)
    if followed:
        signals.send(signals.questionnaire_missed, assignment=assignment, patient=patient, now=now)
    db.session.flush()


def on_follow_up_stopped(
    _app: object, *, patient: Patient, now: datetime, ended: bool, reason: str
) -> None:
    """``follow_up_stopped`` receiver: an ended follow-up's waiting reminders are skipped at
    once (a suspended one's are skipped when due, in case it resumes first)."""
    if not ended:
        return
    db.session.execute(
        sa.update(Reminder)
        .where(Reminder.patient_id == patient.id, Reminder.status == "pending")
        .values(status="skipped", reason=reason, updated_at=now)
        .execution_options(synchronize_session=False)
    )


@dataclass(frozen=True)
class _Questionnaire:
    status: str
    closes_at: datetime


@dataclass(frozen=True)
class _Rung:
    rung: int
    due_at: datetime


@dataclass(frozen=True)
class _Recipient:
    """What deciding about a reminder needs of its patient (a ``PatientRecipient``)."""

    id: uuid.UUID
    site_id: uuid.UUID
    locale: str
    contact_channels: list[str]
    status: str
    timezone: str


def enqueue_due_reminders(now: datetime, *, limit: int) -> int:
    """Turn due reminders into outbox notifications, or say why not (skipped, expired)."""
    # Columns, not entities, here too: what becomes of each claimed reminder is written in a
    # few set-based statements (``_Outcomes``), never through the unit of work.
    reminders = db.session.execute(
        db.select(
            Reminder.id,
            Reminder.assignment_id,
            Reminder.patient_id,
            Reminder.rung,
            Reminder.next_due_at,
        )
        .where(Reminder.status == "pending", Reminder.due_at <= now)
        .order_by(Reminder.due_at, Reminder.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    if not reminders:
        return 0
    # The batch's questionnaires, patients and later rungs are read, never changed, and building
    # hundreds of ORM objects for them was a third of this job's time.
    assignment_ids = {r.assignment_id for r in reminders}
    assignments = {
        row.id: _Questionnaire(row.status, row.closes_at)
        for row in db.session.execute(
            db.select(Assignment.id, Assignment.status, Assignment.closes_at).where(
                among(db.session, Assignment.id, assignment_ids)
            )
        )
    }
    patients = {
        row.id: _Recipient(*row)
        for row in db.session.execute(
            db.select(
                Patient.id,
                Patient.site_id,
                Patient.locale,
                Patient.contact_channels,
                Patient.status,
                Patient.timezone,
            ).where(among(db.session, Patient.id, {r.patient_id for r in reminders}))
        )
    }
    # Later rungs of the same questionnaires, to let a late reminder give way to the next one:
    # the pending rows, and the rung a pending row carries (not written yet).
    later: dict[uuid.UUID, list[_Rung]] = defaultdict(list)
    for row in db.session.execute(
        db.select(
            Reminder.assignment_id, Reminder.rung, Reminder.due_at, Reminder.next_due_at
        ).where(
            among(db.session, Reminder.assignment_id, assignment_ids), Reminder.status == "pending"
        )
    ):
        later[row.assignment_id].append(_Rung(row.rung, row.due_at))
        if row.next_due_at is not None:
            later[row.assignment_id].append(_Rung(row.rung + 1, row.next_due_at))
    outcomes = _Outcomes()
    messages: list[tuple[_DueReminder, PatientMessage]] = []
    for reminder in reminders:
        try:
            message = _decide(reminder, assignments, patients, later, now, outcomes)
        except Exception as exc:  # noqa: BLE001 - one bad row must not block the others
            log.error(
                "reminder could not be handled (%s); postponed",
                type(exc).__name__,
                extra={"id": str(reminder.id)},
            )
            outcomes.postponed.append({"id": reminder.id, "due_at": now + POISON_DELAY})
            continue
        if message is not None:
            messages.append((reminder, message))
    # These reminder rows are locked: each is enqueued once (the unique dedupe key stands behind).
    ids = enqueue_patient_notifications([m for _, m in messages], now=now)
    enqueued: list[dict[str, object]] = []
    for (due, _), notification_id in zip(messages, ids, strict=True):
        if notification_id is None:
            outcomes.settle(due, "skipped", "no_contact_channel")
        else:
            enqueued.append({"id": due.id, "notification_id": notification_id})
        outcomes.ladder_goes_on.append(due)
    table = Reminder.__table__
    # The next rungs these settled reminders carried, written now (pending, at their planned
    # time): their rows are locked, so each next rung is written once.
    insert_rows(
        db.session,
        table,
        [
            _pending_reminder(
                settled.assignment_id,
                settled.patient_id,
                settled.rung + 1,
                settled.next_due_at,
                now,
            )
            for settled in outcomes.ladder_goes_on
            if settled.next_due_at is not None
        ],
    )
    # Nearly every row: one statement for the batch.
    update_rows(db.session, table, enqueued, status="enqueued", reason=None, updated_at=now)
    update_rows(db.session, table, outcomes.settled, updated_at=now)
    update_rows(db.session, table, outcomes.waiting, updated_at=now)
    update_rows(db.session, table, outcomes.postponed, reason="internal_error", updated_at=now)
    return len(reminders)


class _DueReminder(Protocol):
    """A claimed reminder, as the enqueue reads it (a row of columns)."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def assignment_id(self) -> uuid.UUID: ...
    @property
    def patient_id(self) -> uuid.UUID: ...
    @property
    def rung(self) -> int: ...
    @property
    def next_due_at(self) -> datetime | None: ...


@dataclass
class _Outcomes:
    """What the claimed reminders that are not enqueued become, written per kind in one
    statement each (rows for ``update_rows``)."""

    settled: list[dict[str, object]] = field(default_factory=list)  # status and reason
    waiting: list[dict[str, object]] = field(default_factory=list)  # due again after quiet hours
    postponed: list[dict[str, object]] = field(default_factory=list)  # could not be handled
    # Settled, with the questionnaire still wanting reminders: the rung a row carries follows.
    ladder_goes_on: list[_DueReminder] = field(default_factory=list)

    def settle(self, reminder: _DueReminder, status: str, reason: str | None) -> None:
        self.settled.append({"id": reminder.id, "status": status, "reason": reason})


WANTED_PREFIX = "questionnaire:"


def wanted_key(assignment_id: uuid.UUID) -> str:
    """The name under which the outbox asks whether a reminder is still wanted."""
    return f"{WANTED_PREFIX}{assignment_id.hex}"


def assignment_of(key: str) -> uuid.UUID | None:
    """The questionnaire a ``wanted_key`` names (None: a key about something else)."""
    if not key.startswith(WANTED_PREFIX):
        return None
    try:
        return uuid.UUID(hex=key[len(WANTED_PREFIX) :])
    except ValueError:
        return None


def unwanted_reminders(
    _app: object, *, keys: set[str], now: datetime
) -> dict[str, tuple[str, str]]:
    """``outbox_still_wanted`` receiver: the reminders whose questionnaire no longer needs them
    (answered, cancelled, closed), one query for the whole batch."""
    ids = {found: key for key in keys if (found := assignment_of(key)) is not None}
    if not ids:
        return {}
    verdicts = {}
    for row in db.session.execute(
        db.select(Assignment.id, Assignment.status, Assignment.closes_at).where(
            among(db.session, Assignment.id, ids)
        )
    ):
        # questionnaires.planning owns the decision; the outbox's words for it are its statuses.
        unneeded = message_no_longer_needed(row.status, row.closes_at, now)
        if unneeded is not None:
            status = "expired" if unneeded == QUESTIONNAIRE_CLOSED else "cancelled"
            verdicts[ids[row.id]] = (status, unneeded)
    return verdicts


def _decide(
    reminder: _DueReminder,
    assignments: dict[uuid.UUID, _Questionnaire],
    patients: dict[uuid.UUID, _Recipient],
    later: dict[uuid.UUID, list[_Rung]],
    now: datetime,
    outcomes: _Outcomes,
) -> PatientMessage | None:
    """The notification one due reminder becomes, or None when ``outcomes`` says what instead."""
    assignment = assignments[reminder.assignment_id]
    patient = patients[reminder.patient_id]
    unneeded = message_no_longer_needed(assignment.status, assignment.closes_at, now)
    if unneeded is not None:
        outcomes.settle(
            reminder, "expired" if unneeded == QUESTIONNAIRE_CLOSED else "skipped", unneeded
        )
    elif patient.status != "active":
        # A suspended follow-up may resume before the next rung is due: it is sent then.
        outcomes.settle(reminder, "skipped", f"patient_{patient.status}")
        outcomes.ladder_goes_on.append(reminder)
    elif any(
        o.rung > reminder.rung and o.due_at <= now + SUPERSEDE_WITHIN
        for o in later[reminder.assignment_id]
    ):
        outcomes.settle(reminder, "expired", "superseded")
        outcomes.ladder_goes_on.append(reminder)
    elif (quiet_end := sendable_at(now, patient.timezone)) > now:
        # Late (the scheduler was down or behind) and now inside quiet hours: wait.
        outcomes.waiting.append({"id": reminder.id, "due_at": quiet_end})
    else:
        return _reminder_message(reminder.id, reminder.assignment_id, assignment.closes_at, patient)
    return None


def _reminder_message(
    reminder_id: uuid.UUID, assignment_id: uuid.UUID, closes_at: datetime, patient: _Recipient
) -> PatientMessage:
    return PatientMessage(
        patient,
        kind="questionnaire_reminder",
        text_key="questionnaire_reminder",
        dedupe_key=f"reminder:{reminder_id}",
        link=questionnaire_link(assignment_id),
        # On the phone, a later reminder of one questionnaire replaces the earlier one.
        collapse_key=f"questionnaire-{assignment_id}",
        expires_at=closes_at,
        wanted_key=wanted_key(assignment_id),
    )


def _settle(reminder: Reminder, status: str, reason: str | None, now: datetime) -> None:
    reminder.status = status
    reminder.reason = reason
    reminder.updated_at = now
