"""The alert engine wired to the database, and the triage workflow.

``evaluate_patient`` is called in the transaction that stored a response (any source) or marked a
questionnaire missed. Its result is that of the patient's whole history under the pure rules
(``backend.alerts.rules``), so it is the same whatever the order in which answers arrived, and a
replay changes nothing:

1. Facts: the procedure and baseline, every response in answered order, every missed
   questionnaire. A new answer that is the latest is folded into the state kept from the
   earlier ones (``RuleState``, ``_incremental``), which gives the same signals as the whole
   history (docs/alerts.md, "Incremental evaluation"); otherwise the history is read whole.
2. ``evaluate`` gives the signals; ``reconcile`` groups them, per kind, into the episode after the
   last resolution of that kind (only answers given after a resolution open a new alert).
3. Each episode becomes, or updates, the one unresolved alert of its kind: new evidence is added,
   severity may rise, never fall. An alert already raised is never withdrawn by a later answer
   (a nurse may be acting on it); its evidence says what was known when.
4. Confirmation check-ins the rules ask for are planned (unless a questionnaire opens sooner),
   and pending ones are cancelled once the alert they would confirm is open.
5. New alerts are announced to the site's nurses through the outbox, without health content.
"""

from __future__ import annotations

import dataclasses
import functools
import statistics
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app, g
from sqlalchemy import orm
from sqlalchemy.orm.attributes import set_committed_value

from backend import signals
from backend.alerts import versions, wording
from backend.alerts.models import (
    ALERT_STATUSES,
    OUTCOMES,
    SEVERITY_RANK,
    SYSTEM_OUTCOMES,
    Alert,
    AlertEvent,
    AlertNote,
    RuleState,
)
from backend.alerts.rules import (
    ENGINE,
    AlertPlan,
    ConfirmationRequest,
    Fold,
    MissedFacts,
    ProcedureFacts,
    ResponseFacts,
    RuleSet,
    evaluate,
    fold,
    reconcile,
)
from backend.audit.services import insert_event, record
from backend.auth.principal import Principal
from backend.db import upsert_insert
from backend.errors import Conflict, NotFound, ValidationProblem
from backend.extensions import db
from backend.locales import pick
from backend.pagination import decode_cursor, encode_cursor
from backend.patients.models import Patient, Procedure
from backend.questionnaires.models import Assignment, Response
from backend.questionnaires.planning import local_instant
from backend.questionnaires.vocabulary import AID_LEVELS, ANALGESIC_STEPS

CONFIRMING_KINDS = ("possible_screw_loosening", "pain_recurrence")


def _step(value: str | None, scale: tuple[str, ...]) -> int | None:
    return scale.index(value) if value in scale else None


def procedure_facts(procedure: Procedure) -> ProcedureFacts:
    return ProcedureFacts(
        kind=procedure.kind,
        discharged_on=procedure.discharged_on,
        baseline_pain_walking=procedure.baseline_pain_walking,
        baseline_pain_rest=procedure.baseline_pain_rest,
        baseline_mobility=procedure.baseline_mobility_score,
        baseline_analgesic_step=_step(procedure.baseline_analgesics, ANALGESIC_STEPS),
        baseline_aid_level=_step(procedure.baseline_walking_aid, AID_LEVELS),
    )


def response_facts(response: Any) -> ResponseFacts:
    """The rules' view of a response (a ``Response`` or a row of its columns)."""
    answers, scores = response.answers, response.scores
    return ResponseFacts(
        id=str(response.id),
        answered_at=response.answered_at,
        day=response.day,
        pain_walking=answers["pain_walking"],
        pain_rest=answers["pain_rest"],
        analgesic_step=scores["analgesic_step"],
        aid_level=scores["aid_level"],
        fell=answers["fell"],
        symptoms=frozenset(answers["symptoms"]),
        change=answers["change"],
        call_request=answers["call_request"],
        mobility_score=scores.get("mobility_score"),
    )


def _target(severity: str) -> timedelta:
    hours: Mapping[str, int] = current_app.config["ALERT_TARGET_HOURS"]
    return timedelta(hours=hours[severity])


