"""``flask demo seed``: a small demo cohort so that a newcomer sees something on first start."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import click
from flask import current_app
from flask.cli import AppGroup

from backend.auth.models import Site, User
from backend.auth.services import create_user, get_or_create_site
from backend.clock import ShiftedClock, get_clock, utcnow, write_offset
from backend.extensions import db

demo_cli = AppGroup("demo", help="Demo data for local runs.")

# Demo credentials: printed at start-up, only ever created by this command.
DEMO_USERS = (
    ("nurse.ada@demo.example", "nurse", "Ada Martin", "demo-nurse-Lyon-2026"),
    ("dr.leon@demo.example", "physician", "Léon Bernard", "demo-physician-Lyon-2026"),
    ("admin.iris@demo.example", "admin", "Iris Petit", "demo-admin-Lyon-2026"),
)
OTHER_SITE_NURSE = ("nurse.noe@demo.example", "nurse", "Noé Robert", "demo-nurse-Nantes-2026")


def seed() -> bool:
    """Fill an empty database; False (and nothing done) when it already has users."""
    if db.session.execute(db.select(User.id).limit(1)).first():
        return False
    now = utcnow()
    lyon = get_or_create_site(
        "LYON", now=now, name="CHU Lyon - Radiologie interventionnelle", timezone="Europe/Paris"
    )
    nantes = get_or_create_site(
        "NANTES", now=now, name="CHU Nantes - Radiologie interventionnelle", timezone="Europe/Paris"
    )
    for email, role, name, password in DEMO_USERS:
        create_user(email, password, role, lyon, now=now, full_name=name)
    email, role, name, password = OTHER_SITE_NURSE
    create_user(email, password, role, nantes, now=now, full_name=name)
    for seed_part in SEEDS:
        seed_part(lyon, now)
    return True


def _seed_demo_patient(site: Site, now: datetime) -> None:
    """Marcel, 86, sacroiliac screws, discharged yesterday: the phone flow can be tried."""
    from datetime import date, timedelta
    from zoneinfo import ZoneInfo

    from backend.auth.services import staff_principal
    from backend.patients.services import create_patient, create_procedure

    nurse = db.session.execute(db.select(User).filter_by(email=DEMO_USERS[0][0])).scalar_one()
    actor = staff_principal(nurse, uuid.uuid4())
    marcel = create_patient(
        actor,
        {
            "mrn": DEMO_PATIENT_MRN,
            "given_name": "Marcel",
            "family_name": "Demo",
            "birth_date": date(1940, 3, 2),
            "sex": "male",
            "phone": "+33600000001",
            "locale": "fr",
            "timezone": site.timezone,
            "contact_channels": ["push", "sms"],
            # Telemonitoring consent signed on paper at discharge (no code without it).
            "consent_given_on": now.astimezone(ZoneInfo(site.timezone)).date(),
            "consent_method": "paper",
        },
        now=now,
    )
    today = now.date()
    create_procedure(
        actor,
        marcel,
        {
            "kind": "screw_fixation",
            "location": "sacroiliac",
            "side": "left",
            "etiology": "osteoporotic",
            "bone_quality": "osteoporotic",
            "anaesthesia": "local",
            "screw_count": 2,
            "performed_on": today - timedelta(days=3),
            "discharged_on": today - timedelta(days=1),
            "baseline": {
                "pain_rest": 6,
                "pain_walking": 8,
                "mobility_score": 6,
                "analgesics": "weak_opioid",
                "walking_aid": "walker",
            },
        },
        now=now,
    )


DEMO_PATIENT_MRN = "DEMO-0001"


# --- a cohort with history, so that the nurse pages show something real on first start --------
#
# Each history is recorded through the real services, every answer with ``now`` set to the
# moment it was given, so the alert engine runs exactly as it would have in life: improving
# patients raise nothing, a relapsing screw patient gets a confirmation check-in then a loosening
# alert, a red flag is urgent, a missed follow-up is caught by the scheduler's own closing job.


def _checkin(
    walking: int,
    rest: int,
    analgesics: str = "non_opioid",
    aid: str = "cane",
    change: str = "minimally_improved",
    symptoms: tuple[str, ...] = (),
    call: bool = False,
    pms: tuple[int, int, int] | None = None,
    comment: str | None = None,
) -> dict[str, Any]:
    answers: dict[str, Any] = {
        "pain_rest": rest,
        "pain_walking": walking,
        "analgesics": analgesics,
        "walking_aid": aid,
        "fell": False,
        "symptoms": list(symptoms),
        "change": change,
        "call_request": call,
    }
    if pms is not None:  # a follow-up questionnaire: the Parker Mobility Score items too
        answers.update(pms_indoors=pms[0], pms_outdoors=pms[1], pms_shopping=pms[2])
        if comment:
            answers["comment"] = comment
    return answers


@dataclass(frozen=True)
class DemoPatient:
    given_name: str
    family_name: str
    born: date
    sex: str
    phone: str
    procedure: dict[str, Any]
    baseline: dict[str, Any]
    discharged_days_ago: int
    answers: dict[int, dict[str, Any]]  # by day since discharge, answered at 11:00 local
    answered_hours_ago: dict[int, int] = field(default_factory=dict)  # a later sync than 11:00
    caregiver: bool = False
    acknowledged: bool = False  # a nurse has acknowledged its alert


def _baseline(rest: int, walking: int, mobility: int, analgesics: str, aid: str) -> dict[str, Any]:
    return {
        "pain_rest": rest,
        "pain_walking": walking,
        "mobility_score": mobility,
        "analgesics": analgesics,
        "walking_aid": aid,
    }


DEMO_COHORT: tuple[DemoPatient, ...] = (
    DemoPatient(
        given_name="Josette",
        family_name="Lefèvre",
        born=date(1935, 5, 14),
        sex="female",
        phone="+33600000002",
        procedure={
            "kind": "cementoplasty",
            "location": "vertebra",
            "vertebral_level": "L1",
            "etiology": "osteoporotic",
            "bone_quality": "osteoporotic",
            "anaesthesia": "local",
            "cement_volume_ml": 4.5,
        },
        baseline=_baseline(6, 8, 6, "weak_opioid", "walker"),
        discharged_days_ago=60,
        answers={
            1: _checkin(6, 4, "weak_opioid", "walker"),
            7: _checkin(4, 3, "weak_opioid", "walker", "much_improved"),
            14: _checkin(3, 2, "non_opioid", "cane", "much_improved"),
            21: _checkin(2, 1, "non_opioid", "cane", "much_improved"),
            30: _checkin(2, 1, "non_opioid", "cane", "much_improved", pms=(3, 2, 1)),
            42: _checkin(1, 1, "none", "cane", "very_much_improved"),
            56: _checkin(1, 0, "none", "cane", "very_much_improved"),
        },
    ),
    DemoPatient(
        given_name="Henri",
        family_name="Blanc",
        born=date(1942, 1, 30),
        sex="male",
        phone="+33600000003",
        procedure={
            "kind": "screw_fixation_cementoplasty",
            "location": "acetabulum",
            "side": "right",
            "etiology": "neoplastic",
            "bone_quality": "lytic",
            "anaesthesia": "sedation",
            "screw_count": 2,
            "cement_volume_ml": 8.0,
        },
        baseline=_baseline(5, 7, 7, "strong_opioid", "walker"),
        discharged_days_ago=35,
        answers={
            1: _checkin(5, 4, "strong_opioid", "walker"),
            7: _checkin(3, 3, "weak_opioid", "walker", "much_improved"),
            14: _checkin(2, 2, "weak_opioid", "cane", "much_improved"),
            21: _checkin(2, 1, "non_opioid", "cane", "much_improved"),
            30: _checkin(2, 1, "non_opioid", "cane", "much_improved", pms=(3, 3, 1)),
        },
    ),
    # The relapse the follow-up exists for: sacroiliac screws, better until week 6, then
    # walking pain back up twice in a row (the second answer is the confirmation check-in
    # the rules asked for), with clicking.
    DemoPatient(
        given_name="Gisèle",
        family_name="Arnaud",
        born=date(1938, 9, 3),
        sex="female",
        phone="+33600000004",
        procedure={
            "kind": "screw_fixation",
            "location": "sacroiliac",
            "side": "left",
            "etiology": "osteoporotic",
            "bone_quality": "osteoporotic",
            "anaesthesia": "local",
            "screw_count": 2,
        },
        baseline=_baseline(6, 8, 5, "weak_opioid", "walker"),
        discharged_days_ago=50,
        answers={
            1: _checkin(6, 4, "weak_opioid", "walker"),
            7: _checkin(3, 2, "non_opioid", "walker", "much_improved"),
            14: _checkin(2, 1, "non_opioid", "cane", "much_improved"),
            21: _checkin(2, 1, "non_opioid", "cane", "much_improved"),
            30: _checkin(2, 1, "non_opioid", "cane", "much_improved", pms=(3, 2, 1)),
            42: _checkin(5, 2, "non_opioid", "cane", "minimally_worse"),
            45: _checkin(5, 3, "non_opioid", "cane", "minimally_worse", symptoms=("clicking",)),
        },
    ),
    # A red flag this morning: new leg weakness and numbness a week after sacral cement.
    DemoPatient(
        given_name="Robert",
        family_name="Moreau",
        born=date(1947, 2, 11),
        sex="male",
        phone="+33600000005",
        procedure={
            "kind": "cementoplasty",
            "location": "sacrum",
            "side": "bilateral",
            "etiology": "neoplastic",
            "bone_quality": "lytic",
            "anaesthesia": "sedation",
            "cement_volume_ml": 6.0,
        },
        baseline=_baseline(5, 7, 6, "weak_opioid", "cane"),
        discharged_days_ago=8,
        answers={
            1: _checkin(5, 4, "weak_opioid", "cane"),
            7: _checkin(
                6, 4, "weak_opioid", "cane", "no_change", symptoms=("leg_weakness", "numbness")
            ),
        },
        answered_hours_ago={7: 2},  # the day-7 answer came in two hours ago
    ),
    # Answers for herself through her daughter; the month-1 follow-up was never answered.
    DemoPatient(
        given_name="Lucienne",
        family_name="Petit",
        born=date(1933, 12, 1),
        sex="female",
        phone="+33600000006",
        procedure={
            "kind": "cementoplasty",
            "location": "vertebra",
            "vertebral_level": "T12",
            "etiology": "osteoporotic",
            "bone_quality": "osteoporotic",
            "anaesthesia": "local",
            "cement_volume_ml": 3.5,
        },
        baseline=_baseline(6, 8, 4, "weak_opioid", "walker"),
        discharged_days_ago=40,
        caregiver=True,
        answers={
            1: _checkin(6, 5, "weak_opioid", "walker"),
            7: _checkin(4, 3, "weak_opioid", "walker", "much_improved"),
            14: _checkin(3, 3, "non_opioid", "walker", "much_improved"),
            21: _checkin(3, 2, "non_opioid", "walker", "much_improved"),
        },
    ),
    # Asked for a call yesterday; a nurse has acknowledged it and will ring back.
    DemoPatient(
        given_name="Paulette",
        family_name="Roux",
        born=date(1936, 7, 22),
        sex="female",
        phone="+33600000007",
        procedure={
            "kind": "screw_fixation",
            "location": "pubic_ramus",
            "side": "right",
            "etiology": "traumatic",
            "bone_quality": "osteopenic",
            "anaesthesia": "local",
            "screw_count": 1,
        },
        baseline=_baseline(5, 7, 6, "weak_opioid", "walker"),
        discharged_days_ago=15,
        answers={
            1: _checkin(5, 3, "weak_opioid", "walker"),
            7: _checkin(3, 2, "non_opioid", "cane", "much_improved"),
            14: _checkin(3, 2, "non_opioid", "cane", "no_change", call=True),
        },
        acknowledged=True,
    ),
)


def _seed_demo_cohort(site: Site, now: datetime) -> None:
    """Six patients with weeks of history: improving, relapsing, a red flag, a missed month."""
    from datetime import time, timedelta
    from zoneinfo import ZoneInfo

    from backend.alerts.models import Alert
    from backend.alerts.services import acknowledge
    from backend.auth.services import staff_principal
    from backend.patients.services import create_patient, create_procedure, patient_principal
    from backend.questionnaires.models import Assignment
    from backend.questionnaires.planning import local_instant
    from backend.questionnaires.services import record_response, request_fingerprint
    from backend.schedule.services import close_expired_assignments

    zone = ZoneInfo(site.timezone)
    today = now.astimezone(zone).date()
    nurse = db.session.execute(db.select(User).filter_by(email=DEMO_USERS[0][0])).scalar_one()
    actor = staff_principal(nurse, uuid.uuid4())
    for number, person in enumerate(DEMO_COHORT, start=2):
        discharged_on = today - timedelta(days=person.discharged_days_ago)
        patient = create_patient(
            actor,
            {
                "mrn": f"DEMO-{number:04d}",
                "given_name": person.given_name,
                "family_name": person.family_name,
                "birth_date": person.born,
                "sex": person.sex,
                "phone": person.phone,
                "locale": "fr",
                "timezone": site.timezone,
                "contact_channels": ["push", "sms"],
                "caregiver_answers": person.caregiver,
                "consent_given_on": discharged_on,
                "consent_method": "paper",
            },
            now=local_instant(discharged_on, time(15, 0), zone),
        )
        procedure = create_procedure(
            actor,
            patient,
            {
                **person.procedure,
                "performed_on": discharged_on - timedelta(days=2),
                "discharged_on": discharged_on,
                "baseline": person.baseline,
            },
            now=local_instant(discharged_on, time(15, 5), zone),
        )
        phone = patient_principal(patient, uuid.uuid4())
        for day, answers in person.answers.items():
            answered_at = local_instant(discharged_on + timedelta(days=day), time(11, 0), zone)
            if day in person.answered_hours_ago:
                answered_at = now - timedelta(hours=person.answered_hours_ago[day])
            # The questionnaire open at that moment (planned, or a confirmation check-in).
            instrument = "followup" if "pms_indoors" in answers else "checkin"
            assignment = db.session.execute(
                db.select(Assignment)
                .filter(
                    Assignment.procedure_id == procedure.id,
                    Assignment.instrument_key == instrument,
                    Assignment.status.in_(("pending", "open")),
                    Assignment.opens_at <= answered_at,
                    Assignment.closes_at > answered_at,
                )
                .order_by(Assignment.opens_at.desc())
                .limit(1)
            ).scalar()
            body: dict[str, Any] = {
                "assignment_id": assignment.id if assignment is not None else None,
                "instrument": instrument,
                "version": 1,
                "answered_at": answered_at,
                "source": "caregiver" if person.caregiver else "patient",
                "answers": answers,
            }
            record_response(
                phone,
                patient,
                body,
                now=answered_at,
                idempotency_key=None,
                fingerprint=request_fingerprint(body),
            )
        if person.acknowledged:
            alert = db.session.execute(
                db.select(Alert).filter_by(patient_id=patient.id, status="open")
            ).scalar_one()
            acknowledge(actor, alert, alert.created_at + timedelta(hours=3))
    # The scheduler's closing job, run as it would have run on time: what closed unanswered
    # becomes missed at its closing, and the alert rules hear of it then.
    closings = db.session.execute(
        db.select(Assignment.closes_at)
        .filter(Assignment.status.in_(("pending", "open")), Assignment.closes_at <= now)
        .distinct()
        .order_by(Assignment.closes_at)
    ).scalars()
    for closing in list(closings):
        close_expired_assignments(closing + timedelta(minutes=1), limit=1000)


def _seed_research_cohort(site: Site, now: datetime) -> None:
    """A few hundred synthetic consented patients for the physician's research page."""
    from backend.research.demo import seed_research_cohort

    seed_research_cohort(site.id, now, site.timezone)


