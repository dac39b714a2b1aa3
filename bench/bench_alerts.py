"""Benchmark: the cost of recording a response for a patient with a year of history, and the
plan of the triage queue query, on PostgreSQL (``BENCH_DATABASE_URL``, default the local
``test`` database, in a schema of its own that is dropped afterwards).

Run with ``make bench``. Numbers are printed, never asserted: they go in the closing notes.
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import time
import tracemalloc
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backend import create_app
from backend.clock import FrozenClock
from backend.extensions import db

URL = os.environ.get("BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
DISCHARGE = date(2025, 11, 1)


def main() -> None:
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    url = sa.make_url(URL).update_query_dict({"options": f"-csearch_path={schema}"})
    clock = FrozenClock(datetime(2025, 11, 1, 9, tzinfo=UTC))
    app = create_app(
        {
            "APP_ENV": "testing",
            "DATABASE_URL": url.render_as_string(False),
            "CLOCK": clock,
            "LOG_LEVEL": "WARNING",
            # The bench times 30 check-ins of one patient in 30 minutes: beyond the daily cap
            # (CHECKIN_LIMIT_PER_DAY), which it does not measure.
            "CHECKIN_LIMIT_PER_DAY": 10_000,
        }
    )
    try:
        with app.app_context():
            from flask_migrate import upgrade

            upgrade()
            bench_record_response(clock)
            bench_queue_plan()
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


REGISTERED = datetime(2025, 11, 1, tzinfo=UTC)


def new_nurse(now: datetime = REGISTERED):  # type: ignore[no-untyped-def]
    """A nurse of a new site (Europe/Paris), as a principal."""
    from backend.auth.services import create_user, get_or_create_site, staff_principal

    site = get_or_create_site(f"S{uuid.uuid4().hex[:6]}", now=now, timezone="Europe/Paris")
    user = create_user(
        f"{uuid.uuid4().hex[:8]}@bench.example", "a-long-bench-password", "nurse", site, now=now
    )
    return staff_principal(user, uuid.uuid4())


def new_patient(nurse, n: int, now: datetime = REGISTERED, **fields):  # type: ignore[no-untyped-def]
    """A patient of the nurse's site with a screw fixation discharged on DISCHARGE (``fields``:
    more of the registration's, a consent for instance)."""
    from backend.patients.services import create_patient, create_procedure

    patient = create_patient(
        nurse,
        {
            "mrn": f"B{n}-{uuid.uuid4().hex[:6]}",
            "given_name": "Bench",
            "family_name": str(n),
            "birth_date": date(1940, 1, 1),
            "locale": "fr",
            "timezone": "Europe/Paris",
            "contact_channels": ["push"],
            **fields,
        },
        now=now,
    )
    create_procedure(
        nurse,
        patient,
        {
            "kind": "screw_fixation",
            "location": "sacroiliac",
            "etiology": "osteoporotic",
            "performed_on": DISCHARGE - timedelta(days=2),
            "discharged_on": DISCHARGE,
            "baseline": {"pain_rest": 6, "pain_walking": 8, "mobility_score": 6},
        },
        now=now,
    )
    return patient


def answers(rng: random.Random) -> dict:  # type: ignore[type-arg]
    """A steady, improving check-in (no rule fires on it alone)."""
    return {
        "pain_rest": rng.randint(1, 3),
        "pain_walking": rng.randint(2, 4),
        "analgesics": "non_opioid",
        "walking_aid": "cane",
        "fell": False,
        "symptoms": [],
        "change": "much_improved",
        "call_request": False,
    }


def record_history(phone, patient, times: list[datetime], rng: random.Random) -> None:  # type: ignore[no-untyped-def]
    """The patient's check-ins at ``times``, each recorded and committed through the service."""
    from backend.questionnaires.services import record_response, request_fingerprint

    for when in times:
        body = {
            "assignment_id": None,
            "instrument": "checkin",
            "version": 1,
            "answered_at": when,
            "source": "patient",
            "answers": answers(rng),
        }
        record_response(
            phone,
            patient,
            body,
            now=when,
            idempotency_key=str(uuid.uuid4()),
            fingerprint=request_fingerprint(body),
        )
        db.session.commit()


