"""The patient's timeline lists the alerts (through the alerts domain's receiver), with each
summary in the caller's language, in the same number of statements whatever the history.

Marcel, 86, sacroiliac screws, discharged 2026-11-22; nurse Ada, site Lyon (French).
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from backend.alerts import services as alerts
from backend.alerts.models import Alert
from backend.auth.models import Site
from backend.extensions import db
from tests.conftest import bearer, login
from tests.factories import checkin_answers, make_patient, make_procedure, principal_of, record
from tests.statements import counted_statements

DISCHARGE = date(2026, 11, 22)


@pytest.fixture
def nurse_ada_named(nurse_ada):
    from backend.auth.models import User

    db.session.get(User, nurse_ada.id).full_name = "Ada Martin"
    db.session.commit()
    return nurse_ada


@pytest.fixture
def marcel(app, nurse_ada):
    patient = make_patient(nurse_ada)
    make_procedure(nurse_ada, patient, discharged_on=DISCHARGE)
    return patient


def red_flag(patient, clock, hours: int = 0):
    when = clock.now() + timedelta(hours=hours)
    return record(patient, when, now=when, answers=checkin_answers(symptoms=["chest_pain"]))


def timeline(client, nurse, patient, **headers):
    auth = bearer(login(client, nurse)["access_token"])
    response = client.get(f"/api/v1/patients/{patient.id}/timeline", headers={**auth, **headers})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_the_timeline_of_a_patient_with_an_open_red_flag_lists_it(client, nurse_ada, marcel, clock):
    clock.set(clock.now() + timedelta(days=3))
    red_flag(marcel, clock)
    [alert] = timeline(client, nurse_ada, marcel)["alerts"]
    assert (alert["kind"], alert["severity"], alert["status"]) == ("red_flag", "urgent", "open")
    stored = db.session.execute(db.select(Alert).filter_by(patient_id=marcel.id)).scalar_one()
    assert alert["id"] == str(stored.id)
    assert alert["summary"] == stored.summary["fr"]  # Lyon's language, no Accept-Language
    assert alert["patient"]["id"] == str(marcel.id)


def test_the_timeline_lists_resolved_alerts_too_oldest_first(client, nurse_ada, marcel, clock):
    clock.set(clock.now() + timedelta(days=3))
    red_flag(marcel, clock)
    first = db.session.execute(db.select(Alert).filter_by(patient_id=marcel.id)).scalar_one()
    alerts.resolve(principal_of(nurse_ada), first, "sent_to_emergency", None, clock.now())
    db.session.commit()
    clock.advance(timedelta(days=2))
    red_flag(marcel, clock)
    listed = timeline(client, nurse_ada, marcel)["alerts"]
    assert [(a["status"], a["outcome"]) for a in listed] == [
        ("resolved", "sent_to_emergency"),
        ("open", None),
    ]


def test_summaries_follow_accept_language_else_the_sites_language(client, nurse_ada, marcel, clock):
    clock.set(clock.now() + timedelta(days=3))
    red_flag(marcel, clock)
    stored = db.session.execute(db.select(Alert).filter_by(patient_id=marcel.id)).scalar_one()
    assert stored.summary["en"] != stored.summary["fr"]
    english = timeline(client, nurse_ada, marcel, **{"Accept-Language": "en-GB,en;q=0.9"})
    assert english["alerts"][0]["summary"] == stored.summary["en"]
    auth = bearer(login(client, nurse_ada)["access_token"])
    queue = client.get("/api/v1/alerts", headers={**auth, "Accept-Language": "en"}).get_json()
    assert queue["items"][0]["summary"] == stored.summary["en"]
    one = client.get(
        f"/api/v1/alerts/{stored.id}", headers={**auth, "Accept-Language": "de, en;q=0.5"}
    ).get_json()
    assert one["summary"] == stored.summary["en"]
    # A language we do not have, or none, gives the site's; an English-speaking site's is English.
    german = client.get("/api/v1/alerts", headers={**auth, "Accept-Language": "de"}).get_json()
    assert german["items"][0]["summary"] == stored.summary["fr"]
    db.session.get(Site, nurse_ada.site_id).locale = "en"
    db.session.commit()
    assert timeline(client, nurse_ada, marcel)["alerts"][0]["summary"] == stored.summary["en"]


def history(patient, nurse, clock, answers: int) -> None:
    """``answers`` check-ins and one typed in by the nurse, then a red flag the nurse resolves
    and another she acknowledges (a second history reports on the acknowledged one first)."""
    # Six hours apart: within the unscheduled check-ins a patient may send a day.
    for n in range(answers):
        when = clock.now() + timedelta(hours=6 * n)
        record(patient, when, now=when, source="caregiver" if n % 2 else "patient")
    staff_principal = principal_of(nurse)
    when = clock.now() + timedelta(hours=6 * answers)
    record_as(staff_principal, patient, when)
    clock.advance(timedelta(hours=6 * answers, days=1))
    red_flag(patient, clock)
    first = db.session.execute(
        db.select(Alert).filter(Alert.patient_id == patient.id, Alert.status != "resolved")
    ).scalar_one()
    alerts.resolve(staff_principal, first, "advice_given", "Called.", clock.now())
    db.session.commit()
    clock.advance(timedelta(days=1))
    red_flag(patient, clock)
    second = db.session.execute(
        db.select(Alert).filter_by(patient_id=patient.id, status="open")
    ).scalar_one()
    alerts.acknowledge(staff_principal, second, clock.now())
    db.session.commit()


def record_as(principal, patient, when) -> None:
    from backend.questionnaires import services as questionnaires

    body = {
        "assignment_id": None,
        "instrument": "checkin",
        "version": 1,
        "answered_at": when,
        "source": "nurse",
        "answers": checkin_answers(),
    }
    questionnaires.record_response(
        principal,
        patient,
        body,
        now=when,
        idempotency_key=None,
        fingerprint=questionnaires.request_fingerprint(body),
    )
    db.session.commit()


def statements_of_timeline(client, nurse, patient) -> tuple[dict, list[str]]:
    auth = bearer(login(client, nurse)["access_token"])
    path = f"/api/v1/patients/{patient.id}/timeline"
    db.session.expunge_all()  # the request loads the patient as it would in its own session
    with counted_statements() as seen:
        response = client.get(path, headers=auth)
    assert response.status_code == 200
    return response.get_json(), seen


def test_the_timeline_runs_as_many_statements_for_a_long_history_as_for_a_short_one(
    client, nurse_ada, nurse_ada_named, clock
):
    clock.set(clock.now() + timedelta(days=3))
    josette = make_patient(nurse_ada, given_name="Josette")
    make_procedure(nurse_ada, josette, kind="cementoplasty", location="vertebra")
    history(josette, nurse_ada, clock, answers=1)
    short, few = statements_of_timeline(client, nurse_ada, josette)
    marcel = make_patient(nurse_ada)
    make_procedure(nurse_ada, marcel, discharged_on=DISCHARGE)
    history(marcel, nurse_ada, clock, answers=12)
    history(marcel, nurse_ada, clock, answers=12)
    long, many = statements_of_timeline(client, nurse_ada, marcel)
    assert (len(short["responses"]), len(short["alerts"])) == (4, 2)
    assert (len(long["responses"]), len(long["alerts"])) == (30, 3)
    assert long["responses"][12]["entered_by"]["display_name"] == "Ada Martin"
    assert len(many) == len(few), "\n".join(s.split("\n")[-1][:120] for s in many)
    assert len(many) <= TIMELINE_BUDGET, "\n".join(" ".join(s.split())[:120] for s in many)


# The session with its user, the patient with procedures (and their protocols), consents and
# schedules (four; the timeline's schedule is theirs, not read again), the responses with the
# nurses who entered them (two), the alerts without their notes and history, the staff they name
# (their patient is loaded), the audit row.
TIMELINE_BUDGET = 10


def test_a_staff_members_own_language_comes_before_accept_language(
    client, nurse_ada, marcel, clock
):
    from backend.auth.models import User

    clock.set(clock.now() + timedelta(days=3))
    red_flag(marcel, clock)
    stored = db.session.execute(db.select(Alert).filter_by(patient_id=marcel.id)).scalar_one()
    db.session.get(User, nurse_ada.id).locale = "en"  # Ada reads English, at a French site
    db.session.commit()
    french_browser = timeline(client, nurse_ada, marcel, **{"Accept-Language": "fr"})
    assert french_browser["alerts"][0]["summary"] == stored.summary["en"]


def test_an_admin_gives_a_new_account_its_language_and_only_a_known_one(client, nurse_ada):
    from tests.conftest import make_staff

    admin = make_staff("chloe@lyon.example", "admin", "LYON")
    auth = bearer(login(client, admin)["access_token"])
    account = {"email": "basile@lyon.example", "password": "a-long-enough-password-42"}
    created = client.post(
        "/api/v1/users", json={**account, "role": "nurse", "locale": "en"}, headers=auth
    )
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["locale"] == "en"
    refused = client.post(
        "/api/v1/users",
        json={**account, "email": "b2@lyon.example", "role": "nurse", "locale": "de"},
        headers=auth,
    )
    assert refused.status_code == 422
    assert [e["pointer"] for e in refused.get_json()["errors"]] == ["/locale"]