# What ``seed`` adds after the users, in this order (each part uses the real services).
SEEDS: tuple[Callable[[Site, datetime], None], ...] = (
    _seed_demo_patient,
    _seed_demo_cohort,
    _seed_research_cohort,
)


def print_logins() -> None:
    click.echo("Demo logins (site LYON):")
    for email, role, _name, password in DEMO_USERS:
        click.echo(f"  {role:<10} {email:<28} {password}")
    click.echo(f"  other site {OTHER_SITE_NURSE[0]:<28} {OTHER_SITE_NURSE[3]}")
    _print_enrollment_code()


def _print_enrollment_code() -> None:
    """A fresh code for the demo patient at every start (codes are stored hashed)."""
    from backend.auth.services import staff_principal
    from backend.patients.models import Patient
    from backend.patients.services import create_enrollment_code

    patient = db.session.execute(
        db.select(Patient).filter_by(mrn=DEMO_PATIENT_MRN)
    ).scalar_one_or_none()
    nurse = db.session.execute(
        db.select(User).filter_by(email=DEMO_USERS[0][0])
    ).scalar_one_or_none()
    if patient is None or nurse is None:
        return
    code, expires_at = create_enrollment_code(
        staff_principal(nurse, uuid.uuid4()), patient, now=utcnow()
    )
    db.session.commit()
    click.echo(
        f"Demo patient {patient.given_name} ({patient.mrn}): enrollment code {code} "
        f"(valid until {expires_at:%Y-%m-%d}); try it with"
    )
    click.echo(
        f"  curl -s -X POST {str(current_app.config['STAFF_BASE_URL']).rstrip('/')}"
        "/api/v1/enrollment/claim "
        "-H 'Content-Type: application/json' "
        f'-d \'{{"code": "{code}", "device": {{"platform": "android"}}}}\''
    )


