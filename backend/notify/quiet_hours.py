"""Quiet hours in the patient's zone: the one place that decides when a patient may be sent
something (the reminder ladder, the reminder job, the outbox's claim and its retries ask here).

``QUIET_HOURS`` is a local range such as 21:00-08:00 (it may wrap past midnight). Nothing is sent
to a patient inside it; what falls inside waits for its end, computed on the local calendar so
that it is right across daylight-saving changes. No database; ``sendable_at`` reads the setting
from the current application unless given one.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import current_app

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


def sendable_at(
    instant: datetime, zone: ZoneInfo | str, quiet: QuietHours | None = None
) -> datetime:
    """The first instant from ``instant`` at which a patient living in ``zone`` may be sent a
    message: ``instant`` itself, or the end of the quiet hours it falls in (the application's
    ``QUIET_HOURS`` unless ``quiet`` is given)."""
    if isinstance(zone, str):
        zone = ZoneInfo(zone)
    if quiet is None:
        quiet = current_app.config["QUIET_HOURS"]
    return after_quiet_hours(instant, zone, quiet)
