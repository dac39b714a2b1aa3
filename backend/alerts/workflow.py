"""The nurses' work at ward scale: ownership, snooze, renegotiated targets, bulk acknowledge,
call attempts, read state, the handover (docs/nurse-workflow.md).

Each change is an ``AlertEvent`` of the alert's history (so the history is the reassignment
history too) and one audit row, by the nurse who made it. Ownership changes are a conditional
``UPDATE`` (``WHERE owner_id IS <the owner the nurse saw>``): of two nurses taking the same alert
at once, the database lets one UPDATE match and the other finds no row, whatever the backend
(PostgreSQL re-checks the condition after the first commit; SQLite serialises writers). The
other changes of one alert (snooze, target, call, and acknowledge and resolve in
``backend.alerts.services``) work on an alert read with ``SELECT ... FOR UPDATE``
(``get_alert(..., for_update=True)``), as the bulk acknowledge reads its alerts: the second
nurse waits for the first's commit, then sees the alert as it now stands.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy import orm

from backend.alerts.models import Alert, AlertEvent, HandoverNote
from backend.alerts.services import _audit, _event, acknowledge, add_note
from backend.audit.services import record
from backend.auth.models import AuthSession, User
from backend.auth.principal import Principal
from backend.errors import Conflict, NotFound, ValidationProblem
from backend.extensions import db

CALL_RESULTS = ("no_answer", "spoke")
BULK_LIMIT = 100  # ids in one bulk acknowledge
HANDOVER_LIST_LIMIT = 50  # alerts in each list of the handover
DEFAULT_SHIFT_HOURS = 12  # "since my last shift" when the nurse has no earlier sign-in


def _name(user: User | None) -> str:
    return (user.full_name or user.email) if user else ""


def _wake(alert: Alert) -> None:
    """A nurse acted on the alert: it leaves the "back from snooze" place at the top."""
    if alert.snoozed_until is not None:
        alert.snoozed_until, alert.snooze_reason = None, None


# --- ownership ----------------------------------------------------------------------------------


def assignable(principal: Principal, user_id: uuid.UUID) -> User | None:
    """An active nurse of the caller's site (or the caller, whatever their role)."""
    user = db.session.get(User, user_id)
    if user is None or user.site_id != principal.site_id or not user.is_active:
        return None
    if user.id != principal.id and user.role != "nurse":
        return None
    return user


def site_nurses(principal: Principal) -> list[User]:
    """The nurses an alert can be assigned to, by name (one query)."""
    return list(
        db.session.execute(
            db.select(User)
            .filter_by(site_id=principal.site_id, role="nurse", is_active=True)
            .order_by(User.full_name, User.email)
        ).scalars()
    )


