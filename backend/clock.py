"""The one clock of the application.

Everything that depends on "now" asks this clock (or takes ``now`` as an argument), so tests move
time instead of sleeping: ``FrozenClock`` can be set and advanced.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from flask import current_app


class Clock:
    """Wall-clock time, always timezone-aware UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class FrozenClock(Clock):
    """A clock that only moves when told to (tests, simulations)."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FrozenClock needs an aware datetime")
        self._now = start.astimezone(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, when: datetime) -> None:
        if when.tzinfo is None:
            raise ValueError("FrozenClock needs an aware datetime")
        with self._lock:
            self._now = when.astimezone(UTC)

    def advance(self, delta: timedelta) -> datetime:
        with self._lock:
            self._now += delta
            return self._now


def get_clock() -> Clock:
    """The clock of the current application."""
    clock: Clock = current_app.extensions["clock"]
    return clock


def utcnow() -> datetime:
    """Now, from the current application's clock."""
    return get_clock().now()
