"""Benchmark (issue 17): N questionnaires opening in the same minute, handed to a local SMTP
server by two scheduler processes sharing one PostgreSQL.

``make bench`` runs it at ``BENCH_SCALE=1`` (100,000 questionnaires; ``BENCH_SCALE=0.1``
for a quick look). A template patient (e-mail
reminders, a time zone where it is daytime now, so quiet hours do not hold anything back) is
registered through the real services, cloned N-1 times by SQL (bench/dataset.py) with a unique
address each, and every day-30 questionnaire is set to open now (the template has the
history of days 1 to 21 in its outbox: ``HISTORY_DAYS``). Then two
``flask scheduler run`` processes start, an in-process SMTP server (``bench/smtp_sink.py``,
announcing PIPELINING as relays do) counts what arrives and
from whom, and the run ends when every patient has a message (or at the time limit).

Printed: time to the first message, to all of them, messages per second, duplicates (a
recipient reached twice), and the schedulers' peak RSS, each beside its goal (issue 17: all
within 60 s, the first within 5 s, no duplicate), in the table format of ``make bench``; the
figures are written to ``bench/results/reminders.json`` and appended as one JSON line to
``bench/results/bench.jsonl`` (for CI to compare). The schedulers' own output goes to
``bench/results/reminders-scheduler-N.log``. Nothing is asserted.
"""

from __future__ import annotations

import compileall
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from backend import create_app
from backend.clock import FrozenClock
from backend.extensions import db
from bench import dataset
from bench.bench_scale import RESULTS, SECRET, URL, _config, _free_port
from bench.procs import backend_cpu, cpu_seconds, rss_mb
from bench.smtp_sink import SmtpSink

SCALE = float(os.environ.get("BENCH_SCALE", "1"))
QUESTIONNAIRES = int(100_000 * SCALE)
SCHEDULERS = 2
TIME_LIMIT = float(os.environ.get("BENCH_REMINDER_TIME_LIMIT", "300"))
# The schedulers' CPU by step of the pipeline, timed inside them (``timed_scheduler.py``).
STEPS = bool(os.environ.get("BENCH_STEPS"))


def daytime_zone() -> str:
    """A time zone where it is between 11:00 and 17:00 now (no quiet hours in the way)."""
    now = datetime.now(ZoneInfo("UTC"))
    for name in sorted(available_timezones()):
        if name.startswith(("Etc/", "SystemV/")) or "/" not in name:
            continue
        if 11 <= now.astimezone(ZoneInfo(name)).hour < 17:
            return name
    raise RuntimeError("no time zone in daytime?")


# The template was discharged this many days ago: its day 1, 7, 14 and 21 questionnaires were
# opened, reminded (an e-mail each) and answered, so the outbox and the reminder ladder hold a
# running system's history (four notifications, deliveries, attempts and answer links, twelve
# reminders per patient), analyzed as a running system's tables are. Its day-30 questionnaire is
# the one that opens now.
HISTORY_DAYS = 23
NOW_DAY = 30


