"""A synthetic research cohort for the demo: a few hundred patients so that the physician's page
shows something worth reading on first start.

A fast path, on purpose: rows are inserted in bulk (no schedule, no reminder, no alert engine),
since replaying a year of answers through the services for 300 patients would make
``make run`` slow. The rows are the ones the services would write (scores computed by the
questionnaire service's own ``score``); the alerts are already resolved, so the nurses' queue
keeps showing only the hand-written demo patients. Seeded random generator: the same cohort
at every start.
"""

from __future__ import annotations

import math
import random
import uuid
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from backend.alerts.models import SEVERITY_RANK, Alert
from backend.extensions import db
from backend.patients.models import Consent, Patient, Procedure, StatusChange
from backend.questionnaires.models import Protocol, Response
from backend.questionnaires.services import score
from backend.questionnaires.vocabulary import AID_LEVELS, ANALGESIC_STEPS

PATIENTS = 320
SEED = 20261201
PROTOCOL_DAYS = (1, 7, 14, 21, 30, 42, 56, 90, 180, 365)
FOLLOWUP_DAYS = {30, 90, 180, 365}
# Mean walking-pain improvement at the plateau, by kind (illustrative, not evidence).
IMPROVEMENT = {
    "cementoplasty": 3.0,
    "screw_fixation_cementoplasty": 4.0,
    "screw_fixation": 3.4,
    "sclerotherapy": 2.4,
}
LOCATIONS = {
    "cementoplasty": ("sacrum", "acetabulum", "iliac_wing", "vertebra", "pubic_ramus"),
    "screw_fixation_cementoplasty": ("sacrum", "sacroiliac", "acetabulum", "femoral_neck"),
    "screw_fixation": ("sacroiliac", "pubic_ramus", "sacrum"),
    "sclerotherapy": ("iliac_wing", "proximal_femur", "other"),
}


