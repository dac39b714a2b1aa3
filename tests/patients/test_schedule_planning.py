"""The follow-up schedule: days per procedure kind, local opening times across DST, re-planning."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest

from backend.extensions import db
from backend.questionnaires.planning import local_instant, plan
from tests.conftest import T0, bearer, login
from tests.factories import make_patient, make_procedure, record

STANDARD_DAYS = [1, 7, 14, 21, 30, 42, 56, 90, 180, 365]
SCLEROTHERAPY_DAYS = [1, 7, 30, 90, 180, 365]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("kind", "days"),
    [
        ("cementoplasty", STANDARD_DAYS),
        ("screw_fixation", STANDARD_DAYS),
        ("screw_fixation_cementoplasty", STANDARD_DAYS),
        ("other_hardware", STANDARD_DAYS),
        ("sclerotherapy", SCLEROTHERAPY_DAYS),
    ],
)
def test_each_procedure_kind_gets_its_protocol_days_and_instruments(app, nurse_ada, kind, days):
    patient = make_patient(nurse_ada)
    procedure = make_procedure(nurse_ada, patient, kind=kind)
    schedule = sorted(procedure.schedule, key=lambda a: a.day)
    assert [a.day for a in schedule] == days
    followups = {a.day for a in schedule if a.instrument_key == "followup"}
    assert followups == {d for d in days if d in (30, 90, 180, 365)}
    assert all(a.reason == "protocol" and a.status == "pending" for a in schedule)
    windows = {a.day: a.closes_at - a.opens_at for a in schedule}
    assert windows[1] == timedelta(days=3) and windows[90] >= timedelta(days=7) - timedelta(hours=1)


def test_questionnaires_open_at_ten_local_on_both_sides_of_the_end_of_summer_time(app, nurse_ada):
    # Josette, 91, vertebroplasty, discharged in Paris five days before summer time ends
    # (2026-10-25): 10:00 is 08:00 UTC before, 09:00 UTC after.
    registered = utc(2026, 10, 20, 12, 0)
    patient = make_patient(nurse_ada, registered, given_name="Josette")
    procedure = make_procedure(
        nurse_ada,
        patient,
        registered,
        kind="cementoplasty",
        location="vertebra",
        performed_on=date(2026, 10, 19),
        discharged_on=date(2026, 10, 20),
    )
    by_day = {a.day: a for a in procedure.schedule}
    assert by_day[1].opens_at == utc(2026, 10, 21, 8, 0)  # CEST, UTC+2
    assert by_day[7].opens_at == utc(2026, 10, 27, 9, 0)  # CET, UTC+1
    # The day-1 window spans nothing special; the 3-day window of a questionnaire opened before
    # the change closes at 10:00 local after it: 72 h + 1 h of wall-clock.
    assert by_day[1].closes_at == utc(2026, 10, 24, 8, 0)
    day3 = plan(
        {"items": [{"day": 3, "instrument": "checkin", "version": 1, "window_days": 3}]},
        date(2026, 10, 20),
        "Europe/Paris",
        time(10, 0),
    )[0]
    assert day3.opens_at == utc(2026, 10, 23, 8, 0)
    assert day3.closes_at == utc(2026, 10, 26, 9, 0)
    assert day3.closes_at - day3.opens_at == timedelta(hours=73)


def test_a_patient_in_martinique_opens_at_ten_local_all_year(app, nurse_ada):
    # Léonie, 79, Fort-de-France: UTC-4 and no summer time.
    patient = make_patient(nurse_ada, given_name="Léonie", timezone="America/Martinique")
    procedure = make_procedure(
        nurse_ada, patient, discharged_on=date(2026, 10, 20), performed_on=date(2026, 10, 18)
    )
    assert {a.opens_at.time() for a in procedure.schedule} == {time(14, 0)}


@pytest.mark.parametrize("reminder", ["09:30", "11:00"])
def test_the_local_reminder_time_is_configurable(app_config, reminder):
    from backend.config import parse_hhmm

    item = plan(
        {"items": [{"day": 1, "instrument": "checkin", "version": 1, "window_days": 3}]},
        date(2027, 1, 10),
        "Europe/Paris",
        parse_hhmm(reminder),
    )[0]
    hour, minute = map(int, reminder.split(":"))
    assert item.opens_at == utc(2027, 1, 11, hour - 1, minute)


def test_a_local_time_inside_the_spring_forward_gap_moves_forward():
    # 02:30 does not exist in Paris on 2027-03-28; it is taken as 03:30 CEST = 01:30 UTC.
    from zoneinfo import ZoneInfo

    assert local_instant(date(2027, 3, 28), time(2, 30), ZoneInfo("Europe/Paris")) == utc(
        2027, 3, 28, 1, 30
    )


def test_correcting_the_discharge_date_replans_what_was_not_answered_and_keeps_the_rest(
    app, client, nurse_ada, clock
):
    patient = make_patient(nurse_ada)
    procedure = make_procedure(
        nurse_ada, patient, discharged_on=date(2026, 11, 22), performed_on=date(2026, 11, 20)
    )
    day1 = next(a for a in procedure.schedule if a.day == 1)
    clock.set(day1.opens_at + timedelta(hours=2))
    record(patient, clock.now(), assignment_id=day1.id)

    ada_headers = bearer(login(client, nurse_ada)["access_token"])
    response = client.patch(
        f"/api/v1/patients/{patient.id}/procedures/{procedure.id}",
        json={"discharged_on": "2026-11-21"},
        headers=ada_headers,
    )
    assert response.status_code == 200, response.get_json()
    schedule = {a["day"]: a for a in response.get_json()["schedule"]}
    assert schedule[1]["id"] == str(day1.id)  # the answered one is kept as it was
    assert schedule[1]["status"] == "completed"
    assert schedule[1]["opens_at"].startswith("2026-11-23T09:00")
    assert schedule[7]["opens_at"].startswith("2026-11-28T09:00")  # re-planned from the 21st
    assert len(schedule) == len(STANDARD_DAYS)


def test_a_discharge_date_after_received_answers_is_refused(app, client, nurse_ada, clock):
    patient = make_patient(nurse_ada)
    procedure = make_procedure(nurse_ada, patient)
    clock.set(T0 + timedelta(days=2))
    record(patient, clock.now())
    ada_headers = bearer(login(client, nurse_ada)["access_token"])
    response = client.patch(
        f"/api/v1/patients/{patient.id}/procedures/{procedure.id}",
        json={"discharged_on": "2026-11-26", "performed_on": "2026-11-25"},
        headers=ada_headers,
    )
    assert response.status_code == 422
    assert response.get_json()["errors"][0]["pointer"] == "/discharged_on"


def test_a_patient_who_moves_to_martinique_gets_the_rest_of_the_schedule_at_ten_there(
    app, client, nurse_ada, clock
):
    patient = make_patient(nurse_ada)
    procedure = make_procedure(
        nurse_ada, patient, discharged_on=date(2026, 11, 22), performed_on=date(2026, 11, 20)
    )
    clock.set(utc(2026, 11, 24, 12, 0))  # day 1 has opened; the rest is still to come
    headers = bearer(login(client, nurse_ada)["access_token"])
    response = client.patch(
        f"/api/v1/patients/{patient.id}", json={"timezone": "America/Martinique"}, headers=headers
    )
    assert response.status_code == 200
    db.session.expire_all()
    schedule = {a.day: a for a in db.session.get(type(procedure), procedure.id).schedule}
    assert schedule[1].opens_at == utc(2026, 11, 23, 9, 0)  # opened already: unchanged
    assert schedule[7].opens_at == utc(2026, 11, 29, 14, 0)  # 10:00 in Fort-de-France
    assert len(schedule) == len(STANDARD_DAYS)