def build(db_url: str, zone: str) -> None:
    from backend.auth.models import User
    from backend.auth.services import staff_principal
    from backend.patients import services as patients
    from backend.schedule.worker import run_pass

    now = dataset.real_now()
    clock = FrozenClock(now - timedelta(days=HISTORY_DAYS))
    app = create_app(_config(db_url, CLOCK=clock))
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
        sites = dataset.build_sites(dataset_sites := 20, clock.now())
        nurse = db.session.execute(db.select(User).filter_by(site_id=sites[0].id)).scalars().first()
        principal = staff_principal(nurse, uuid.uuid4())
        discharged = clock.now().astimezone(ZoneInfo(zone)).date()
        patient = patients.create_patient(
            principal,
            {
                "mrn": "R1",
                "given_name": "Bench",
                "family_name": "Reminders",
                "birth_date": datetime(1940, 1, 1).date(),
                "email": "template@bench.example",
                "locale": "fr",
                "timezone": zone,
                "contact_channels": ["email"],
            },
            now=clock.now(),
        )
        procedure = patients.create_procedure(
            principal,
            patient,
            {
                "kind": "screw_fixation",
                "location": "sacroiliac",
                "etiology": "osteoporotic",
                "performed_on": discharged - timedelta(days=2),
                "discharged_on": discharged,
                "baseline": {"pain_rest": 6, "pain_walking": 8, "mobility_score": 6},
            },
            now=clock.now(),
        )
        db.session.commit()
        phone = patients.patient_principal(patient, uuid.uuid4())
        past = sorted((a for a in procedure.schedule if a.opens_at < now), key=lambda a: a.opens_at)
        rng = random.Random(5)
        for assignment in past:
            clock.set(assignment.opens_at + timedelta(minutes=1))
            run_pass()  # opens it and sends its first reminder
            db.session.commit()
            dataset.answer(
                phone,
                patient.id,
                clock,
                assignment.opens_at + timedelta(hours=2),
                db.session.get(type(assignment), assignment.id),
                dataset.answers(rng),
            )
            clock.set(assignment.opens_at + timedelta(hours=49))
            run_pass()  # the next rungs find it answered
            db.session.commit()
        clock.set(now)
        template = dataset.Template(patient.id, 0)
        dataset.clone(
            template,
            QUESTIONNAIRES - 1,
            [s.id for s in sites[:dataset_sites]],
            tables=("patients", "procedures", "assignments", "responses", *dataset.OUTBOX_TABLES),
            unique_contacts=True,
        )
        # Every day-30 questionnaire opens now, in the same minute.
        db.session.execute(
            sa.text(
                "UPDATE assignments SET opens_at = now() - interval '1 second', "
                "closes_at = now() + interval '3 days' WHERE day = :day"
            ),
            {"day": NOW_DAY},
        )
        # Statistics for the tables that hold rows, as a running system has them. (A table
        # analyzed while empty tells the planner "empty": each foreign-key check into it would
        # scan it whole until autovacuum analyzes it again, which a running system never shows.)
        for table in db.metadata.sorted_tables:
            if db.session.execute(sa.select(sa.exists().select_from(table))).scalar():
                db.session.execute(sa.text(f'ANALYZE "{table.name}"'))
        db.session.commit()
        db.session.remove()
        db.engine.dispose()


BACKEND_NAME = "bench-reminders-scheduler"


