"""The development clock a trainer moves with `flask demo clock advance` (server and scheduler
read one offset file, so both see the same future)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import click
import pytest

from backend.clock import ShiftedClock, write_offset
from backend.demo import parse_duration
from backend.extensions import db
from backend.questionnaires.models import Assignment
from tests.factories import make_patient, make_procedure
from tests.notify.conftest import memory_channels  # noqa: F401 - the provider boundary


@pytest.fixture
def clock(tmp_path):
    return ShiftedClock(tmp_path / "demo-clock.json")


@pytest.fixture
def app_config():
    return {"APP_ENV": "development"}


def test_a_second_process_sees_the_offset_another_one_wrote(tmp_path):
    path = tmp_path / "demo-clock.json"
    server, scheduler = ShiftedClock(path), ShiftedClock(path)
    assert abs(server.now() - datetime.now(UTC)) < timedelta(minutes=1)

    write_offset(path, timedelta(days=3))

    assert scheduler.offset() == timedelta(days=3)
    assert abs(scheduler.now() - (datetime.now(UTC) + timedelta(days=3))) < timedelta(minutes=1)
    write_offset(path, timedelta(days=5))
    assert server.offset() == timedelta(days=5)  # re-read when the file changes


def test_durations_read_as_a_trainer_types_them():
    assert parse_duration("3d") == timedelta(days=3)
    assert parse_duration("1d12h") == timedelta(days=1, hours=12)
    assert parse_duration("2w") == timedelta(weeks=2)
    for bad in ("3", "3x", "d", "-1d", "3d junk"):
        with pytest.raises(click.BadParameter):
            parse_duration(bad)


def test_advancing_two_days_opens_the_day_one_checkin_and_texts_the_reminder(
    app,
    nurse_ada,
    clock,
    memory_channels,  # noqa: F811
):
    today_in_lyon = datetime.now(ZoneInfo("Europe/Paris")).date()
    patient = make_patient(nurse_ada, now=clock.now(), contact_channels=["sms"])
    make_procedure(
        nurse_ada,
        patient,
        now=clock.now(),
        performed_on=today_in_lyon - timedelta(days=2),
        discharged_on=today_in_lyon,
    )

    result = app.test_cli_runner().invoke(args=["demo", "clock", "advance", "2d", "--step", "6h"])

    assert result.exit_code == 0, result.output
    assert "real time + 2 days" in result.output
    assert clock.offset() == timedelta(days=2)
    day_one = db.session.execute(
        db.select(Assignment).filter_by(patient_id=patient.id, day=1)
    ).scalar_one()
    assert day_one.status == "open"
    assert [m.to for m in memory_channels.sms.sent][:1] == [patient.phone]


def test_the_clock_refuses_to_move_outside_development(app):
    app.config["APP_ENV"] = "production"

    result = app.test_cli_runner().invoke(args=["demo", "clock", "advance", "1d"])

    assert result.exit_code != 0
    assert "only in development" in result.output
