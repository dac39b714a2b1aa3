"""``flask demo seed``: a small demo cohort so that a newcomer sees something on first start."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime

import click
from flask.cli import AppGroup

from backend.auth.models import Site, User
from backend.auth.services import create_user, get_or_create_site
from backend.clock import utcnow
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
    for hook in seed_hooks:
        hook(lyon, now)
    return True


# Later domains (patients, responses, alerts) add their demo data here.
seed_hooks: list[Callable[[Site, datetime], None]] = []


def _seed_demo_patient(site: Site, now: datetime) -> None:
    """Marcel, 86, sacroiliac screws, discharged yesterday: the phone flow can be tried."""
    from datetime import date, timedelta

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
seed_hooks.append(_seed_demo_patient)


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
        "  curl -s -X POST http://127.0.0.1:5000/api/v1/enrollment/claim "
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
