"""The schedule's local-time rules of clinical.md, pure (no database): windows of 3 days (7 from
day 90), the reminder ladder, quiet hours moved to their end across daylight-saving changes, and
patients whose zone is far from UTC (the calendar day is theirs, not Greenwich's)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from backend.notify.quiet_hours import in_quiet_hours, sendable_at
from backend.questionnaires.planning import day_number, local_instant, plan
from backend.schedule.services import reminder_times

DATA = Path(__file__).parents[2] / "backend" / "questionnaires" / "data"
QUIET = (time(21, 0), time(8, 0))  # the default 21:00-08:00
PARIS = ZoneInfo("Europe/Paris")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def wall(instant: datetime, zone: ZoneInfo) -> str:
    return instant.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")


@pytest.mark.parametrize("name", ["protocol.standard.v1.json", "protocol.sclerotherapy.v1.json"])
def test_every_shipped_window_is_three_days_before_day_90_and_seven_from_day_90(name):
    protocol = json.loads((DATA / name).read_text(encoding="utf-8"))
    windows = {item["day"]: item["window_days"] for item in protocol["items"]}
    assert windows == {day: 3 if day < 90 else 7 for day in windows}
    # Each closes at the reminder time of the local calendar day 3 (or 7) days on.
    zone = ZoneInfo("Europe/Paris")
    for item in plan(protocol, date(2026, 10, 20), "Europe/Paris", time(10, 0)):
        opens, closes = item.opens_at.astimezone(zone), item.closes_at.astimezone(zone)
        assert (opens.time(), closes.time()) == (time(10, 0), time(10, 0))
        assert (closes.date() - opens.date()).days == windows[item.day]


@pytest.mark.parametrize(
    ("due", "expected", "hours_later"),
    [
        # Saturday 27 March 2027, 22:00 CET: summer time starts that night, so 08:00 the next
        # morning is 06:00 UTC, nine hours later, not ten.
        (utc(2027, 3, 27, 21, 0), "2027-03-28 08:00 CEST", 9),
        # Saturday 24 October 2026, 22:00 CEST: summer time ends that night (eleven hours).
        (utc(2026, 10, 24, 20, 0), "2026-10-25 08:00 CET", 11),
        # Inside the hour that repeats (02:30 CET, the second time): still 08:00 local.
        (utc(2026, 10, 25, 1, 30), "2026-10-25 08:00 CET", 5.5),
        # Just after the skipped hour (03:30 CEST, 01:30 UTC): 08:00 CEST.
        (utc(2027, 3, 28, 1, 30), "2027-03-28 08:00 CEST", 4.5),
    ],
)
def test_a_reminder_falling_in_quiet_hours_across_a_daylight_saving_change_waits_for_eight_local(
    due, expected, hours_later
):
    moved = sendable_at(due, PARIS, QUIET)
    assert wall(moved, PARIS) == expected
    assert moved - due == timedelta(hours=hours_later)
    assert not in_quiet_hours(moved, PARIS, QUIET)


def test_a_reminder_ladder_at_seven_local_across_the_start_of_summer_time_goes_out_at_eight():
    # A site that reminds at 07:00: every rung falls in the quiet hours and waits for 08:00,
    # before and after the clocks go forward on Sunday 28 March 2027.
    opens = local_instant(date(2027, 3, 27), time(7, 0), PARIS)
    closes = local_instant(date(2027, 3, 30), time(7, 0), PARIS)
    ladder = reminder_times(opens, closes, PARIS, QUIET)
    assert [wall(due, PARIS) for _, due in ladder] == [
        "2027-03-27 08:00 CET",
        "2027-03-28 08:00 CEST",
        "2027-03-29 08:00 CEST",
    ]


def test_a_reminder_time_inside_the_quiet_hours_keeps_every_rung_inside_its_window():
    # Reminder at 22:00: each rung waits for the next morning; the last, on the window's last
    # morning, still comes before it closes at 22:00.
    opens = local_instant(date(2026, 10, 23), time(22, 0), PARIS)
    closes = local_instant(date(2026, 10, 26), time(22, 0), PARIS)
    ladder = reminder_times(opens, closes, PARIS, QUIET)
    assert [wall(due, PARIS) for _, due in ladder] == [
        "2026-10-24 08:00 CEST",
        "2026-10-25 08:00 CET",
        "2026-10-26 08:00 CET",
    ]


@pytest.mark.parametrize(
    ("zone", "opens_utc"),
    [
        # Kiritimati (UTC+14): day 1 at 10:00 there is still the discharge day in UTC.
        ("Pacific/Kiritimati", utc(2026, 11, 22, 20, 0)),
        # Pago Pago (UTC-11): day 1 at 10:00 there is 21:00 UTC the same day.
        ("Pacific/Pago_Pago", utc(2026, 11, 23, 21, 0)),
        # Chatham Islands (UTC+13:45 in their summer): a quarter-hour offset.
        ("Pacific/Chatham", utc(2026, 11, 22, 20, 15)),
    ],
)
def test_a_patient_far_from_utc_is_asked_at_ten_on_his_own_calendar_day(zone, opens_utc):
    tz = ZoneInfo(zone)
    protocol = {"items": [{"day": 1, "instrument": "checkin", "version": 1, "window_days": 3}]}
    [day1] = plan(protocol, date(2026, 11, 22), zone, time(10, 0))
    assert day1.opens_at == opens_utc
    assert day1.opens_at.astimezone(tz).replace(tzinfo=None) == datetime(2026, 11, 23, 10, 0)
    # An answer at that moment is day 1 of the follow-up, on the patient's calendar.
    assert day_number(date(2026, 11, 22), day1.opens_at, zone) == 1
    just_after_midnight = local_instant(date(2026, 11, 23), time(0, 5), tz)
    assert day_number(date(2026, 11, 22), just_after_midnight, zone) == 1
    assert day_number(date(2026, 11, 22), just_after_midnight - timedelta(minutes=10), zone) == 0
    # The reminders are at 10:00 local, never moved: 10:00 is outside 21:00-08:00 there.
    ladder = reminder_times(day1.opens_at, day1.closes_at, tz, QUIET)
    assert [due.astimezone(tz).time() for _, due in ladder] == [time(10, 0)] * 3
    assert [due - day1.opens_at for _, due in ladder] == [
        timedelta(0),
        timedelta(days=1),
        timedelta(days=2),
    ]
