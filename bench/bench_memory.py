"""Benchmark (issue 17): the API workers' memory, after 10,000 requests and over a soak.

``bench_scale.py`` runs it on its database after the ingest runs (``make bench``); alone,
``BENCH_SCALE=0.1 python bench/bench_memory.py`` builds a database the same way and drops it.

The production app under gunicorn (3 sync workers, as ``bench_scale.py``'s ingest) is driven by
``wrk`` with a mix of what the API serves all day: of every ten requests, six phones posting a
check-in (``POST /me/responses``), three nurses reading the queue (``GET /alerts``), one a
patient's timeline of a year (patients whose history the check-ins do not grow). Each worker's
RSS (``VmRSS`` of ``/proc/<pid>/status``, the master's children) is read when the instance has
answered ``BENCH_MEMORY_REQUESTS`` (10,000), then every few seconds while the same mix runs for
``BENCH_SOAK_SECONDS`` (120 by default so that ``make bench`` stays short; 3600 for the goal's
hour). The growth is the least-squares slope of each worker's RSS over the soak, in MB per hour:
"no growth" is read as below ``GROWTH_LIMIT_MB_PER_HOUR`` (a short soak only hints at it).

Printed in the table format of ``make bench`` and written to ``bench/results/memory.json``; a
soak of the goal's hour or longer (``make bench-soak``) to ``bench/results/memory-soak.json``, so
that ``make bench``'s short one does not overwrite it (``summary.py`` judges the growth goal
only from an hour). Nothing is asserted.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from backend import create_app
from backend.extensions import db
from bench import dataset
from bench.bench_scale import (
    RESULTS,
    SCALE,
    URL,
    WRK_DONE,
    WRK_SCRIPT,
    _config,
    build,
    gunicorn,
    ingest_env,
    patient_tokens,
    wrk,
    wrk_result,
    wrk_start,
)
from bench.procs import children, rss_mb

REQUESTS = int(os.environ.get("BENCH_MEMORY_REQUESTS", "10000"))
SOAK_SECONDS = float(os.environ.get("BENCH_SOAK_SECONDS", "120"))
RSS_LIMIT_MB = 150
GROWTH_LIMIT_MB_PER_HOUR = 5.0
# The goal's soak is an hour: such a run is kept apart from make bench's short hint.
RESULT = "memory-soak.json" if SOAK_SECONDS >= 3600 else "memory.json"
TIMELINE_PATIENTS = 10

# Of every ten requests: six check-ins, three queue reads, one timeline (WRK_SCRIPT's phones).
MIX_SCRIPT = """
local staff = os.getenv("BENCH_STAFF_TOKEN")
local timelines = {}
for line in io.lines(os.getenv("BENCH_TIMELINES")) do timelines[#timelines + 1] = line end
local mix_counter = 0
function request()
  mix_counter = mix_counter + 1
  local slot = mix_counter % 10
  if slot < 6 then return post_response() end
  local path = "/api/v1/alerts"
  if slot == 9 then path = timelines[math.floor(mix_counter / 10) % #timelines + 1] end
  return wrk.format("GET", path, {["Authorization"] = "Bearer " .. staff})
end
"""


def slope_mb_per_hour(samples: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, MB) samples, in MB per hour."""
    if len(samples) < 3:
        return None
    n = len(samples)
    mean_t = sum(t for t, _ in samples) / n
    mean_y = sum(y for _, y in samples) / n
    var = sum((t - mean_t) ** 2 for t, _ in samples)
    if var == 0:
        return None
    cov = sum((t - mean_t) * (y - mean_y) for t, y in samples)
    return cov / var * 3600


def staff_and_timelines(db_url: str, valid_for: timedelta) -> tuple[str, list[uuid.UUID]]:
    """A nurse's access token (a session opened as the sign-in does) and patients of her site."""
    from backend.auth.models import User
    from backend.auth.services import staff_principal, start_staff_session
    from backend.auth.tokens import issue_access_token
    from backend.clock import Clock

    app = create_app(_config(db_url))
    with app.app_context():
        now = Clock().now()
        nurse = db.session.execute(
            db.select(User).filter_by(email="nurse0@bench.example")
        ).scalar_one()
        issued = start_staff_session(nurse, now=now)
        db.session.commit()
        ttl = timedelta(seconds=int(app.config["ACCESS_TOKEN_TTL_SECONDS"]))
        token, _ = issue_access_token(
            staff_principal(nurse, issued.principal.session_id),
            now + max(timedelta(0), valid_for - ttl),
        )
        patients = list(
            db.session.execute(
                sa.text("SELECT id FROM patients WHERE site_id = :site ORDER BY mrn LIMIT :n"),
                {"site": nurse.site_id, "n": TIMELINE_PATIENTS},
            ).scalars()
        )
        db.session.remove()
        db.engine.dispose()
    return token, patients


def measure(db_url: str) -> dict[str, Any]:
    valid_for = timedelta(seconds=SOAK_SECONDS + 1800)  # the warm-up and the soak, with room
    staff, timeline_patients = staff_and_timelines(db_url, valid_for)
    tokens = patient_tokens(db_url, 2000, valid_for=valid_for, exclude=tuple(timeline_patients))
    work = Path(tempfile.mkdtemp(prefix="bench-memory-"))
    try:
        (work / "tokens.txt").write_text("\n".join(tokens))
        (work / "timelines.txt").write_text(
            "\n".join(f"/api/v1/patients/{p}/timeline" for p in timeline_patients)
        )
        (work / "mix.lua").write_text(WRK_SCRIPT + MIX_SCRIPT + WRK_DONE)
        env = ingest_env(db_url, work / "tokens.txt") | {
            "BENCH_STAFF_TOKEN": staff,
            "BENCH_TIMELINES": str(work / "timelines.txt"),
        }
        return _run(work / "mix.lua", env)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run(script: Path, env: dict[str, str]) -> dict[str, Any]:
    with gunicorn("wsgi:app", env) as server:
        workers = children(server.pid)
        booted = {pid: rss_mb(pid) for pid in workers}
        # The first requests, in runs sized from the rate seen so far, until REQUESTS answered.
        t0 = time.monotonic()
        served, errors, seconds = 0, 0, 10.0
        while served < REQUESTS:
            run = wrk(server.base, script, env, seconds)
            served += run["requests"]
            errors += run["non2xx"] + run["socket_errors"]
            rate = max(run["rps"], 1.0)
            seconds = min(60.0, max(2.0, (REQUESTS - served) / rate + 1))
        warm_s = time.monotonic() - t0
        after = {pid: rss_mb(pid) for pid in workers}
        print(
            f"memory: {served:,} requests in {warm_s:.0f} s ({errors} errors), worker RSS "
            + ", ".join(f"{v:.0f}" for v in after.values() if v)
            + " MB"
        )
        # The soak: the same mix, each worker's RSS sampled every few seconds.
        interval = max(2.0, SOAK_SECONDS / 120)
        samples: dict[int, list[tuple[float, float]]] = {pid: [] for pid in workers}
        proc = wrk_start(server.base, script, env, SOAK_SECONDS)
        try:
            start = time.monotonic()
            while proc.poll() is None:
                now = time.monotonic() - start
                for pid in workers:
                    value = rss_mb(pid)
                    if value is not None:
                        samples[pid].append((now, value))
                time.sleep(interval)
            soak = wrk_result(proc)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        restarted = children(server.pid) != workers
    per_worker = []
    for pid in workers:
        points = samples[pid]
        slope = slope_mb_per_hour(points)
        per_worker.append(
            {
                "pid": pid,
                "booted_mb": _round(booted[pid]),
                "after_requests_mb": _round(after[pid]),
                "soak_start_mb": _round(points[0][1]) if points else None,
                "soak_end_mb": _round(points[-1][1]) if points else None,
                "soak_max_mb": _round(max(y for _, y in points)) if points else None,
                "slope_mb_per_hour": round(slope, 2) if slope is not None else None,
                "samples": len(points),
            }
        )
    slopes = [w["slope_mb_per_hour"] for w in per_worker if w["slope_mb_per_hour"] is not None]
    peaks = [
        v for w in per_worker for v in (w["after_requests_mb"], w["soak_max_mb"]) if v is not None
    ]
    return {
        "scale": SCALE,
        "workers": len(workers),
        "mix": {"post_responses": 6, "get_alerts": 3, "timeline": 1},
        "requests": served,
        "requests_seconds": round(warm_s, 1),
        "request_errors": errors,
        "max_rss_after_requests_mb": _round(
            max((v for v in after.values() if v is not None), default=None)
        ),
        "max_rss_mb": _round(max(peaks, default=None)),
        "soak_seconds": SOAK_SECONDS,
        "soak_sample_seconds": interval,
        "soak": soak,
        "max_slope_mb_per_hour": max(slopes, default=None),
        "workers_restarted": restarted,
        "per_worker": per_worker,
        "rss_limit_mb": RSS_LIMIT_MB,
        "growth_limit_mb_per_hour": GROWTH_LIMIT_MB_PER_HOUR,
    }


def _round(value: float | None) -> float | None:
    return round(value, 1) if value is not None else None


def report(result: dict[str, Any]) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / RESULT).write_text(json.dumps(result, indent=2))
    soak = result["soak_seconds"]
    rows = [
        (
            f"API worker RSS after {result['requests']:,} requests (MB)",
            f"<= {RSS_LIMIT_MB}",
            result["max_rss_after_requests_mb"],
        ),
        ("API worker RSS, peak over the soak (MB)", f"<= {RSS_LIMIT_MB}", result["max_rss_mb"]),
        (
            f"RSS growth over a {soak:g} s soak (MB/h)",
            f"< {GROWTH_LIMIT_MB_PER_HOUR:g}",
            result["max_slope_mb_per_hour"],
        ),
    ]
    print(f"\nMemory, {result['workers']} gunicorn workers, mix 6 POST / 3 queue / 1 timeline")
    print(f"{'measure':<44} {'goal':<10} measured")
    for name, goal, value in rows:
        print(f"{name:<44} {goal:<10} {value}")
    for w in result["per_worker"]:
        print(
            f"  worker {w['pid']}: booted {w['booted_mb']} MB, after the requests "
            f"{w['after_requests_mb']} MB, soak {w['soak_start_mb']} -> {w['soak_end_mb']} MB "
            f"({w['slope_mb_per_hour']} MB/h over {w['samples']} samples)"
        )
    print(
        f"(soak: {result['soak']['requests']:,} requests at {result['soak']['rps']:.0f} req/s; "
        f"written to {RESULTS / RESULT})"
    )


def main() -> None:
    db_url, drop_schema = dataset.new_schema(URL)
    try:
        build(db_url)
        result = measure(db_url)
    finally:
        drop_schema()
    report(result)


if __name__ == "__main__":
    main()
