"""Benchmark: one ``POST /api/v1/me/responses`` in process, the whole request (authentication,
validation, idempotency, alert rules, audit, commit, the 201 body), for a patient with a year
of history, on PostgreSQL (``BENCH_DATABASE_URL``, a schema of its own dropped afterwards).

It prints the CPU time per request (``time.thread_time``: it moves less with the machine's load
than wall time), the wall time, and the SQL statements per request; ``BENCH_PROFILE=1`` adds a
cProfile of the requests (top functions by cumulative time). Numbers are printed, never asserted.
The throughput under gunicorn against the bare baseline is ``bench_scale.py``'s ingest phase.
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backend import create_app
from backend.clock import FrozenClock
from backend.extensions import db
from bench import dataset
from bench.bench_alerts import DISCHARGE, answers, new_nurse, new_patient, record_history

URL = os.environ.get("BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
HISTORY = int(os.environ.get("BENCH_HISTORY", "95"))
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "200"))
# The requests go round the phones, so each history stays about a year long.
PHONES = int(os.environ.get("BENCH_PHONES", "8"))


def _phone(clock: FrozenClock, start: datetime) -> tuple[str, Any]:
    """A patient with a procedure, ``HISTORY`` check-ins over a year, an enrolled phone: the
    phone's access token and the patient."""
    from backend.patients.services import (
        claim_enrollment,
        create_enrollment_code,
        patient_principal,
    )

    clock.set(start)
    nurse = new_nurse(clock.now())
    consent = {"consent_given_on": DISCHARGE - timedelta(days=4), "consent_method": "paper"}
    patient = new_patient(nurse, 0, clock.now(), **consent)
    db.session.commit()
    rng = random.Random(7)
    phone = patient_principal(patient, uuid.uuid4())
    record_history(
        phone, patient, [start + timedelta(days=1 + i * 360 / HISTORY) for i in range(HISTORY)], rng
    )
    clock.set(start + timedelta(days=365))
    code, _ = create_enrollment_code(nurse, patient, now=clock.now())
    _, issued = claim_enrollment(code, {"platform": "ios", "push_token": "tok"}, now=clock.now())
    db.session.commit()
    return issued.access_token, patient.id


def main() -> None:
    db_url, drop_schema = dataset.new_schema(URL)
    clock = FrozenClock(datetime(2025, 11, 1, 9, tzinfo=UTC))
    app = create_app(
        {
            "APP_ENV": "testing",
            "DATABASE_URL": db_url,
            "CLOCK": clock,
            "LOG_LEVEL": "WARNING",
            "RATELIMIT_ENABLED": False,
            "CHECKIN_LIMIT_PER_DAY": 1_000_000,  # not what this measures
        }
    )
    try:
        with app.app_context():
            from flask_migrate import upgrade

            upgrade()
            start = clock.now()
            tokens = [_phone(clock, start)[0] for _ in range(PHONES)]
            db.session.remove()
        measure(app, clock, tokens)
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        drop_schema()


def measure(app: Any, clock: FrozenClock, tokens: list[str]) -> None:
    rng = random.Random(11)
    client = app.test_client()
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    def post(i: int) -> None:
        clock.set(clock.now() + timedelta(seconds=2))
        body = {
            "assignment_id": None,
            "instrument": "checkin",
            "version": 1,
            "answered_at": (clock.now() - timedelta(seconds=1)).isoformat(),
            "source": "patient",
            "answers": answers(rng),
        }
        headers = {
            "Authorization": f"Bearer {tokens[i % len(tokens)]}",
            "Idempotency-Key": str(uuid.uuid4()),
        }
        response = client.post("/api/v1/me/responses", json=body, headers=headers)
        assert response.status_code == 201, response.get_json()

    for i in range(20):  # warm-up: caches, pools, compiled statements
        post(i)
    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", seen)
    wall, cpu, counts = [], [], []
    for i in range(REQUESTS):
        before = len(statements)
        t0, c0 = time.perf_counter(), time.thread_time()
        post(i)
        cpu.append((time.thread_time() - c0) * 1000)
        wall.append((time.perf_counter() - t0) * 1000)
        counts.append(len(statements) - before)
    sa.event.remove(engine, "before_cursor_execute", seen)
    print(
        f"POST /me/responses in process, {HISTORY}+ responses of history, PostgreSQL, "
        f"{REQUESTS} requests: CPU median {statistics.median(cpu):.2f} ms "
        f"(p10 {sorted(cpu)[len(cpu) // 10]:.2f}), wall median {statistics.median(wall):.2f} ms, "
        f"statements {statistics.median(counts):.0f} (max {max(counts)})"
    )
    if os.environ.get("BENCH_VERBOSE"):
        for s in statements[-counts[-1] :]:
            print("   ", " ".join(s.split())[:160])
    if os.environ.get("BENCH_PROFILE"):
        import cProfile
        import pstats

        profile = cProfile.Profile(time.thread_time)  # CPU, not the waits on PostgreSQL
        profile.enable()
        for i in range(100):
            post(i)
        profile.disable()
        stats = pstats.Stats(profile).sort_stats("cumulative")
        # Deterministic where the CPU time is not (a shared machine): a step that removes work
        # shows here whatever the load.
        print(f"Python function calls per request: {stats.total_calls / 100:,.0f}")  # type: ignore[attr-defined]
        stats.print_stats(os.environ.get("BENCH_PROFILE_FILTER", ""), 60)
        if os.environ.get("BENCH_PROFILE_OUT"):
            stats.dump_stats(os.environ["BENCH_PROFILE_OUT"])


if __name__ == "__main__":
    main()
