"""The one clock of the application.

Everything that depends on "now" asks this clock (or takes ``now`` as an argument), so tests move
time instead of sleeping: ``FrozenClock`` can be set and advanced.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

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


class ShiftedClock(Clock):
    """Wall-clock time moved forward by an offset kept in a file (development only).

    ``flask demo clock advance`` writes the offset; the server and the scheduler, two processes,
    read the same file, so a trainer moves the demo through time for both at once. The file is
    re-read only when it changes (one ``stat`` per call).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._mtime: int | None = None
        self._offset = timedelta(0)

    def offset(self) -> timedelta:
        try:
            mtime = os.stat(self.path).st_mtime_ns
        except FileNotFoundError:
            return timedelta(0)
        with self._lock:
            if mtime != self._mtime:
                self._offset = read_offset(self.path)
                self._mtime = mtime
            return self._offset

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset()


def demo_clock_path(instance_path: str) -> Path:
    """Where the development clock's offset lives (the instance folder, beside the database)."""
    return Path(instance_path) / "demo-clock.json"


def read_offset(path: Path) -> timedelta:
    """The offset stored by ``write_offset`` (zero when there is none)."""
    try:
        seconds = float(json.loads(path.read_text())["offset_seconds"])
    except FileNotFoundError:
        return timedelta(0)
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path} is not a demo clock file; delete it to reset the clock") from exc
    return timedelta(seconds=seconds)


def write_offset(path: Path, offset: timedelta) -> None:
    """Store the offset atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"offset_seconds": offset.total_seconds()}))
    tmp.replace(path)


def get_clock() -> Clock:
    """The clock of the current application."""
    clock: Clock = current_app.extensions["clock"]
    return clock


def utcnow() -> datetime:
    """Now, from the current application's clock."""
    return get_clock().now()