@demo_cli.command("seed")
def seed_command() -> None:
    """Fill an empty database with a small demo cohort and print the logins."""
    created = seed()
    db.session.commit()
    click.echo(
        "Demo data created." if created else "The database already has data; nothing seeded."
    )
    print_logins()


@click.command("seed-on-first-run", hidden=True)
def seed_on_first_run_command() -> None:
    """Used by `make run`: seed when empty, print the logins either way."""
    seed()
    db.session.commit()
    print_logins()


# --- moving the demo through time ------------------------------------------------------------

_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    """``90m``, ``6h``, ``3d``, ``2w`` (or a sum of them: ``1d12h``) as a timedelta."""
    import re

    parts = re.findall(r"(\d+)\s*([mhdw])", text.strip().lower())
    if not parts or "".join(f"{n}{u}" for n, u in parts) != re.sub(r"\s", "", text.lower()):
        raise click.BadParameter(f"{text!r}: use a number and a unit m, h, d or w (e.g. 3d, 6h)")
    return sum((timedelta(**{_UNITS[u]: int(n)}) for n, u in parts), timedelta(0))


clock_cli = AppGroup(
    "clock",
    help="Development only: move the demo's clock forward (server and scheduler share it).",
)
demo_cli.add_command(clock_cli)


def _shifted_clock() -> ShiftedClock:
    clock = get_clock()
    if current_app.config["APP_ENV"] != "development" or not isinstance(clock, ShiftedClock):
        raise click.ClickException(
            "The demo clock moves only in development (APP_ENV=development, as `make run` sets)."
        )
    return clock