def evaluate_patient(
    patient: Patient, procedure: Procedure, now: datetime, response: Response | None = None
) -> list[Alert]:
    """Re-evaluate the patient's history and bring the alerts up to date (flush only).

    ``response``: the answer just stored, if that is why. When it is the latest of its
    procedure, the kept state (``RuleState``) plus this answer gives the evaluation without
    reading the history (``_incremental``); otherwise the history is evaluated whole.
    """
    db.session.flush()
    statements = _statements()
    # The site's rule versions and the procedure's missed questionnaires in one statement (one
    # row with no questionnaire when none was missed).
    read = db.session.execute(
        statements.missed, {"procedure_id": procedure.id, "site_id": patient.site_id}
    ).all()
    facts = procedure_facts(procedure)
    missed_list = [
        MissedFacts(str(a.id), a.day, a.closes_at, a.reason)
        for a in read
        if a.id is not None and a.closes_at <= now
    ]
    rules, candidate = versions.rules_of(read[0])
    state: Fold | None = None
    kept: sa.Row[Any] | None = None
    if response is not None and candidate is None:
        kept, state = _incremental(procedure, facts, rules, response)
    # The alerts, and the count of the procedure's answers, in one statement (one row with no
    # alert when there is none); after the kept state's lock (see ``_incremental``).
    rows = db.session.execute(
        statements.alerts, {"patient_id": patient.id, "procedure_id": procedure.id}
    ).all()
    alerts = [alert for alert, _stored in rows if alert is not None]
    if state is not None and response is not None:
        # Counted after the lock: every answer committed before it is counted, and the state
        # written last holds only committed answers, so equal counts mean the same answers.
        if rows[0].stored != state.count + 1:
            state = None  # an answer the state has not folded (a concurrent first evaluation)
        else:
            state.add(_read_back(response))
    if state is not None:
        evaluation = state.finish(missed_list)
    else:
        # The history as the columns the rules read, not as entities: nothing here changes an
        # answer or a questionnaire, and building the ORM objects of a year of answers at every
        # new answer was most of recording one.
        responses = db.session.execute(
            db.select(
                Response.id, Response.answered_at, Response.day, Response.answers, Response.scores
            ).filter_by(procedure_id=procedure.id)
        ).all()
        response_list = [response_facts(r) for r in responses]
        folded = fold(facts, response_list, rules)
        evaluation = folded.finish(missed_list)
    resolutions: dict[str, list[datetime]] = {}
    for known in alerts:
        if known.status == "resolved" and known.resolved_at is not None:
            resolutions.setdefault(known.kind, []).append(known.resolved_at)
    if response is not None:  # the state for the next answer, without what is settled
        if state is not None and kept is not None:
            state.forget(resolutions)
            _write_state(procedure, kept, state, now)
        else:
            folded.forget(resolutions)
            _keep(procedure, facts, folded, now)
    changed = []
    unresolved = {a.kind: a for a in alerts if a.status != "resolved"}
    missing = unresolved.get("no_response")
    # What the open no_response alert says of another procedure's schedule (a patient followed
    # after two procedures): this evaluation neither answers nor replaces it.
    elsewhere = _missed_elsewhere(missing, procedure, missed_list) if missing else []
    planned = set()
    for plan in reconcile(evaluation.signals, resolutions):
        if plan.kind == "no_response" and not patient.followed:
            continue  # a suspended or ended follow-up owes nothing
        planned.add(plan.kind)
        alert = _apply_plan(patient, plan, unresolved.get(plan.kind), now, elsewhere)
        if alert is not None:
            changed.append(alert)
            unresolved[plan.kind] = alert
    stale = unresolved.get("no_response")
    if stale is not None and "no_response" not in planned:
        if elsewhere:
            # This procedure's missed questionnaires were answered; the other's still wait.
            if _follow_missed(stale, elsewhere, _missed_summary(elsewhere), now) is not None:
                changed.append(stale)
        else:
            # Every questionnaire it was about has now been answered (a late sync, a nurse's
            # entry): no nurse must call a patient who did answer.
            resolve_by_system(stale, "answered_late", "answered_late", now)
            changed.append(stale)
            del unresolved["no_response"]
    _plan_confirmations(patient, procedure, evaluation.confirmation_requests, unresolved, now)
    red_flags = [a for a in [*alerts, *changed] if a.kind == "red_flag"]
    # The patient's latest red flag, for the advice the phone shows (``red_flag_for``): only
    # this engine opens one, so it stays the latest until the next evaluation.
    g._latest_red_flag = (
        patient.id,
        max(red_flags, key=lambda a: (a.created_at, a.id)) if red_flags else None,
    )
    if candidate is not None:  # shadow evaluation: stored for the report, never shown
        shadow = evaluate(facts, response_list, missed_list, candidate)  # whole (see above)
        versions.record_shadow(patient, procedure, shadow, candidate.version, now)
    return changed


def _facts_data(facts: ProcedureFacts) -> dict[str, Any]:
    return dataclasses.asdict(facts) | {"discharged_on": facts.discharged_on.isoformat()}


class _Statements:
    """The statements of an evaluation, built once per process: their values are bound
    parameters, so an answer no longer builds (and hashes) each statement anew."""

    def __init__(self) -> None:
        assignments, states = Assignment.__table__, RuleState.__table__
        procedure_id = sa.bindparam("procedure_id", type_=assignments.c.procedure_id.type)
        one = sa.select(sa.literal(1).label("one")).subquery("one")
        setting = versions.setting_versions().subquery("setting")
        self.missed = (
            sa.select(
                setting.c.active_version,
                setting.c.candidate_version,
                assignments.c.id,
                assignments.c.day,
                assignments.c.closes_at,
                assignments.c.reason,
            )
            .select_from(one)
            .outerjoin(setting, sa.true())
            .outerjoin(
                assignments,
                sa.and_(
                    assignments.c.procedure_id == procedure_id, assignments.c.status == "missed"
                ),
            )
        )
        # Columns, not the entity: the state is written back by an UPDATE of what changed.
        self.kept = (
            sa.select(*(states.c[name] for name in _KEPT_COLUMNS))
            .where(states.c.procedure_id == procedure_id)
            .with_for_update()
        )
        counted = (
            sa.select(sa.func.count().label("stored"))
            .select_from(Response.__table__)
            .where(Response.__table__.c.procedure_id == procedure_id)
            .subquery("counted")
        )
        self.alerts = (
            sa.select(Alert, counted.c.stored)
            .select_from(counted)
            .outerjoin(
                Alert,
                Alert.patient_id == sa.bindparam("patient_id", type_=Alert.patient_id.type),
            )
            .order_by(Alert.created_at)
            # Their notes and history are not needed to decide (loaded if an event is added).
            .options(orm.lazyload(Alert.notes), orm.lazyload(Alert.history))
        )
        self.cancel_confirmations = (
            sa.update(assignments)
            .where(
                assignments.c.procedure_id
                == sa.bindparam("of_procedure_id", type_=assignments.c.procedure_id.type),
                assignments.c.reason == "confirmation",
                assignments.c.status.in_(("pending", "open")),
            )
            .values(
                status="cancelled",
                status_changed_at=sa.bindparam("now", type_=assignments.c.status_changed_at.type),
            )
            .returning(assignments.c.id)
        )


