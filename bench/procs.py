"""What the benchmarks read of their processes from ``/proc`` (Linux): resident memory, CPU
time, a gunicorn master's workers, and the CPU of the PostgreSQL backends that serve a named
client (a local server only: a remote one's backends are not in this ``/proc``)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa


def _stat(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command ("pid (comm) state ppid ...": the
    command may hold spaces, so split after its ")"); None once the process is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None


def rss_mb(pid: int) -> float | None:
    """Resident memory (``VmRSS``) in MB; None once the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return None


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used (a figure that moves less with the machine's
    other load than wall-clock time); 0 once it is gone."""
    fields = _stat(pid)
    if fields is None:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (gunicorn's workers)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) and int(fields[1]) == pid:
            found.append(int(entry.name))
    return sorted(found)


def backend_cpu(engine: sa.Engine, application_name: str) -> dict[int, float]:
    """CPU seconds used so far by each PostgreSQL backend whose client set
    ``application_name`` (libpq's ``PGAPPNAME``, or the URL's ``application_name``)."""
    with engine.connect() as conn:
        pids = conn.execute(
            sa.text("SELECT pid FROM pg_stat_activity WHERE application_name = :name"),
            {"name": application_name},
        ).scalars()
        return {pid: used for pid in pids if (used := cpu_seconds(pid))}


@contextmanager
def cpu_used(master: int, engine: sa.Engine, application_name: str) -> Iterator[dict[str, float]]:
    """CPU seconds used while the block runs by a gunicorn master's workers (``workers``) and
    by the PostgreSQL backends of ``application_name`` (``postgresql``, absent when none is on
    this host). A process started inside the block counts from zero; one that ended inside it
    is not counted (neither happens to a warmed-up gunicorn and its pooled connections)."""
    workers = {pid: cpu_seconds(pid) for pid in children(master)}
    backends = backend_cpu(engine, application_name)
    used: dict[str, float] = {}
    yield used
    used["workers"] = sum(cpu_seconds(pid) - workers.get(pid, 0.0) for pid in children(master))
    after = backend_cpu(engine, application_name)
    if after:
        used["postgresql"] = sum(cpu - backends.get(pid, 0.0) for pid, cpu in after.items())