def bench_record_response(clock: FrozenClock) -> None:
    from backend.patients.services import patient_principal

    rng = random.Random(7)
    nurse = new_nurse()
    patient = new_patient(nurse, 0)
    db.session.commit()
    phone = patient_principal(patient, uuid.uuid4())
    start = datetime.combine(DISCHARGE, datetime.min.time(), tzinfo=UTC) + timedelta(hours=9)
    # A year of history: 65 unscheduled check-ins spread over 365 days.
    record_history(phone, patient, [start + timedelta(days=1 + i * 5.5) for i in range(65)], rng)

    def one(i: int) -> None:
        record_history(phone, patient, [start + timedelta(days=365, minutes=i)], rng)

    # Timed without tracemalloc (it slows Python down about threefold), then traced apart.
    timings, cpu = [], []
    for i in range(30):
        t0, c0 = time.perf_counter(), time.thread_time()
        one(i)
        timings.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.thread_time() - c0) * 1000)
    tracemalloc.start()
    for i in range(30, 40):
        one(i)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        "record_response + alert evaluation, patient with a year of history (65-95 responses),"
        " PostgreSQL, 30 runs:"
    )
    print(
        f"  median {statistics.median(timings):.1f} ms, p90 "
        f"{sorted(timings)[int(len(timings) * 0.9)]:.1f} ms, max {max(timings):.1f} ms, "
        f"CPU median {statistics.median(cpu):.1f} ms; "
        f"peak Python memory {peak / 1024:.0f} KiB"
    )


def bench_queue_plan() -> None:
    from backend.alerts.models import Alert

    rng = random.Random(3)
    sites = [new_nurse() for _ in range(20)]
    patients = [new_patient(sites[i % 20], i) for i in range(200)]
    db.session.flush()
    now = datetime(2026, 1, 1, tzinfo=UTC)
    kinds = ["red_flag", "possible_screw_loosening", "worsening", "call_request", "no_response"]
    rows = []
    for i in range(20_000):
        patient = patients[i % 200]
        severity = rng.choice(["urgent", "high", "routine"])
        rows.append(
            {
                "id": uuid.uuid4(),
                "patient_id": patient.id,
                "site_id": patient.site_id,
                "kind": kinds[i % 5],
                "severity": severity,
                "severity_rank": {"urgent": 0, "high": 1, "routine": 2}[severity],
                "status": "resolved" if i % 50 else rng.choice(["open", "acknowledged"]),
                "rule_key": kinds[i % 5],
                "rule_version": 1,
                "summary": {"en": "x"},
                "evidence": {},
                "created_at": now - timedelta(minutes=i),
                "updated_at": now,
                "due_at": now - timedelta(minutes=i) + timedelta(hours=24),
            }
        )
    # Bulk rows bypass the one-unresolved-per-kind rule only for resolved ones; drop the
    # duplicates of unresolved (patient, kind) before inserting.
    seen, unique_rows = set(), []
    for row in rows:
        key = (row["patient_id"], row["kind"])
        if row["status"] != "resolved":
            if key in seen:
                row["status"] = "resolved"
            seen.add(key)
        unique_rows.append(row)
    db.session.execute(sa.insert(Alert), unique_rows)
    db.session.commit()
    db.session.execute(sa.text("ANALYZE alerts"))
    from backend.alerts.services import queue
    from backend.auth.principal import Principal

    site_id = patients[0].site_id
    principal = Principal("staff", uuid.uuid4(), site_id, uuid.uuid4(), "nurse")
    t0 = time.perf_counter()
    for _ in range(50):
        queue(
            principal,
            now,
            statuses=("open", "acknowledged"),
            severity=None,
            kind=None,
            patient_id=None,
            limit=51,
        )
    per_query = (time.perf_counter() - t0) / 50 * 1000
    overdue_first = sa.case((sa.and_(Alert.status == "open", Alert.due_at <= now), 0), else_=1)
    stmt = (
        sa.select(Alert)
        .filter(Alert.site_id == site_id, Alert.status.in_(("open", "acknowledged")))
        .order_by(Alert.severity_rank, overdue_first, Alert.created_at, Alert.id)
        .limit(51)
    )
    compiled = stmt.compile(db.engine, compile_kwargs={"literal_binds": True})
    plan = db.session.execute(sa.text(f"EXPLAIN ANALYZE {compiled}")).scalars().all()
    print(f"triage queue over 20,000 alerts at 20 sites: {per_query:.2f} ms a query; plan:")
    for line in plan:
        print("  " + line)


if __name__ == "__main__":
    main()