_KEPT_COLUMNS = ("engine", "rule_version", "facts", "responses", "state", "signals", "requests")


@functools.cache
def _statements() -> _Statements:
    return _Statements()


def _incremental(
    procedure: Procedure, facts: ProcedureFacts, rules: RuleSet, response: Response
) -> tuple[sa.Row[Any] | None, Fold | None]:
    """The kept state's row (locked) and the state it holds, which the new answer follows; no
    state when it cannot give the evaluation (none yet; another engine, rule version or
    baseline; an answer arriving after a later one), and the history must be evaluated whole.
    ``evaluate_patient`` then checks that the state folded every other answer (the count) and
    folds the new one in.

    The state's row is locked first: two answers of one procedure at once are evaluated one
    after the other, the second from the state the first wrote. ``Fold`` says why the state
    plus the latest answer equals the whole evaluation; tests/alerts/test_incremental_rules.py
    and tests/alerts/test_rule_states.py check it.
    """
    kept = db.session.execute(_statements().kept, {"procedure_id": procedure.id}).first()
    if (
        kept is None
        or kept.engine != ENGINE
        or kept.rule_version != rules.version
        or kept.facts != _facts_data(facts)
    ):
        return kept, None
    try:
        state = Fold.load(
            {**kept.state, "signals": kept.signals, "requests": kept.requests}, facts, rules
        )
    except (KeyError, TypeError, ValueError):
        return kept, None  # unreadable: evaluated whole, and written again
    if not state.follows(_read_back(response)):
        return kept, None  # an older answer arriving late: the later ones' references move
    return kept, state


def _read_back(response: Response) -> ResponseFacts:
    """The rules' view of the answer just stored, its time in UTC as the history reads it."""
    new = response_facts(response)
    return dataclasses.replace(new, answered_at=new.answered_at.astimezone(UTC))


def _write_state(procedure: Procedure, kept: sa.Row[Any], state: Fold, now: datetime) -> None:
    """Write the state after an incremental evaluation over the row ``_incremental`` locked:
    ``state`` always, the parts (``RuleState.PARTS``) only when they changed (PostgreSQL then
    keeps their TOASTed values as they are)."""
    values: dict[str, Any] = {"responses": state.count, "updated_at": now}
    for name, value in RuleState.columns(state.dump()).items():
        if name == "state" or value != getattr(kept, name):
            values[name] = value
    db.session.execute(
        _state_update(tuple(sorted(values))),
        {**values, "kept_procedure_id": procedure.id},
    )
    _expire_kept(procedure)


@functools.cache
def _state_update(columns: tuple[str, ...]) -> sa.Update:
    table = RuleState.__table__
    return (
        sa.update(table)
        .where(
            table.c.procedure_id
            == sa.bindparam("kept_procedure_id", type_=table.c.procedure_id.type)
        )
        .values({name: sa.bindparam(name, type_=table.c[name].type) for name in columns})
    )


def _expire_kept(procedure: Procedure) -> None:
    kept = db.session.identity_map.get(db.session.identity_key(RuleState, procedure.id))
    if kept is not None:  # a row this session read before: tell it what was written
        db.session.expire(kept)


def _keep(procedure: Procedure, facts: ProcedureFacts, state: Fold, now: datetime) -> None:
    """Write the state after a whole evaluation (insert, or replace the stale one)."""
    values = {
        "procedure_id": procedure.id,
        "engine": ENGINE,
        "rule_version": state.rules.version,
        "facts": _facts_data(facts),
        "responses": state.count,
        **RuleState.columns(state.dump()),
        "updated_at": now,
    }
    statement = upsert_insert(RuleState).values(**values)
    db.session.execute(
        statement.on_conflict_do_update(
            index_elements=[RuleState.procedure_id],
            set_={k: statement.excluded[k] for k in values if k != "procedure_id"},
        ),
        execution_options={"synchronize_session": False},
    )
    _expire_kept(procedure)


def _missed_ids(evidence: Mapping[str, Any]) -> dict[str, int]:
    """assignment id -> day of every missed questionnaire a no_response evidence is about."""
    return {
        m["assignment_id"]: m["day"]
        for signal in evidence.get("signals", [])
        for m in signal.get("missed", [])
    }


def _missed_elsewhere(
    alert: Alert, procedure: Procedure, missed: Sequence[MissedFacts]
) -> list[dict[str, Any]]:
    """The signals of an open no_response alert about another procedure's missed
    questionnaires (a patient followed after two procedures, each with its schedule). One
    query, and only when the alert names a questionnaire this procedure has not missed (one
    answered late, or another procedure's)."""
    signals = alert.evidence.get("signals", [])
    ours = {m.assignment_id for m in missed}
    unknown = {key for key in _missed_ids(alert.evidence) if key not in ours}
    if not unknown:
        return []
    other = {
        str(found)
        for found in db.session.execute(
            sa.select(Assignment.id).where(
                Assignment.id.in_([uuid.UUID(key) for key in unknown]),
                Assignment.procedure_id != procedure.id,
            )
        ).scalars()
    }
    # A signal is about one procedure's run of misses: its last one says which.
    return [s for s in signals if s.get("missed") and s["missed"][-1]["assignment_id"] in other]