def _pick(rng: random.Random, weights: dict[str, float]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _at(day: date, hour: int, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(hour, 0), tzinfo=zone).astimezone(ZoneInfo("UTC"))


def seed_research_cohort(site_id: uuid.UUID, now: datetime, zone_name: str) -> int:
    """Insert the synthetic cohort into ``site_id``; returns the number of patients."""
    rng = random.Random(SEED)  # noqa: S311 (synthetic data, not secrets)
    zone = ZoneInfo(zone_name)
    today = now.astimezone(zone).date()
    protocols = {p.key: p.id for p in db.session.execute(db.select(Protocol)).scalars().all()}
    patients: list[dict[str, Any]] = []
    procedures: list[dict[str, Any]] = []
    responses: list[dict[str, Any]] = []
    alerts: list[dict[str, Any]] = []
    consents: list[dict[str, Any]] = []
    changes: list[dict[str, Any]] = []
    for n in range(PATIENTS):
        kind = _pick(
            rng,
            {
                "cementoplasty": 0.36,
                "screw_fixation_cementoplasty": 0.34,
                "screw_fixation": 0.2,
                "sclerotherapy": 0.1,
            },
        )
        etiology = (
            "cyst"
            if kind == "sclerotherapy"
            else _pick(rng, {"osteoporotic": 0.64, "neoplastic": 0.3, "traumatic": 0.06})
        )
        bone = {
            "osteoporotic": _pick(rng, {"osteoporotic": 0.7, "osteopenic": 0.3}),
            "neoplastic": "lytic",
            "traumatic": _pick(rng, {"normal": 0.5, "osteopenic": 0.5}),
            "cyst": "normal",
        }[etiology]
        age = int(rng.triangular(68, 98, 86))
        discharged = today - timedelta(days=rng.randint(20, 430))
        performed = discharged - timedelta(days=rng.randint(0, 4))
        pid, proc_id = uuid.uuid4(), uuid.uuid4()
        created = _at(discharged, 15, zone)
        consent = rng.random() > 0.05
        withdrawn = consent and rng.random() < 0.03
        # Study arms: a third of the cement patients of the trial period, one crossover in ten.
        arm = None
        if kind in {"cementoplasty", "screw_fixation_cementoplasty"} and rng.random() < 0.4:
            arm = "cement" if kind == "cementoplasty" else "cement_screws"
            if rng.random() < 0.1:
                arm = "cement_screws" if arm == "cement" else "cement"
        elapsed = (today - discharged).days
        death_day = (
            rng.randint(5, 400) if rng.random() < 0.08 + 0.08 * (etiology == "neoplastic") else None
        )
        alive_until = min(elapsed, death_day) if death_day is not None else elapsed
        status, status_at = "active", created
        if death_day is not None and death_day <= elapsed:
            status, status_at = "deceased", _at(discharged + timedelta(days=death_day), 9, zone)
        if status == "deceased":
            changes.append(
                {
                    "id": uuid.uuid4(),
                    "patient_id": pid,
                    "from_status": "active",
                    "to_status": "deceased",
                    "reason": "Décès (cohorte de démonstration)",
                    "paused_until": None,
                    "cause": "staff",
                    "changed_at": status_at,
                    "changed_by_id": None,
                }
            )
        patients.append(
            {
                "id": pid,
                "site_id": site_id,
                "mrn": f"SYN-{n + 1:04d}",
                "given_name": f"Patient {n + 1:03d}",
                "family_name": "Cohorte",
                "birth_date": date(performed.year - age, rng.randint(1, 12), rng.randint(1, 28)),
                "sex": _pick(rng, {"female": 0.68, "male": 0.32}),
                "phone": None,
                "email": None,
                "locale": "fr",
                "timezone": zone_name,
                "contact_channels": [],
                "caregiver_answers": False,
                "status": status,
                "status_changed_at": status_at,
                "paused_until": None,
                "created_at": created,
                "updated_at": status_at,
            }
        )
        for purpose, decision, on in (
            ("care", "given", performed),
            *((("research", "given", performed),) if consent else ()),
            *(
                (("research", "withdrawn", discharged + timedelta(days=rng.randint(40, 200))),)
                if withdrawn
                else ()
            ),
        ):
            consents.append(
                {
                    "id": uuid.uuid4(),
                    "patient_id": pid,
                    "purpose": purpose,
                    "decision": decision,
                    "decided_on": min(on, today),
                    "method": "paper",
                    "witness": None,
                    "note": None,
                    "recorded_at": created,
                    "recorded_by_id": None,
                }
            )
        walking0 = rng.randint(6, 10)
        rest0 = max(2, walking0 - rng.randint(1, 4))
        mobility0 = rng.randint(1, 6)
        analgesic0 = rng.choice(("weak_opioid", "strong_opioid", "non_opioid"))
        aid0 = rng.choice(("walker", "human_help", "crutches", "cane"))
        procedures.append(
            {
                "id": proc_id,
                "patient_id": pid,
                "site_id": site_id,
                "protocol_id": protocols[
                    "sclerotherapy" if kind == "sclerotherapy" else "standard"
                ],
                "kind": kind,
                "location": rng.choice(LOCATIONS[kind]),
                "side": rng.choice(("left", "right", "bilateral")),
                "vertebral_level": None,
                "etiology": etiology,
                "bone_quality": bone,
                "anaesthesia": _pick(rng, {"local": 0.5, "sedation": 0.35, "general": 0.15}),
                "screw_count": rng.randint(1, 3) if "screw" in kind else None,
                "cement_volume_ml": round(rng.uniform(2, 12), 1) if "cement" in kind else None,
                "performed_on": performed,
                "discharged_on": discharged,
                "study_arm": arm,
                "baseline_pain_rest": rest0,
                "baseline_pain_walking": walking0,
                "baseline_mobility_score": mobility0,
                "baseline_analgesics": analgesic0,
                "baseline_walking_aid": aid0,
                "baseline_living_situation": None,
                "created_at": created,
                "created_by_id": None,
            }
        )
        gain = IMPROVEMENT[kind] * (0.75 if etiology == "neoplastic" else 1.0)
        gain *= rng.uniform(0.4, 1.5)
        loosening_day = None
        if "screw" in kind and rng.random() < 0.07:
            loosening_day = rng.randint(8, 70)
        answer_rate = rng.uniform(0.6, 0.98)
        for day in PROTOCOL_DAYS:
            answered = day + (rng.randint(-2, 3) if day in FOLLOWUP_DAYS else 0)
            if answered > alive_until or rng.random() > answer_rate - day / 2000:
                continue
            relief = gain * (1 - math.exp(-answered / 9))
            if loosening_day is not None and answered >= loosening_day:
                relief -= 3
            walking = max(0, min(10, round(walking0 - relief + rng.gauss(0, 1))))
            rest = max(0, min(10, round(rest0 - relief * 0.7 + rng.gauss(0, 1))))
            step = max(0, ANALGESIC_STEPS.index(analgesic0) - (1 if relief > 2 else 0))
            aid = max(0, AID_LEVELS.index(aid0) - round(relief / 2.5))
            answers: dict[str, Any] = {
                "pain_rest": rest,
                "pain_walking": walking,
                "analgesics": ANALGESIC_STEPS[step],
                "walking_aid": AID_LEVELS[min(aid, len(AID_LEVELS) - 1)],
                "fell": rng.random() < 0.03,
                "symptoms": [],
                "change": "much_improved" if relief > 3 else "minimally_improved",
                "call_request": False,
            }
            instrument = "checkin"
            if day in FOLLOWUP_DAYS:
                instrument = "followup"
                mobility = max(0, min(9, mobility0 + round(relief / 1.5 + rng.gauss(0, 1))))
                a = min(3, mobility // 3 + 1)
                b = min(3, max(0, mobility - a) // 2)
                c = max(0, min(3, mobility - a - b))
                answers.update(pms_indoors=a, pms_outdoors=b, pms_shopping=c)
            when = _at(discharged + timedelta(days=answered), 11, zone)
            responses.append(
                {
                    "id": uuid.uuid4(),
                    "patient_id": pid,
                    "procedure_id": proc_id,
                    "assignment_id": None,
                    "instrument_key": instrument,
                    "instrument_version": 1,
                    "day": answered,
                    "answered_at": when,
                    "received_at": when,
                    "source": "patient",
                    "answers": answers,
                    "scores": score(answers),
                    "idempotency_key": None,
                    "request_hash": None,
                    "entered_by_id": None,
                }
            )
        if loosening_day is not None and loosening_day + 3 <= alive_until:
            opened = _at(discharged + timedelta(days=loosening_day), 12, zone)
            outcome = _pick(rng, {"loosening_confirmed": 0.6, "revision_planned": 0.4})
            alerts.append(_alert(pid, site_id, opened, outcome))
        elif "screw" in kind and rng.random() < 0.08 and alive_until > 20:
            opened = _at(discharged + timedelta(days=rng.randint(7, 20)), 12, zone)
            alerts.append(_alert(pid, site_id, opened, "false_alarm"))
    db.session.execute(sa.insert(Patient), patients)
    db.session.execute(sa.insert(Consent), consents)
    if changes:
        db.session.execute(sa.insert(StatusChange), changes)
    db.session.execute(sa.insert(Procedure), procedures)
    db.session.execute(sa.insert(Response), responses)
    if alerts:
        db.session.execute(sa.insert(Alert), alerts)
    return len(patients)


def _alert(pid: uuid.UUID, site_id: uuid.UUID, opened: datetime, outcome: str) -> dict[str, Any]:
    resolved = opened + timedelta(days=2)
    return {
        "id": uuid.uuid4(),
        "patient_id": pid,
        "site_id": site_id,
        "kind": "possible_screw_loosening",
        "severity": "high",
        "severity_rank": SEVERITY_RANK["high"],
        "status": "resolved",
        "rule_key": "possible_screw_loosening",
        "rule_version": 1,
        "summary": {
            "fr": "Douleur à la marche revenue après amélioration (vis).",
            "en": "Walking pain back after improvement (screws).",
        },
        "evidence": {"signals": []},
        "opened_by_response_id": None,
        "created_at": opened,
        "updated_at": resolved,
        "due_at": opened + timedelta(hours=24),
        "escalated_at": None,
        "nurses_notified_at": opened,
        "acknowledged_at": opened + timedelta(hours=3),
        "acknowledged_by_id": None,
        "resolved_at": resolved,
        "resolved_by_id": None,
        "outcome": outcome,
    }