def main() -> None:
    db_url, drop_schema = dataset.new_schema(URL)
    sink = SmtpSink("127.0.0.1", _free_port())
    sink.start()
    procs: list[subprocess.Popen[bytes]] = []
    result: dict[str, Any] = {
        "questionnaires": QUESTIONNAIRES,
        "schedulers": SCHEDULERS,
        "cpu_probe_s": dataset.cpu_probe(),
    }
    try:
        zone = daytime_zone()
        t0 = time.perf_counter()
        build(db_url, zone)
        print(
            f"reminders: {QUESTIONNAIRES:,} questionnaires opening now ({zone}); "
            f"built in {time.perf_counter() - t0:.0f} s"
        )
        env = {
            **os.environ,
            "APP_ENV": "production",
            "DATABASE_URL": db_url,
            "SECRET_KEY": SECRET,
            # A pass longer than the interval logs a skipped tick each second: not the measure.
            "LOG_LEVEL": "ERROR",
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(sink.port),
            "SMTP_STARTTLS": "false",
            "MAIL_FROM": "rappels@bench.example",
            "ANSWER_LINK_BASE_URL": "https://suivi.bench.example/a",
            "SCHEDULER_INTERVAL_SECONDS": "1",
            "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"),
            # Names the schedulers' PostgreSQL backends, whose CPU is read from /proc.
            "PGAPPNAME": BACKEND_NAME,
        }
        RESULTS.mkdir(exist_ok=True)
        # The project's modules compiled once, as an installed deployment has them: with
        # PYTHONDONTWRITEBYTECODE set (this machine's sessions set it) each scheduler compiled
        # all of ``backend`` from source at start-up (about 0.5 s of CPU each, measured at
        # scale 0.3), counted in its CPU per message.
        for package in ("backend", "notifications"):
            compileall.compile_dir(ROOT / package, quiet=1)
        start = time.monotonic()
        sink_cpu = time.process_time()  # this process from now on: the SMTP sink, mostly
        for n in range(SCHEDULERS):
            log = (RESULTS / f"reminders-scheduler-{n + 1}.log").open("wb")
            command = [sys.executable, "-m", "flask", "--app", "wsgi", "scheduler", "run"]
            if STEPS:
                command = [sys.executable, str(ROOT / "bench" / "timed_scheduler.py")]
            procs.append(
                subprocess.Popen(
                    command,
                    cwd=ROOT,
                    env=env | {"BENCH_STEPS_OUT": str(RESULTS / f"reminders-steps-{n + 1}.json")},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        peak = [0.0] * SCHEDULERS
        backends: dict[int, float] = {}  # the schedulers' PostgreSQL backends: CPU seen last
        watcher = sa.create_engine(db_url, isolation_level="AUTOCOMMIT")
        while time.monotonic() - start < TIME_LIMIT:
            time.sleep(0.5)
            peak = [max(p, rss_mb(proc.pid) or 0.0) for p, proc in zip(peak, procs, strict=True)]
            backends |= backend_cpu(watcher, BACKEND_NAME)
            with sink.lock:
                if len(sink.arrivals) >= QUESTIONNAIRES:
                    break
            if any(proc.poll() is not None for proc in procs):
                print("a scheduler exited early")
                break
        cpu = sum(cpu_seconds(proc.pid) for proc in procs)
        backends |= backend_cpu(watcher, BACKEND_NAME)
        watcher.dispose()
        sink_cpu = time.process_time() - sink_cpu
        with sink.lock:
            firsts = sorted(times[0] - start for times in sink.arrivals.values())
            duplicates = sum(len(times) - 1 for times in sink.arrivals.values())
            delivered = len(sink.arrivals)
        result |= {
            "delivered": delivered,
            "first_s": round(firsts[0], 1) if firsts else None,
            "all_s": round(firsts[-1], 1) if delivered >= QUESTIONNAIRES else None,
            "per_second": round(delivered / firsts[-1], 1) if firsts else 0,
            "duplicates": duplicates,
            "scheduler_peak_rss_mb": [round(p) for p in peak],
            # Both schedulers' CPU (start-up included) per message handed over.
            "scheduler_cpu_ms_per_message": round(1000 * cpu / delivered, 2) if delivered else None,
            # Their PostgreSQL backends' CPU (None when PostgreSQL is not on this host).
            "postgresql_cpu_ms_per_message": (
                round(1000 * sum(backends.values()) / delivered, 2)
                if delivered and backends
                else None
            ),
            # The SMTP sink's (and this loop's) CPU: the other side of each message.
            "sink_cpu_ms_per_message": round(1000 * sink_cpu / delivered, 2) if delivered else None,
            "time_limit_s": TIME_LIMIT,
        }
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
        sink.stop()
        drop_schema()
    if STEPS and result.get("delivered"):
        steps: dict[str, float] = {}
        for n in range(SCHEDULERS):
            path = RESULTS / f"reminders-steps-{n + 1}.json"
            for name, seconds in json.loads(path.read_text()).items():
                steps[name] = steps.get(name, 0.0) + seconds
        per = {k: round(1000 * v / result["delivered"], 3) for k, v in steps.items()}
        result["scheduler_steps_ms_per_message"] = per
        print(
            "schedulers' CPU per message by step (ms): "
            + ", ".join(f"{k} {v}" for k, v in per.items())
        )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "reminders.json").write_text(json.dumps(result, indent=2))
    line = {"bench": "reminders", "at": datetime.now(ZoneInfo("UTC")).isoformat(), **result}
    with (RESULTS / "bench.jsonl").open("a") as jsonl:
        jsonl.write(json.dumps(line) + "\n")
    all_s = result.get("all_s")
    rows = [
        ("reminders: first message (s)", "<= 5", result.get("first_s")),
        (
            f"reminders: all {QUESTIONNAIRES:,} handed over (s)",
            "<= 60" if QUESTIONNAIRES >= 100_000 else "-",
            all_s if all_s is not None else f"not all within {int(TIME_LIMIT)}",
        ),
        ("reminders: messages per second", ">= 1667", result.get("per_second")),
        ("reminders: duplicates", "0", result.get("duplicates")),
        ("reminders: scheduler peak RSS (MB)", "<= 150", result.get("scheduler_peak_rss_mb")),
        (
            "reminders: scheduler CPU per message (ms)",
            "-",
            result.get("scheduler_cpu_ms_per_message"),
        ),
        (
            "reminders: their PostgreSQL CPU per message (ms)",
            "-",
            result.get("postgresql_cpu_ms_per_message"),
        ),
        (
            "reminders: the SMTP sink's CPU per message (ms)",
            "-",
            result.get("sink_cpu_ms_per_message"),
        ),
    ]
    print(f"\nReminders, {QUESTIONNAIRES:,} questionnaires, {SCHEDULERS} schedulers")
    print(f"{'measure':<48} {'goal':<10} measured")
    for name, goal, value in rows:
        print(f"{name:<48} {goal:<10} {value}")
    print(f"({result.get('delivered', 0):,} delivered; written to {RESULTS / 'reminders.json'})")


if __name__ == "__main__":
    main()