def _missed_summary(evidence: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """The summary of the latest of these no_response signals (as the rules word it)."""
    missed = evidence[-1]["missed"]
    return wording.no_response_summary([m["day"] for m in missed], missed[-1]["day"])


def _follow_missed(
    alert: Alert, evidence: list[dict[str, Any]], summary: Mapping[str, str], now: datetime
) -> Alert | None:
    """A no_response alert's evidence and summary are those of the questionnaires still
    missed: a late answer takes its day out, a further miss adds one."""
    before, after = _missed_ids(alert.evidence), _missed_ids({"signals": evidence})
    if before == after:
        return None
    alert.evidence = {"signals": evidence}
    alert.summary = dict(summary)
    alert.updated_at = now
    gone = sorted(before[k] for k in before.keys() - after.keys())
    if gone:
        _event(
            alert,
            "evidence_updated",
            None,
            now,
            {"answered_late_days": gone, "missed_days": sorted(after.values())},
        )
    added = sorted(after[k] for k in after.keys() - before.keys())
    if added:
        _event(alert, "evidence_added", None, now, {"signals": len(added), "days": added})
        if alert.snoozed_until is not None and alert.snoozed_until > now:
            alert.snoozed_until = now  # a further miss ends a snooze: back at the top
            _event(alert, "snooze_ended", None, now, {"reason": "new_evidence"})
    return alert


def resolve_by_system(alert: Alert, outcome: str, reason: str, now: datetime) -> None:
    """Resolve an alert without a nurse (``SYSTEM_OUTCOMES``), with the reason in its history."""
    assert outcome in SYSTEM_OUTCOMES
    alert.status, alert.resolved_at, alert.resolved_by_id = "resolved", now, None
    alert.outcome, alert.updated_at = outcome, now
    alert.snoozed_until, alert.snooze_reason = None, None
    _event(alert, "resolved", None, now, {"outcome": outcome, "reason": reason, "by": "system"})
    _audit(
        "alert.resolve", alert, None, now, {"outcome": outcome, "reason": reason, "by": "system"}
    )


def on_follow_up_stopped(
    _app: object, *, patient: Patient, now: datetime, ended: bool, reason: str
) -> None:
    """``follow_up_stopped`` receiver: the open no_response alert is resolved by the system
    (nobody should call about questionnaires no longer owed); clinical alerts stay."""
    alert = db.session.execute(
        db.select(Alert).filter(
            Alert.patient_id == patient.id,
            Alert.kind == "no_response",
            Alert.status != "resolved",
        )
    ).scalar_one_or_none()
    if alert is not None:
        outcome = "follow_up_ended" if ended else "follow_up_suspended"
        resolve_by_system(alert, outcome, reason, now)


def _apply_plan(
    patient: Patient,
    plan: AlertPlan,
    alert: Alert | None,
    now: datetime,
    elsewhere: Sequence[dict[str, Any]] = (),
) -> Alert | None:
    """Create the alert of an episode, or add its new evidence to the open one (``elsewhere``:
    the open no_response alert's signals about another procedure, kept beside this one's)."""
    evidence = {"signals": plan.evidence}
    if alert is not None and alert.kind == "no_response":
        return _follow_missed(alert, [*elsewhere, *plan.evidence], plan.summary, now)
    if alert is None:
        alert = Alert(
            patient_id=patient.id,
            site_id=patient.site_id,
            kind=plan.kind,
            severity=plan.severity,
            severity_rank=SEVERITY_RANK[plan.severity],
            status="open",
            rule_key=plan.opened_by.rule_key,
            rule_version=plan.rule_version,
            summary=dict(plan.summary),
            evidence=evidence,
            opened_by_response_id=_uuid(plan.opened_by.response_id),
            created_at=now,
            updated_at=now,
            due_at=now + _target(plan.severity),
        )
        db.session.add(alert)
        db.session.flush()
        _event(alert, "opened", None, now, {"severity": plan.severity})
        signals.send(signals.alert_raised, alert=alert, opened=True, now=now)
        return alert
    known = {s.get("response", {}).get("id") for s in alert.evidence.get("signals", [])}
    new = [s for s in plan.evidence if s.get("response", {}).get("id") not in known]
    raised = SEVERITY_RANK[plan.severity] < alert.severity_rank
    if not new and not raised:
        return None
    alert.evidence = {"signals": [*alert.evidence.get("signals", []), *new]}
    alert.summary = dict(plan.summary)
    alert.updated_at = now
    if new:
        _event(alert, "evidence_added", None, now, {"signals": len(new)})
    if alert.snoozed_until is not None and alert.snoozed_until > now:
        # News ends a snooze at once: back now, at the top of its severity.
        alert.snoozed_until = now
        _event(alert, "snooze_ended", None, now, {"reason": "new_evidence"})
    if raised:
        _event(alert, "severity_raised", None, now, {"from": alert.severity, "to": plan.severity})
        alert.severity, alert.severity_rank = plan.severity, SEVERITY_RANK[plan.severity]
        alert.due_at = min(alert.due_at, alert.created_at + _target(plan.severity))
        signals.send(signals.alert_raised, alert=alert, opened=False, now=now)
    elif new and alert.status == "acknowledged":
        # A nurse took it on what it said then: she must hear that there is more (a second red
        # flag while she arranges the first). An open alert is still waiting to be read.
        latest = new[-1].get("response", {}).get("id") or alert.id
        signals.send(signals.alert_news, alert=alert, response_id=str(latest), now=now)
    return alert


def _uuid(value: str | None) -> uuid.UUID | None:
    return uuid.UUID(value) if value else None


def _plan_confirmations(
    patient: Patient,
    procedure: Procedure,
    requests: list[ConfirmationRequest],
    unresolved: Mapping[str, Alert],
    now: datetime,
) -> None:
    """Plan the confirmation check-ins asked for; cancel those an open alert made useless."""
    if any(kind in unresolved for kind in CONFIRMING_KINDS):
        # One UPDATE, not the rows read and flushed back; a row this session holds is told.
        cancelled = db.session.execute(
            _statements().cancel_confirmations, {"of_procedure_id": procedure.id, "now": now}
        ).scalars()
        for assignment_id in cancelled:
            held = db.session.identity_map.get(db.session.identity_key(Assignment, assignment_id))
            if held is not None:
                set_committed_value(held, "status", "cancelled")
                set_committed_value(held, "status_changed_at", now)
        return
    reminder = current_app.config["REMINDER_LOCAL_TIME"]
    zone = ZoneInfo(patient.timezone)
    for request in requests:
        due_on = request.due_on(zone)
        opens_at = local_instant(due_on, reminder, zone)
        if opens_at <= now:
            continue  # a late answer: the moment to confirm has passed
        sooner = db.session.execute(
            db.select(Assignment.id).filter(
                Assignment.procedure_id == procedure.id,
                Assignment.status.in_(("pending", "open")),
                Assignment.opens_at > request.answered_at,
                Assignment.opens_at <= opens_at,
            )
        ).first()
        if sooner:
            continue
        db.session.add(
            Assignment(
                patient_id=patient.id,
                procedure_id=procedure.id,
                instrument_key="checkin",
                instrument_version=1,
                day=(due_on - procedure.discharged_on).days,
                reason="confirmation",
                opens_at=opens_at,
                closes_at=local_instant(due_on + timedelta(days=3), reminder, zone),
                status="pending",
                status_changed_at=now,
                created_at=now,
            )
        )
        db.session.flush()


def _event(
    alert: Alert,
    action: str,
    actor_id: uuid.UUID | None,
    now: datetime,
    details: dict[str, Any] | None = None,
) -> None:
    db.session.add(
        AlertEvent(
            alert_id=alert.id,
            action=action,
            actor_id=actor_id,
            occurred_at=now,
            details=details or {},
        )
    )


# --- receivers: evaluation after a response is stored or a questionnaire is missed ------------


def on_response(
    _app: object, *, response: Response, patient: Patient, procedure: Procedure, now: datetime
) -> None:
    """``response_recorded`` receiver."""
    evaluate_patient(patient, procedure, now, response)


def on_missed(_app: object, *, assignment: Assignment, patient: Patient, now: datetime) -> None:
    """``questionnaire_missed`` receiver."""
    procedure = db.session.get(Procedure, assignment.procedure_id)
    if procedure is not None:
        evaluate_patient(patient, procedure, now)


def red_flag_for(response: Response) -> bool:
    """Whether this response raised (or added to) a red flag: the phone shows the emergency
    advice at once."""
    known = g.get("_latest_red_flag")
    if known is not None and known[0] == response.patient_id:
        alert = known[1]  # the evaluation that just ran knows it (no query)
    else:
        alert = (
            db.session.execute(
                db.select(Alert)
                .filter_by(patient_id=response.patient_id, kind="red_flag")
                .order_by(Alert.created_at.desc(), Alert.id.desc())
            )
            .scalars()
            .first()
        )
    if alert is None:
        return False
    ids = {s.get("response", {}).get("id") for s in alert.evidence.get("signals", [])}
    return str(response.id) in ids


def alerts_reporting(response: Response) -> list[Alert]:
    """The patient's alerts whose evidence cites this response (it opened them or added to
    them), most severe first; one query."""
    alerts = db.session.execute(
        db.select(Alert)
        .filter_by(patient_id=response.patient_id)
        .order_by(Alert.severity_rank, Alert.created_at)
    ).scalars()
    cited = str(response.id)
    return [
        alert
        for alert in alerts
        if any(s.get("response", {}).get("id") == cited for s in alert.evidence.get("signals", []))
    ]


EMERGENCY_ADVICE = {
    "fr": "Ce service n'est pas surveillé jour et nuit. Appelez le 15 (SAMU) maintenant, "
    "ou le 112.",
    "en": "This service is not watched around the clock. Call the emergency number now: "
    "15 in France, 112 in the EU.",
}


# --- triage -----------------------------------------------------------------------------------


def get_alert(principal: Principal, alert_id: uuid.UUID, *, for_update: bool = False) -> Alert:
    """The alert of the caller's site (404 otherwise, as for one that does not exist).

    ``for_update``: before a change (acknowledge, resolve, snooze, target, call), the row is read
    with ``SELECT ... FOR UPDATE``, as the bulk acknowledge reads its alerts. Of two nurses
    changing the same alert at once, the second waits for the first's commit and then checks
    the alert as it now stands: a change no longer allowed is a 409, and only the first is in
    the history and the audit log (PostgreSQL; SQLite has one writer at a time).
    """
    if for_update:
        alert = db.session.get(Alert, alert_id, with_for_update=True, populate_existing=True)
    else:
        alert = db.session.get(Alert, alert_id)
    if alert is None or alert.site_id != principal.site_id:
        raise NotFound()
    return alert


def queue(
    principal: Principal,
    now: datetime,
    *,
    statuses: tuple[str, ...],
    severity: str | None,
    kind: str | None,
    patient_id: uuid.UUID | None,
    limit: int,
    cursor: str | None = None,
    owner: str | None = None,
    snoozed: bool = False,
    columns: bool = False,
    locale: str | None = None,
) -> tuple[list[Any], str | None]:
    """One page of the site's alerts by severity, then back from snooze, then overdue, then age
    (oldest first), and the cursor of the next page (None: the last page).

    ``columns``: each alert as a row of the columns a list shows of it and of its patient
    (``presenters.QUEUE_COLUMNS``: ``presenters.dump_rows`` and ``present_rows`` read them), not
    as an entity with its patient: building fifty entities and their patients in the session
    was about a third of ``GET /alerts``' CPU, for values read once. Its ``summary`` is the
    sentence in ``locale`` (``presenters.summary_in``, chosen by the statement).

    Overdue and snoozed depend on now, so no index can give this order in one scan. The queue is
    cut into segments that an index does give in order: for each severity, the alerts back from
    a snooze, the overdue ones, then the others, each by age. A page reads, in one statement, at
    most ``limit + 1`` alerts from each segment from the cursor's on, along
    ``ix_alerts_unresolved_queue`` (unresolved alerts only, a small index however many alerts
    were resolved); a deep page costs what the first one does.

    Alerts snoozed until later are left out, unless ``snoozed``: then only they are listed.
    ``owner``: ``"me"`` (the caller's), ``"none"`` (the shared queue's), or None (every one).
    """
    after = _queue_cursor(cursor)
    statement = _queue_statement(
        (SEVERITY_RANK[severity],) if severity else tuple(sorted(SEVERITY_RANK.values())),
        tuple(statuses),
        snoozed=snoozed,
        from_segment=after[0] if after else None,
        by_kind=kind is not None,
        by_patient=patient_id is not None,
        owner=owner,
        columns=columns,
    )
    if statement is None:
        return [], None
    rows = db.session.execute(
        statement,
        {
            "site_id": principal.site_id,
            "now": now,
            "kind": kind,
            "patient_id": patient_id,
            "owner_id": principal.id,
            "after_created_at": after[1] if after else None,
            "after_id": after[2] if after else None,
            "limit": limit + 1,
            "locale": locale,
        },
    ).all()
    next_cursor = None
    if columns:
        if len(rows) > limit:
            last = rows[limit - 1]
            next_cursor = encode_cursor([last.segment, last.created_at, last.id])
        return list(rows[:limit]), next_cursor
    found = [alert for alert, _ in rows[:limit]]
    if len(rows) > limit:
        last, segment = rows[limit - 1]
        next_cursor = encode_cursor([segment, last.created_at, last.id])
    return found, next_cursor


def queue_counts(
    principal: Principal,
    now: datetime,
    *,
    statuses: tuple[str, ...],
    severity: str | None,
    kind: str | None,
    owner: str | None = None,
) -> dict[str, dict[str, int]]:
    """How many alerts the queue with these filters holds, per severity (every severity named,
    zero included), and how many of them are overdue, in one statement: the page shows a slice
    of the queue and says what the rest holds. Alerts snoozed until later are not in the queue,
    so not counted."""
    overdue = sa.and_(Alert.status == "open", Alert.due_at <= now)
    # By rank, not by name: what it reads is then all in ``ix_alerts_unresolved_queue``.
    counted = db.select(
        Alert.severity_rank, sa.func.count(), sa.func.sum(sa.case((overdue, 1), else_=0))
    ).filter(
        Alert.site_id == principal.site_id,
        Alert.status.in_(statuses),
        sa.or_(Alert.snoozed_until.is_(None), Alert.snoozed_until <= now),
    )
    if "resolved" not in statuses:  # the partial index of the unresolved alerts
        counted = counted.filter(Alert.status != "resolved")
    if severity:
        counted = counted.filter(Alert.severity_rank == SEVERITY_RANK[severity])
    if kind:
        counted = counted.filter(Alert.kind == kind)
    if owner == "me":
        counted = counted.filter(Alert.owner_id == principal.id)
    elif owner == "none":
        counted = counted.filter(Alert.owner_id.is_(None))
    found = {
        rank: (int(total), int(late or 0))
        for rank, total, late in db.session.execute(counted.group_by(Alert.severity_rank)).all()
    }
    return {
        name: {"total": found.get(rank, (0, 0))[0], "overdue": found.get(rank, (0, 0))[1]}
        for name, rank in sorted(SEVERITY_RANK.items(), key=lambda item: item[1])
    }


@functools.lru_cache(maxsize=256)
def _queue_statement(
    ranks: tuple[int, ...],
    statuses: tuple[str, ...],
    *,
    snoozed: bool,
    from_segment: int | None,
    by_kind: bool,
    by_patient: bool,
    owner: str | None,
    columns: bool = False,
) -> sa.Select[Any] | None:
    """The queue's statement for one shape of request, built once: the values (site, now, the
    cursor's alert, the filters, the limit) are bound parameters. Building the nine segments'
    union and its cache key anew was a third of the work of a page of fifty alerts."""
    now = sa.bindparam("now", type_=Alert.due_at.type)
    # The shape's constants (statuses, ranks, segment numbers) are written into the statement,
    # not bound: with 49 parameters and their casts the first page's statement was 6,400
    # characters, over the 4,096 under which psycopg caches its conversion of the placeholders,
    # so it was parsed again at every request. Each comes from a closed list (checked here).
    open_ = _constant("open")
    overdue = sa.and_(Alert.status == open_, Alert.due_at <= now)
    back = sa.and_(Alert.snoozed_until.is_not(None), Alert.snoozed_until <= now)
    asleep = sa.and_(Alert.snoozed_until.is_not(None), Alert.snoozed_until > now)
    segments = {
        0: back,
        1: sa.and_(overdue, Alert.snoozed_until.is_(None)),
        2: sa.and_(sa.not_(overdue), Alert.snoozed_until.is_(None)),
    }
    if snoozed:  # the ones put aside: in one segment per severity, by age
        segments = {0: asleep}
    limit = sa.bindparam("limit", type_=sa.Integer)
    parts = []
    for rank in ranks:
        for place, condition in segments.items():
            segment = rank * 3 + place
            skipped = from_segment is not None and segment < from_segment
            if skipped or (place == 1 and "open" not in statuses):
                continue
            part = db.select(
                Alert.id, _constant(segment).label("segment"), Alert.created_at
            ).filter(
                Alert.site_id == sa.bindparam("site_id", type_=Alert.site_id.type),
                Alert.severity_rank == _constant(rank),
                Alert.status.in_([_constant(status) for status in statuses]),
                condition,
            )
            if "resolved" not in statuses:  # lets PostgreSQL choose the partial index
                part = part.filter(Alert.status != _constant("resolved"))
            if by_kind:
                part = part.filter(Alert.kind == sa.bindparam("kind", type_=Alert.kind.type))
            if by_patient:
                part = part.filter(
                    Alert.patient_id == sa.bindparam("patient_id", type_=Alert.patient_id.type)
                )
            if owner == "me":
                part = part.filter(
                    Alert.owner_id == sa.bindparam("owner_id", type_=Alert.owner_id.type)
                )
            elif owner == "none":
                part = part.filter(Alert.owner_id.is_(None))
            if segment == from_segment:
                part = part.filter(
                    sa.tuple_(Alert.created_at, Alert.id)
                    > sa.tuple_(
                        sa.bindparam("after_created_at", type_=Alert.created_at.type),
                        sa.bindparam("after_id", type_=Alert.id.type),
                    )
                )
            parts.append(
                db.select(part.order_by(Alert.created_at, Alert.id).limit(limit).subquery())
            )
    if not parts:
        return None
    page = sa.union_all(*parts).subquery() if len(parts) > 1 else parts[0].subquery()
    # The patients come in the same statement, with the columns an alert shows of them
    # (``presenters.load_named`` then reads none).
    from backend.alerts.presenters import PATIENT_COLUMNS, QUEUE_COLUMNS

    if columns:
        return (
            sa.select(*QUEUE_COLUMNS, page.c.segment)
            .select_from(Alert)
            .join(page, Alert.id == page.c.id)
            .join(Patient, Patient.id == Alert.patient_id)
            .order_by(page.c.segment, page.c.created_at, page.c.id)
            .limit(limit)
        )
    statement: sa.Select[Any] = (
        sa.select(Alert, page.c.segment)
        .join(page, Alert.id == page.c.id)
        .join(Patient, Patient.id == Alert.patient_id)
        .options(
            orm.lazyload(Alert.notes),  # a list shows neither notes nor history
            orm.lazyload(Alert.history),
            orm.contains_eager(Alert.patient).options(
                orm.load_only(*PATIENT_COLUMNS), orm.lazyload("*")
            ),
        )
        .order_by(page.c.segment, page.c.created_at, page.c.id)
        .limit(limit)
    )
    return statement


def _constant(value: str | int) -> sa.ColumnElement[Any]:
    """A status or a number of the queue's statement written in its text (``_queue_statement``):
    only the alert statuses and small integers, never a caller's text."""
    if isinstance(value, str):
        if value not in ALERT_STATUSES:
            raise ValueError(f"not an alert status: {value!r}")
        return sa.literal_column(f"'{value}'", Alert.status.type)
    if type(value) is not int or not 0 <= value < 100:
        raise ValueError(f"not a queue constant: {value!r}")
    return sa.literal_column(str(value), sa.Integer)


def _queue_cursor(cursor: str | None) -> tuple[int, datetime, uuid.UUID] | None:
    """The segment, age and id of the last alert of the previous page."""
    if not cursor:
        return None
    segment, created_at, alert_id = decode_cursor(cursor, 3)
    try:
        return int(segment), datetime.fromisoformat(created_at), uuid.UUID(alert_id)
    except ValueError as exc:
        raise ValidationProblem(
            [{"parameter": "cursor", "detail": "is not a valid cursor"}]
        ) from exc


def acknowledge(principal: Principal, alert: Alert, now: datetime) -> Alert:
    """Acknowledge an open alert (409 otherwise). The caller has locked it:
    ``get_alert(..., for_update=True)``, or the bulk acknowledge's ``FOR UPDATE``."""
    if alert.status != "open":
        raise Conflict(f"An alert that is {alert.status} cannot be acknowledged.")
    alert.status, alert.acknowledged_at, alert.acknowledged_by_id = (
        "acknowledged",
        now,
        principal.id,
    )
    alert.updated_at = now
    alert.snoozed_until, alert.snooze_reason = None, None  # acted on: out of "back from snooze"
    _event(alert, "acknowledged", principal.id, now)
    _audit("alert.acknowledge", alert, principal, now)
    return alert


def resolve(
    principal: Principal, alert: Alert, outcome: str, note: str | None, now: datetime
) -> Alert:
    """Resolve the alert with an outcome (409 when already resolved); the caller has locked it
    (``get_alert(..., for_update=True)``)."""
    if alert.status == "resolved":
        raise Conflict("The alert is already resolved.")
    if outcome not in OUTCOMES:  # the schema checks first; this guards other callers
        raise Conflict(f"Unknown outcome {outcome!r}.")
    if alert.acknowledged_at is None:  # resolving implies having looked at it
        alert.acknowledged_at, alert.acknowledged_by_id = now, principal.id
        _event(alert, "acknowledged", principal.id, now)
    alert.status, alert.resolved_at, alert.resolved_by_id = "resolved", now, principal.id
    alert.outcome, alert.updated_at = outcome, now
    alert.snoozed_until, alert.snooze_reason = None, None
    _event(alert, "resolved", principal.id, now, {"outcome": outcome})
    if note:
        add_note(principal, alert, note, now, audit=False)
    _audit("alert.resolve", alert, principal, now, {"outcome": outcome})
    return alert


def add_note(
    principal: Principal, alert: Alert, text: str, now: datetime, audit: bool = True
) -> AlertNote:
    note = AlertNote(alert_id=alert.id, author_id=principal.id, text=text, created_at=now)
    db.session.add(note)
    _event(alert, "note", principal.id, now)
    if audit:
        _audit("alert.note", alert, principal, now)
    db.session.flush()
    db.session.refresh(alert, ["notes", "history"])
    return note


def _audit(
    action: str,
    alert: Alert,
    actor: Principal | None,
    now: datetime,
    details: dict[str, Any] | None = None,
) -> None:
    """An alert's change in the audit log, by the nurse who made it (None: the system)."""
    record(
        action,
        now=now,
        actor=actor,
        actor_type=None if actor else "system",
        resource_type="alert",
        resource_id=alert.id,
        patient_id=alert.patient_id,
        details=details,
    )


def record_list_read(
    principal: Principal, alerts: Sequence[Any], now: datetime, **details: Any
) -> None:
    """A list of alerts was shown: one audit event naming every alert and patient on it, not
    one per alert (a queue that refreshes every minute would write fifty rows a minute),
    inserted at once (``audit.services.insert_event``)."""
    insert_event(
        "alert.list",
        now=now,
        actor=principal,
        resource_type="alert",
        details={
            **details,
            "alert_ids": [str(a.id) for a in alerts],
            "patient_ids": sorted({str(a.patient_id) for a in alerts}),
        },
    )


def escalate_overdue(now: datetime) -> list[Alert]:
    """Mark open alerts past their target as escalated, once; the caller notifies physicians."""
    overdue = (
        db.session.execute(
            db.select(Alert)
            .filter(
                Alert.status == "open",
                Alert.due_at <= now,
                Alert.escalated_at.is_(None),
                # No patient who is not followed causes an escalation (clinical.md); their
                # alerts stay in the nurses' queue.
                Alert.patient_id.in_(sa.select(Patient.id).where(Patient.status == "active")),
            )
            .with_for_update(skip_locked=True)
        )
        .scalars()
        .all()
    )
    for alert in overdue:
        alert.escalated_at = now
        _event(alert, "escalated", None, now)
    return list(overdue)


# --- rule-quality report ----------------------------------------------------------------------


def rule_report(principal: Principal) -> list[dict[str, Any]]:
    """Per rule key and version: alerts, outcomes, false-alarm share, imaging ordered,
    loosening confirmed, revision planned and median time to acknowledge (the site's alerts)."""
    alerts = db.session.execute(db.select(Alert).filter_by(site_id=principal.site_id)).scalars()
    groups: dict[tuple[str, int], list[Alert]] = {}
    for alert in alerts:
        groups.setdefault((alert.rule_key, alert.rule_version), []).append(alert)
    report = []
    for (key, version), items in sorted(groups.items()):
        outcomes: dict[str, int] = {}
        for alert in items:
            if alert.outcome:
                outcomes[alert.outcome] = outcomes.get(alert.outcome, 0) + 1
        resolved = sum(outcomes.values())
        delays = [
            (a.acknowledged_at - a.created_at).total_seconds()
            for a in items
            if a.acknowledged_at is not None
        ]
        report.append(
            {
                "rule": {"key": key, "version": version},
                "alerts": len(items),
                "resolved": resolved,
                "outcomes": outcomes,
                "false_alarm_share": round(outcomes.get("false_alarm", 0) / resolved, 3)
                if resolved
                else None,
                "imaging_ordered": outcomes.get("imaging_ordered", 0),
                "loosening_confirmed": outcomes.get("loosening_confirmed", 0),
                "revision_planned": outcomes.get("revision_planned", 0),
                "median_seconds_to_acknowledge": statistics.median(delays) if delays else None,
            }
        )
    return report


def emergency_advice(
    _app: object, *, response: Response, patient: Patient
) -> dict[str, Any] | None:
    """``response_advice`` receiver: the emergency advice when the response raised a red flag."""
    if not red_flag_for(response):
        return None
    return {
        "emergency": True,
        "message": pick(EMERGENCY_ADVICE, patient.locale),
    }