def _echo_clock(clock: ShiftedClock) -> None:
    offset = clock.offset()
    click.echo(f"Demo clock: {clock.now().isoformat(timespec='minutes')} (real time + {offset})")


@clock_cli.command("advance")
@click.argument("duration")
@click.option(
    "--step",
    default="1h",
    show_default=True,
    help="Run the scheduler's due work after each step, as a running scheduler would have.",
)
@click.option("--no-run-due", is_flag=True, help="Only move the clock; do no due work.")
def clock_advance_command(duration: str, step: str, no_run_due: bool) -> None:
    """Move the clock forward by DURATION (e.g. 1d, 6h, 2w): questionnaires open and close,
    reminders go out and alerts escalate as they would have meanwhile."""
    clock = _shifted_clock()
    remaining, stride = parse_duration(duration), parse_duration(step)
    totals: dict[str, int] = {}
    while remaining > timedelta(0):
        moved = stride if no_run_due is False and stride < remaining else remaining
        write_offset(clock.path, clock.offset() + moved)
        remaining -= moved
        if not no_run_due:
            from backend.schedule.worker import run_pass

            for job, count in run_pass().items():
                totals[job] = totals.get(job, 0) + count
    _echo_clock(clock)
    if not no_run_due:
        click.echo("Due work done: " + " ".join(f"{k}={v}" for k, v in totals.items()))


@clock_cli.command("show")
def clock_show_command() -> None:
    """Print the demo's current time and its offset from real time."""
    _echo_clock(_shifted_clock())


@clock_cli.command("reset")
def clock_reset_command() -> None:
    """Back to real time. What happened in the demo's future stays in the database; reseed
    (`make clean run`) for a fresh demo."""
    clock = _shifted_clock()
    clock.path.unlink(missing_ok=True)
    _echo_clock(clock)
