"""Local-time arithmetic for the follow-up schedule: pure functions, no database.

A questionnaire of day N opens on the calendar date ``discharged_on + N`` at the reminder time in
the patient's IANA zone, and closes ``window_days`` later at the same local wall-clock time. The
UTC instants therefore move by an hour across a daylight-saving change, which is what a patient
expects ("every day at ten"). A local time that does not exist (spring-forward gap) is moved
forward by the gap; an ambiguous one (fall-back) takes its first occurrence (``fold=0``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class PlannedQuestionnaire:
    day: int
    instrument_key: str
    instrument_version: int
    opens_at: datetime  # aware, UTC
    closes_at: datetime  # aware, UTC


def local_instant(on: date, at: time, zone: ZoneInfo) -> datetime:
    """The UTC instant of wall-clock ``at`` on ``on`` in ``zone`` (gaps skipped forward)."""
    # PEP 495: with fold=0 an ambiguous time takes its first occurrence, and a time inside a gap
    # is read with the offset before the gap, which lands the same distance after it.
    return datetime.combine(on, at).replace(tzinfo=zone, fold=0).astimezone(UTC)


def plan(
    protocol: Mapping[str, Any],
    discharged_on: date,
    timezone: str,
    reminder_time: time,
) -> list[PlannedQuestionnaire]:
    """The protocol's questionnaires for a discharge date, in the patient's zone."""
    zone = ZoneInfo(timezone)
    planned = []
    for item in protocol["items"]:
        day = int(item["day"])
        opens_on = discharged_on + timedelta(days=day)
        closes_on = opens_on + timedelta(days=int(item["window_days"]))
        planned.append(
            PlannedQuestionnaire(
                day=day,
                instrument_key=str(item["instrument"]),
                instrument_version=int(item["version"]),
                opens_at=local_instant(opens_on, reminder_time, zone),
                closes_at=local_instant(closes_on, reminder_time, zone),
            )
        )
    return planned


def day_number(discharged_on: date, instant: datetime, timezone: str) -> int:
    """Days since discharge of an instant, counted on the patient's local calendar."""
    return (instant.astimezone(ZoneInfo(timezone)).date() - discharged_on).days


# Why a message about a questionnaire would no longer help (a reminder, a notification in the
# outbox): it was answered, it was cancelled, or its window has closed. Closed means the message
# expired (it came too late); the others mean it was withdrawn.
QUESTIONNAIRE_CLOSED = "questionnaire_closed"


def message_no_longer_needed(status: str, closes_at: datetime, now: datetime) -> str | None:
    """The reason a message about a questionnaire in ``status`` is no longer useful at ``now``
    (``answered``, ``questionnaire_cancelled``, ``QUESTIONNAIRE_CLOSED``), None while it can
    still be answered. The reminder job and the outbox both ask here."""
    if status == "completed":
        return "answered"
    if status == "cancelled":
        return "questionnaire_cancelled"
    if status == "missed" or now >= closes_at:
        return QUESTIONNAIRE_CLOSED
    return None
