"""Research services: who may be included, the cohort as plain data, the outcome report.

``included_patients`` is THE one place that decides who may be included in research and from
which date their data must be cut. Every research path (the outcome report, the page, the
export, randomisation) goes through it; it reads the consent records of purpose ``research``.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import lazyload

from backend.alerts.models import Alert
from backend.audit.services import record
from backend.auth.principal import Principal
from backend.extensions import db
from backend.patients.models import Patient, Procedure
from backend.questionnaires.models import Response
from backend.questionnaires.vocabulary import AID_LEVELS, ANALGESIC_STEPS
from backend.research import stats
from backend.research.models import Allocation

GROUPS = ("kind", "etiology", "location", "bone_quality", "anaesthesia", "arm", "age_band")
# research.md, "Groups": the headline comparison, by the procedure actually performed.
CEMENT_ALONE = "cementoplasty"
CEMENT_SCREWS = "screw_fixation_cementoplasty"
SUBGROUP_VARIABLES = ("etiology", "location", "bone_quality", "age_band")
EVENT_OUTCOMES = ("loosening_confirmed", "revision_planned")
KM_DAYS = (0, 30, 90, 180, 365)


# --- inclusion: the one place -----------------------------------------------------------------


@dataclass(frozen=True)
class Inclusion:
    """A patient who may be included, and the first date whose data must be left out
    (``cut_from``: the consent withdrawal date, or None when consent stands)."""

    patient: Patient
    cut_from: date | None


def included_patients(
    site_id: uuid.UUID, patient_ids: Sequence[uuid.UUID] | None = None
) -> list[Inclusion]:
    """The site's patients (or those of ``patient_ids``) whose consent covers research, each
    with the date from which their data must be cut.

    Reads the consent records of purpose ``research`` (backend.patients.models.Consent):
    included from the first ``given`` decision; ``cut_from`` is the first ``withdrawn`` decision
    after it. A later re-consent does not lift the cut (conservative: research.md says "only
    data from before a withdrawal"); a withdrawal on the day of the consent includes nothing.
    """
    from backend.patients.models import Consent

    query = (
        sa.select(Consent.patient_id, Consent.decision, Consent.decided_on)
        .join(Patient, Patient.id == Consent.patient_id)
        .where(Patient.site_id == site_id, Consent.purpose == "research")
        .order_by(Consent.patient_id, Consent.decided_on, Consent.recorded_at)
    )
    if patient_ids is not None:
        query = query.where(Consent.patient_id.in_(list(patient_ids)))
    given: dict[uuid.UUID, date] = {}
    cut: dict[uuid.UUID, date] = {}
    for pid, decision, on in db.session.execute(query):
        if decision == "given":
            given.setdefault(pid, on)
        elif pid in given and pid not in cut:
            cut[pid] = on
    keep = [pid for pid in given if not (pid in cut and cut[pid] <= given[pid])]
    if not keep:
        return []
    patients = (
        db.session.execute(
            db.select(Patient)
            .options(lazyload(Patient.procedures), lazyload(Patient.consents))
            .where(Patient.id.in_(keep))
            .order_by(Patient.id)
        )
        .scalars()
        .all()
    )
    return [Inclusion(patient, cut.get(patient.id)) for patient in patients]


def may_be_included(patient: Patient) -> bool:
    """Whether the patient's consent covers research today (not withdrawn)."""
    return any(inc.cut_from is None for inc in included_patients(patient.site_id, [patient.id]))


# --- the cohort as plain data ---------------------------------------------------------------


def age_band(age: int) -> str:
    """research.md: <75, 75-84, 85+."""
    if age < 75:
        return "<75"
    if age < 85:
        return "75-84"
    return "85+"


def age_at(birth: date, on: date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


@dataclass
class Subject:
    """One included patient's research data, identities left behind."""

    patient_id: uuid.UUID
    site_id: uuid.UUID
    age: int
    sex: str | None
    kind: str
    location: str
    side: str | None
    etiology: str
    bone_quality: str | None
    anaesthesia: str | None
    screw_count: int | None
    cement_volume_ml: float | None
    arm: str | None
    allocated_arm: str | None
    procedure_day: int  # the procedure relative to discharge (0 or negative)
    discharged_on: date
    baseline: dict[str, float | None]
    status: str
    cut_day: int | None  # first day (since discharge) whose data is left out
    responses: list[Response] = field(default_factory=list)
    observations: list[stats.Observation] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    status_day: int | None = None
    _picked: dict[tuple[str, str], tuple[int, float] | None] = field(default_factory=dict)

    def pick(self, tp: stats.TimePoint, outcome: str) -> tuple[int, float] | None:
        """``stats.select_value`` for this subject, computed once per time point and outcome
        (the report asks for each many times: per group, overall, per subgroup)."""
        key = (tp.key, outcome)
        if key not in self._picked:
            self._picked[key] = stats.select_value(self.observations, tp, outcome)
        return self._picked[key]

    @property
    def age_band(self) -> str:
        return age_band(self.age)

    def group_value(self, group: str) -> str:
        value = getattr(self, group) if group != "age_band" else self.age_band
        return str(value) if value is not None else "unknown"

    def keeps(self, day: int) -> bool:
        return self.cut_day is None or day < self.cut_day

    @property
    def last_day(self) -> int:
        """Last follow-up: the last kept response (0 when none)."""
        return max((o.day for o in self.observations), default=0)


def _local_day(instant: datetime, discharged_on: date, zone: str) -> int:
    return (instant.astimezone(ZoneInfo(zone)).date() - discharged_on).days


def observation_values(answers: Mapping[str, Any], scores: Mapping[str, Any]) -> dict[str, Any]:
    """The outcomes of research.md carried by one response."""
    return {
        "pain_walking": answers.get("pain_walking"),
        "pain_rest": answers.get("pain_rest"),
        "mobility_score": scores.get("mobility_score"),
        "analgesic_step": scores.get("analgesic_step"),
        "aid_level": scores.get("aid_level"),
    }


def load_cohort(site_id: uuid.UUID, *, with_responses: bool = False) -> list[Subject]:
    """The site's included patients with their current procedure, kept responses and alerts,
    in a fixed number of queries whatever the cohort's size."""
    inclusions = {inc.patient.id: inc for inc in included_patients(site_id)}
    if not inclusions:
        return []
    procedures: dict[uuid.UUID, Procedure] = {}
    for proc in (
        db.session.execute(
            db.select(Procedure)
            .options(lazyload(Procedure.schedule))
            .where(Procedure.site_id == site_id)
            .order_by(Procedure.discharged_on, Procedure.created_at)
        )
        .scalars()
        .all()
    ):
        if proc.patient_id in inclusions:
            procedures[proc.patient_id] = proc  # the latest discharge wins: the current one
    allocated = (
        {
            pid: arm
            for pid, arm in db.session.execute(
                sa.select(Allocation.patient_id, Allocation.arm).where(
                    Allocation.patient_id.in_(list(procedures))
                )
            )
        }
        if procedures
        else {}
    )
    subjects: dict[uuid.UUID, Subject] = {}
    for pid, proc in procedures.items():
        inc = inclusions[pid]
        patient = inc.patient
        cut_day = (inc.cut_from - proc.discharged_on).days if inc.cut_from else None
        baseline: dict[str, float | None] = {
            "pain_walking": proc.baseline_pain_walking,
            "pain_rest": proc.baseline_pain_rest,
            "mobility_score": proc.baseline_mobility_score,
            "analgesic_step": ANALGESIC_STEPS.index(proc.baseline_analgesics)
            if proc.baseline_analgesics
            else None,
            "aid_level": AID_LEVELS.index(proc.baseline_walking_aid)
            if proc.baseline_walking_aid
            else None,
        }
        subject = Subject(
            patient_id=pid,
            site_id=patient.site_id,
            age=age_at(patient.birth_date, proc.performed_on),
            sex=patient.sex,
            kind=proc.kind,
            location=proc.location,
            side=proc.side,
            etiology=proc.etiology,
            bone_quality=proc.bone_quality,
            anaesthesia=proc.anaesthesia,
            screw_count=proc.screw_count,
            cement_volume_ml=float(proc.cement_volume_ml) if proc.cement_volume_ml else None,
            arm=allocated.get(pid) or proc.study_arm,
            allocated_arm=allocated.get(pid),
            procedure_day=(proc.performed_on - proc.discharged_on).days,
            discharged_on=proc.discharged_on,
            baseline=baseline,
            status=patient.status,
            cut_day=cut_day,
        )
        if patient.status in {"deceased", "readmitted", "withdrawn"}:
            day = _local_day(patient.status_changed_at, proc.discharged_on, patient.timezone)
            subject.status_day = day if subject.keeps(day) else None
        subjects[pid] = subject
    proc_ids = {p.id for p in procedures.values()}
    columns: list[Any] = [
        Response.patient_id,
        Response.procedure_id,
        Response.day,
        Response.answers,
        Response.scores,
    ]
    if with_responses:
        columns = [Response]
    for row in db.session.execute(
        sa.select(*columns)
        .join(Patient, Patient.id == Response.patient_id)
        .where(Patient.site_id == site_id)
        .order_by(Response.patient_id, Response.answered_at)
    ):
        resp = row[0] if with_responses else None
        pid, proc_id, day, answers, scores = (
            (resp.patient_id, resp.procedure_id, resp.day, resp.answers, resp.scores)
            if resp is not None
            else row
        )
        found = subjects.get(pid)
        if found is None or proc_id not in proc_ids or not found.keeps(day):
            continue
        found.observations.append(stats.Observation(day, observation_values(answers, scores)))
        if resp is not None:
            found.responses.append(resp)
    for alert in (
        db.session.execute(
            db.select(Alert)
            .options(lazyload(Alert.notes), lazyload(Alert.history))
            .where(Alert.site_id == site_id)
            .order_by(Alert.created_at)
        )
        .scalars()
        .all()
    ):
        owner = subjects.get(alert.patient_id)
        if owner is None:
            continue
        day = (alert.created_at.date() - owner.discharged_on).days
        if owner.keeps(day):
            owner.alerts.append(alert)
    return list(subjects.values())


def alert_day(subject: Subject, instant: datetime) -> int:
    return (instant.date() - subject.discharged_on).days


def loosening_or_revision_day(subject: Subject) -> int | None:
    """The first day a nurse resolved an alert as confirmed loosening or planned revision."""
    days = [
        alert_day(subject, a.resolved_at)
        for a in subject.alerts
        if a.outcome in EVENT_OUTCOMES and a.resolved_at is not None
    ]
    days = [d for d in days if subject.keeps(d)]
    return min(days) if days else None


def time_to_event(subject: Subject) -> tuple[int, int]:
    """(day, code) for time to confirmed loosening or revision: 1 the event, 2 death first
    (competing), 0 censored at the last follow-up (research.md)."""
    event = loosening_or_revision_day(subject)
    death = subject.status_day if subject.status == "deceased" else None
    if event is not None and (death is None or event <= death):
        return max(event, 0), stats.EVENT
    if death is not None:
        return max(death, 0), stats.COMPETING
    return max(subject.last_day, 0), stats.CENSORED


# --- the outcome report -------------------------------------------------------------------------


def filter_subjects(subjects: Iterable[Subject], filters: Mapping[str, str]) -> list[Subject]:
    return [s for s in subjects if all(s.group_value(k) == v for k, v in filters.items() if v)]


def changes(
    subjects: Sequence[Subject], tp: stats.TimePoint, outcome: str
) -> tuple[list[float], list[float]]:
    """(values, changes from baseline) of ``outcome`` at ``tp`` for the subjects who have one."""
    values, deltas = [], []
    for s in subjects:
        picked = s.pick(tp, outcome)
        if picked is None:
            continue
        values.append(picked[1])
        base = s.baseline.get(outcome)
        if base is not None:
            deltas.append(picked[1] - base)
    return values, deltas


def expected_at(subject: Subject, tp: stats.TimePoint, today_day: int) -> bool:
    """Whether an answer was due at ``tp``: its window has closed (or the patient answered in
    it), and the patient had not died, withdrawn or had their data cut before it opened."""
    answered = any(tp.contains(o.day) for o in subject.observations)
    if answered:
        return True
    if today_day <= tp.end:
        return False
    if subject.cut_day is not None and subject.cut_day <= tp.start:
        return False
    return not (
        subject.status in {"deceased", "withdrawn"}
        and subject.status_day is not None
        and subject.status_day <= tp.start
    )


def time_point_block(
    subjects: Sequence[Subject], tp: stats.TimePoint, today: date
) -> dict[str, Any]:
    expected = [s for s in subjects if expected_at(s, tp, (today - s.discharged_on).days)]
    answered = [s for s in expected if any(tp.contains(o.day) for o in s.observations)]
    outcomes = {}
    for outcome in stats.OUTCOMES:
        values, deltas = changes(subjects, tp, outcome)
        outcomes[outcome] = {
            "value": stats.mean_ci(values).as_dict(),
            "change": stats.mean_ci(deltas).as_dict(),
        }
    responders = 0
    assessed = 0
    for s in subjects:
        picked = s.pick(tp, "pain_walking")
        base = s.baseline.get("pain_walking")
        if picked is None or base is None:
            continue
        assessed += 1
        responders += stats.is_responder(base, picked[1])
    return {
        "time_point": tp.key,
        "target_day": tp.target,
        "window": [tp.start, tp.end],
        "completeness": stats.wilson(len(answered), len(expected)).as_dict(),
        "outcomes": outcomes,
        "responders": stats.wilson(responders, assessed).as_dict(),
    }


def event_counts(subjects: Sequence[Subject]) -> dict[str, Any]:
    """Patients with each event (research.md "Events"), masked when small."""
    counts: dict[str, int] = defaultdict(int)
    for s in subjects:
        kinds = {a.kind for a in s.alerts}
        for kind in kinds:
            counts[f"alert_{kind}"] += 1
        reasons = {r for a in s.alerts if a.kind == "red_flag" for r in reasons(a.evidence)}
        for reason in reasons:
            counts[f"red_flag_{reason}"] += 1
        outcomes = {
            a.outcome for a in s.alerts if a.kind == "possible_screw_loosening" and a.outcome
        }
        for outcome in outcomes:
            counts[f"loosening_alert_outcome_{outcome}"] += 1
        if loosening_or_revision_day(s) is not None:
            counts["loosening_or_revision"] += 1
        if any(a.outcome == "loosening_confirmed" for a in s.alerts):
            counts["loosening_confirmed"] += 1
        if any(a.outcome == "revision_planned" for a in s.alerts):
            counts["revision_planned"] += 1
        if s.status_day is not None:
            counts[
                {"deceased": "death", "readmitted": "readmission", "withdrawn": "withdrawal"}[
                    s.status
                ]
            ] += 1
    return {k: stats.masked_count(v) for k, v in sorted(counts.items())}


def reasons(evidence: Mapping[str, Any]) -> list[str]:
    """Red-flag reasons recorded in an alert's evidence (their codes, never free text)."""
    out: list[str] = []
    for signal in evidence.get("signals", []) if isinstance(evidence, Mapping) else []:
        for reason in signal.get("reasons", []) if isinstance(signal, Mapping) else []:
            code = reason.get("code") if isinstance(reason, Mapping) else reason
            if isinstance(code, str):
                out.append(code)
    return out


def survival_block(subjects: Sequence[Subject]) -> dict[str, Any]:
    times = [time_to_event(s) for s in subjects]
    durations = [t for t, _ in times]
    codes = [c for _, c in times]
    return {
        "kaplan_meier": stats.kaplan_meier(
            durations, [c == stats.EVENT for c in codes], list(KM_DAYS)
        ),
        "cumulative_incidence": stats.cumulative_incidence(durations, codes, list(KM_DAYS)),
    }


def comparison(subjects: Sequence[Subject], outcome: str) -> dict[str, Any]:
    """Cement alone vs cement plus screws: difference in mean change of ``outcome`` (plus
    screws minus alone) with its Welch 95 % interval, per time point and per subgroup."""

    def diff(group: Sequence[Subject], tp: stats.TimePoint) -> dict[str, Any]:
        a = changes([s for s in group if s.kind == CEMENT_ALONE], tp, outcome)[1]
        b = changes([s for s in group if s.kind == CEMENT_SCREWS], tp, outcome)[1]
        return {"time_point": tp.key, **stats.welch_difference(a, b).as_dict()}

    subgroups = []
    for variable in SUBGROUP_VARIABLES:
        values = sorted({s.group_value(variable) for s in subjects})
        for value in values:
            members = [s for s in subjects if s.group_value(variable) == value]
            subgroups.append(
                {
                    "variable": variable,
                    "value": value,
                    "time_points": [diff(members, tp) for tp in stats.TIME_POINTS],
                }
            )
    return {
        "a": CEMENT_ALONE,
        "b": CEMENT_SCREWS,
        "outcome": outcome,
        "overall": [diff(subjects, tp) for tp in stats.TIME_POINTS],
        "subgroups": subgroups,
    }


def outcome_report(
    principal: Principal,
    *,
    group: str,
    filters: Mapping[str, str],
    outcome: str,
    now: datetime,
) -> dict[str, Any]:
    """The outcome report of the principal's site (research.md), audited."""
    site_id = principal.site_id
    assert site_id is not None
    subjects = filter_subjects(load_cohort(site_id), filters)
    today = now.date()
    by_value: dict[str, list[Subject]] = defaultdict(list)
    for s in subjects:
        by_value[s.group_value(group)].append(s)
    groups = [
        {
            "value": value,
            "patients": stats.masked_count(len(members)),
            "time_points": [time_point_block(members, tp, today) for tp in stats.TIME_POINTS]
            if not stats.is_small(len(members))
            else [],
            "events": event_counts(members) if not stats.is_small(len(members)) else {},
            "loosening_or_revision": survival_block(members)
            if not stats.is_small(len(members))
            else None,
        }
        for value, members in sorted(by_value.items())
    ]
    record(
        "research.outcomes.read",
        now=now,
        actor=principal,
        resource_type="research_report",
        details={"group": group, "filters": dict(filters), "patients": len(subjects)},
    )
    return {
        "generated_at": now,
        "group": group,
        "filters": dict(filters),
        "patients": stats.masked_count(len(subjects)),
        "groups": groups,
        "overall": {
            "time_points": [time_point_block(subjects, tp, today) for tp in stats.TIME_POINTS],
            "events": event_counts(subjects),
            "loosening_or_revision": survival_block(subjects),
        }
        if not stats.is_small(len(subjects))
        else None,
        "comparison": comparison(subjects, outcome),
    }


# --- exports ------------------------------------------------------------------------------------


def request_export(principal: Principal, *, now: datetime, config: Mapping[str, Any]) -> Any:
    """Ask for a pseudonymised export of the principal's site: a job row the scheduler builds
    (refused at once, 409, when no pseudonym key is configured). Audited."""
    from backend.research.export import require_key
    from backend.research.models import ResearchExport

    require_key(config)
    assert principal.site_id is not None and principal.role is not None
    job = ResearchExport(
        site_id=principal.site_id,
        requested_by_id=principal.id,
        requested_role=principal.role,
        status="pending",
        created_at=now,
        attempts=0,
    )
    db.session.add(job)
    db.session.flush()
    record(
        "research.export.requested",
        now=now,
        actor=principal,
        resource_type="research_export",
        resource_id=job.id,
    )
    return job


def get_export(principal: Principal, export_id: uuid.UUID) -> Any:
    """An export of the principal's site, else 404."""
    from backend.auth.guards import site_scoped
    from backend.research.models import ResearchExport

    return site_scoped(ResearchExport, export_id, principal)
