"""Quiet hours in the patient's zone: pure functions, no database.

``QUIET_HOURS`` is a local range such as 21:00-08:00 (it may wrap past midnight). Nothing is sent
to a patient inside it; what falls inside waits for its end, computed on the local calendar so
that it is right across daylight-saving changes.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from backend.questionnaires.planning import local_instant

QuietHours = tuple[time, time]


def in_quiet_hours(instant: datetime, zone: ZoneInfo, quiet: QuietHours) -> bool:
    start, end = quiet
    local = instant.astimezone(zone).time()
    if start < end:
        return start <= local < end
    return local >= start or local < end


def after_quiet_hours(instant: datetime, zone: ZoneInfo, quiet: QuietHours) -> datetime:
    """``instant`` itself, or the end of the quiet hours it falls in (UTC)."""
    if not in_quiet_hours(instant, zone, quiet):
        return instant
    start, end = quiet
    local = instant.astimezone(zone)
    ends_on = local.date()
    if start > end and local.time() >= start:  # evening part of a range that wraps midnight
        ends_on += timedelta(days=1)
    return local_instant(ends_on, end, zone)