def set_owner(
    principal: Principal,
    alert: Alert,
    user_id: uuid.UUID | None,
    expected_owner_id: uuid.UUID | None,
    now: datetime,
) -> Alert:
    """Give the alert to ``user_id`` (None: hand it back to the shared queue), provided its owner
    is still ``expected_owner_id`` (the one the nurse saw; None: nobody). 409 otherwise, naming
    who has it now; nothing is written."""
    if alert.status == "resolved":
        raise Conflict("The alert is resolved: it has no owner any more.")
    target = None
    if user_id is not None:
        target = assignable(principal, user_id)
        if target is None:
            raise ValidationProblem(
                [{"pointer": "/user_id", "detail": "is not an active nurse of your site"}]
            )
    if user_id == expected_owner_id and alert.owner_id == user_id:
        return alert  # already so: nothing happened, nothing to record
    db.session.flush()
    same = (
        Alert.owner_id.is_(None)
        if expected_owner_id is None
        else Alert.owner_id == expected_owner_id
    )
    changed = db.session.execute(
        sa.update(Alert)
        .where(Alert.id == alert.id, Alert.status != "resolved", same)
        .values(
            owner_id=user_id,
            owned_since=now if user_id else None,
            snoozed_until=None,
            snooze_reason=None,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    db.session.refresh(alert)
    if changed != 1:
        holder = db.session.get(User, alert.owner_id) if alert.owner_id else None
        detail = (
            f"The alert is already taken by {_name(holder)}."
            if holder
            else "The alert was handed back to the shared queue in the meantime."
        )
        raise Conflict(
            detail,
            extra={"owner": {"id": str(holder.id), "full_name": _name(holder)} if holder else None},
        )
    if user_id is None:
        action = "released"
    elif user_id == principal.id:
        action = "taken"
    else:
        action = "assigned"
    details = {
        "from": str(expected_owner_id) if expected_owner_id else None,
        "to": str(user_id) if user_id else None,
    }
    _event(alert, action, principal.id, now, details)
    _audit("alert.owner", alert, principal, now, {"action": action, **details})
    db.session.flush()
    db.session.refresh(alert, ["history"])
    return alert


# --- snooze and target --------------------------------------------------------------------------


def snooze_limit(severity: str) -> timedelta | None:
    """The longest snooze of a severity (None: never, urgent)."""
    hours: Mapping[str, int] = current_app.config["ALERT_SNOOZE_MAX_HOURS"]
    return timedelta(hours=hours[severity]) if severity in hours else None


def snooze(
    principal: Principal, alert: Alert, until: datetime, reason: str, now: datetime
) -> Alert:
    """Put the alert aside until ``until``; its target (``due_at``) does not move. The caller
    has locked the alert (``get_alert(..., for_update=True)``)."""
    if alert.status == "resolved":
        raise Conflict("A resolved alert cannot be snoozed.")
    limit = snooze_limit(alert.severity)
    if limit is None:
        raise Conflict("An urgent alert cannot be snoozed.")
    if until <= now:
        raise ValidationProblem([{"pointer": "/until", "detail": "must be in the future"}])
    if until > now + limit:
        hours = int(limit.total_seconds() // 3600)
        raise ValidationProblem(
            [
                {
                    "pointer": "/until",
                    "detail": f"is beyond the longest snooze of a {alert.severity} alert "
                    f"({hours} hours)",
                }
            ]
        )
    alert.snoozed_until, alert.snooze_reason, alert.updated_at = until, reason, now
    details = {"until": until.isoformat(), "reason": reason}
    _event(alert, "snoozed", principal.id, now, details)
    _audit("alert.snooze", alert, principal, now, details)
    db.session.flush()
    db.session.refresh(alert, ["history"])
    return alert


def renegotiate_target(
    principal: Principal, alert: Alert, due_at: datetime, reason: str, now: datetime
) -> Alert:
    """Move the time by which the open alert must be acknowledged, with the reason (the caller
    has locked the alert)."""
    if alert.status != "open":
        raise Conflict(f"An alert that is {alert.status} has no target to renegotiate.")
    if due_at <= now:
        raise ValidationProblem([{"pointer": "/due_at", "detail": "must be in the future"}])
    details = {"from": alert.due_at.isoformat(), "to": due_at.isoformat(), "reason": reason}
    alert.due_at, alert.updated_at = due_at, now
    _event(alert, "target_renegotiated", principal.id, now, details)
    _audit("alert.target", alert, principal, now, details)
    db.session.flush()
    db.session.refresh(alert, ["history"])
    return alert


# --- bulk acknowledge ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BulkResult:
    acknowledged: list[Alert]
    unchanged: list[Alert]


def acknowledge_selected(
    principal: Principal, alert_ids: Sequence[uuid.UUID], comment: str, now: datetime
) -> BulkResult:
    """Acknowledge exactly these alerts, each with the comment as a note, each audited.

    An id that is not an alert of the caller's site is a 404 naming it, and nothing changes.
    An alert someone already acknowledged or resolved meanwhile is left as it is and listed in
    ``unchanged``. There is no "acknowledge all": only the ids sent are touched.
    """
    found = {
        a.id: a
        for a in db.session.execute(
            db.select(Alert)
            .filter(Alert.id.in_(alert_ids), Alert.site_id == principal.site_id)
            .with_for_update()
        ).scalars()
    }
    missing = [
        {"pointer": f"/alert_ids/{i}", "detail": "is not an alert of your site"}
        for i, alert_id in enumerate(alert_ids)
        if alert_id not in found
    ]
    if missing:
        raise NotFound(errors=missing)
    acknowledged, unchanged = [], []
    for alert_id in alert_ids:
        alert = found[alert_id]
        if alert.status != "open":
            unchanged.append(alert)
            continue
        acknowledge(principal, alert, now)
        _wake(alert)
        add_note(principal, alert, comment, now, audit=False)
        acknowledged.append(alert)
    if acknowledged:
        record(
            "alert.acknowledge.bulk",
            now=now,
            actor=principal,
            resource_type="alert",
            details={
                "alert_ids": [str(a.id) for a in acknowledged],
                "unchanged_ids": [str(a.id) for a in unchanged],
                "patient_ids": sorted({str(a.patient_id) for a in acknowledged}),
            },
        )
    return BulkResult(acknowledged, unchanged)


# --- call attempts ------------------------------------------------------------------------------


def record_call(
    principal: Principal, alert: Alert, result: str, note: str | None, now: datetime
) -> Alert:
    """One attempt to call the patient back: no answer, or spoke (several are common). The
    caller has locked the alert, so two attempts at once are numbered one after the other."""
    if alert.status == "resolved":
        raise Conflict("The alert is resolved; add a note instead.")
    if result not in CALL_RESULTS:
        raise ValidationProblem([{"pointer": "/result", "detail": "is not a call result"}])
    attempt = 1 + sum(1 for e in alert.history if e.action == "call_attempt")
    details: dict[str, Any] = {"result": result, "attempt": attempt}
    _wake(alert)
    alert.updated_at = now
    _event(alert, "call_attempt", principal.id, now, details)
    _audit("alert.call", alert, principal, now, details)
    if note:
        add_note(principal, alert, note, now, audit=False)
    db.session.flush()
    db.session.refresh(alert, ["history", "notes"])
    return alert


def calls_of(alert: Alert) -> list[AlertEvent]:
    return [e for e in alert.history if e.action == "call_attempt"]


# --- read state ---------------------------------------------------------------------------------


def mark_seen(principal: Principal, alert: Alert, now: datetime) -> None:
    """The first of the team to open the alert takes its "new" mark off (one UPDATE, at most)."""
    if alert.seen_at is not None:
        return
    db.session.execute(
        sa.update(Alert)
        .where(Alert.id == alert.id, Alert.seen_at.is_(None))
        .values(seen_at=now, seen_by_id=principal.id)
        .execution_options(synchronize_session=False)
    )
    # The row has them now; the loaded alert shows them without another statement or flush.
    orm.attributes.set_committed_value(alert, "seen_at", now)
    orm.attributes.set_committed_value(alert, "seen_by_id", principal.id)


# --- handover -----------------------------------------------------------------------------------


def last_shift_start(principal: Principal, now: datetime) -> datetime:
    """When the nurse's previous sign-in began (the one before this session); without one,
    ``DEFAULT_SHIFT_HOURS`` ago."""
    current = db.session.get(AuthSession, principal.session_id)
    before = current.created_at if current else now
    previous = db.session.execute(
        db.select(sa.func.max(AuthSession.created_at)).where(
            AuthSession.user_id == principal.id, AuthSession.created_at < before
        )
    ).scalar()
    return previous or now - timedelta(hours=DEFAULT_SHIFT_HOURS)


def _unresolved(principal: Principal) -> sa.Select[tuple[Alert]]:
    return (
        sa.select(Alert)
        .filter(Alert.site_id == principal.site_id, Alert.status != "resolved")
        .options(orm.lazyload(Alert.notes), orm.lazyload(Alert.history))
    )


def handover(principal: Principal, now: datetime) -> dict[str, Any]:
    """What a shift starts with: counts of what is open, the overdue alerts, mine, the snoozed
    ones by the time they come back, the new ones since my last shift, the notes left."""
    since = last_shift_start(principal, now)
    counts = {
        (severity, status): n
        for severity, status, n in db.session.execute(
            db.select(Alert.severity, Alert.status, sa.func.count())
            .filter(Alert.site_id == principal.site_id, Alert.status != "resolved")
            .group_by(Alert.severity, Alert.status)
        ).all()
    }
    by_queue = (Alert.severity_rank, Alert.created_at, Alert.id)
    limit = HANDOVER_LIST_LIMIT
    session = db.session
    overdue = list(
        session.execute(
            _unresolved(principal)
            .filter(Alert.status == "open", Alert.due_at <= now)
            .order_by(*by_queue)
            .limit(limit)
        ).scalars()
    )
    mine = list(
        session.execute(
            _unresolved(principal).filter(Alert.owner_id == principal.id).order_by(*by_queue)
        ).scalars()
    )[:limit]
    snoozed = list(
        session.execute(
            _unresolved(principal)
            .filter(Alert.snoozed_until.is_not(None))
            .order_by(Alert.snoozed_until, Alert.id)
            .limit(limit)
        ).scalars()
    )
    new = list(
        session.execute(
            _unresolved(principal)
            .filter(Alert.created_at >= since)
            .order_by(*by_queue)
            .limit(limit)
        ).scalars()
    )
    notes = list(
        session.execute(
            db.select(HandoverNote)
            .filter(
                HandoverNote.site_id == principal.site_id,
                sa.or_(HandoverNote.read_at.is_(None), HandoverNote.created_at >= since),
            )
            .order_by(HandoverNote.created_at.desc())
            .limit(10)
        ).scalars()
    )
    return {
        "since": since,
        "open": [
            {
                "severity": severity,
                "open": counts.get((severity, "open"), 0),
                "acknowledged": counts.get((severity, "acknowledged"), 0),
            }
            for severity in ("urgent", "high", "routine")
        ],
        "overdue": overdue,
        "mine": mine,
        "snoozed": snoozed,
        "new": new,
        "notes": notes,
    }


def write_note(principal: Principal, text: str, now: datetime) -> HandoverNote:
    note = HandoverNote(
        site_id=principal.site_id, author_id=principal.id, text=text, created_at=now
    )
    db.session.add(note)
    db.session.flush()
    record(
        "handover.note",
        now=now,
        actor=principal,
        resource_type="handover_note",
        resource_id=note.id,
    )
    return note


def get_note(principal: Principal, note_id: uuid.UUID) -> HandoverNote:
    note = db.session.get(HandoverNote, note_id)
    if note is None or note.site_id != principal.site_id:
        raise NotFound()
    return note


def confirm_note(principal: Principal, note: HandoverNote, now: datetime) -> HandoverNote:
    """The next shift confirms having read the note (the first reader's name stays)."""
    if note.author_id == principal.id:
        raise Conflict("The author of a handover note cannot confirm having read it.")
    if note.read_at is None:
        changed = db.session.execute(
            sa.update(HandoverNote)
            .where(HandoverNote.id == note.id, HandoverNote.read_at.is_(None))
            .values(read_at=now, read_by_id=principal.id)
            .execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]
        db.session.refresh(note)
        if changed == 1:
            record(
                "handover.note.read",
                now=now,
                actor=principal,
                resource_type="handover_note",
                resource_id=note.id,
            )
    return note
