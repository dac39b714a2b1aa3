"""Real scheduler processes on one PostgreSQL: no double send, nothing lost, a clean stop.

The processes are ``flask --app wsgi scheduler run-once`` / ``run`` started with ``subprocess``
against this run's PostgreSQL schema. In development an unconfigured channel prints one line per
message on stdout (``ConsoleTransport``), with the reminder's link: counting the questionnaires
the links name across the processes' outputs counts what was sent (an SMS's web link carries a
single-use token, whose hash in ``answer_links`` names its questionnaire).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from io import StringIO
from pathlib import Path

import pytest
import sqlalchemy as sa

from backend.auth.services import get_or_create_site
from backend.extensions import db
from backend.notify.channels import install_channels
from backend.notify.jobs import RECORD_EVERY
from backend.notify.models import Delivery, DeliveryAttempt
from backend.patients.models import Patient, Procedure
from backend.questionnaires.links import TOKEN_LENGTH, digest
from backend.questionnaires.models import AnswerLink, Assignment, Protocol
from backend.schedule.models import Reminder
from backend.schedule.worker import run_pass
from notifications import ConsoleTransport
from tests.conftest import ROOT, _migrate

pytestmark = pytest.mark.slow

LINK = re.compile(r"^\[notify:sms\] .* link=(\S+) ", re.M)
REMINDERS = 2000


@pytest.fixture
def postgresql_only(database_url: str) -> str:
    if not database_url.startswith("postgresql"):
        pytest.skip(
            "several schedulers share one database only on PostgreSQL (SKIP LOCKED); "
            "SQLite is the single-process development database"
        )
    return database_url


def daytime_zone(now: datetime) -> str:
    """A zone where it is about noon now, so that quiet hours hold nothing back."""
    offset = 12 - now.hour  # UTC+offset; the Etc/GMT names have the sign reversed
    return f"Etc/GMT{'-' if offset >= 0 else '+'}{abs(offset)}"


def seed_due_reminders(count: int, now: datetime) -> set[str]:
    """``count`` patients, each with an open questionnaire whose first reminder is due now."""
    site = get_or_create_site("LYON", now=now, timezone="Europe/Paris")
    protocol_id = db.session.execute(db.select(Protocol.id).limit(1)).scalar_one()
    zone = daytime_zone(now)
    patients, procedures, assignments, reminders = [], [], [], []
    for n in range(count):
        patient_id, procedure_id, assignment_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        patients.append(
            {
                "id": patient_id,
                "site_id": site.id,
                "mrn": f"LOAD-{n:05d}",
                "given_name": "Marcel",
                "family_name": f"Test{n}",
                "birth_date": date(1940, 1, 1),
                "sex": "male",
                "phone": f"+336{n:08d}",
                "email": None,
                "locale": "fr",
                "timezone": zone,
                "contact_channels": ["sms"],
                "caregiver_answers": False,
                "status": "active",
                "status_changed_at": now,
                "created_at": now,
                "updated_at": now,
            }
        )
        procedures.append(
            {
                "id": procedure_id,
                "patient_id": patient_id,
                "site_id": site.id,
                "protocol_id": protocol_id,
                "kind": "screw_fixation",
                "location": "sacroiliac",
                "etiology": "osteoporotic",
                "performed_on": date(2026, 1, 1),
                "discharged_on": date(2026, 1, 2),
                "baseline_pain_rest": 5,
                "baseline_pain_walking": 7,
                "created_at": now,
            }
        )
        assignments.append(
            {
                "id": assignment_id,
                "patient_id": patient_id,
                "procedure_id": procedure_id,
                "instrument_key": "checkin",
                "instrument_version": 1,
                "day": 1,
                "reason": "protocol",
                "opens_at": now - timedelta(minutes=5),
                "closes_at": now + timedelta(days=3),
                "status": "open",
                "status_changed_at": now,
                "created_at": now,
            }
        )
        reminders.append(
            {
                "id": uuid.uuid4(),
                "assignment_id": assignment_id,
                "patient_id": patient_id,
                "rung": 0,
                "due_at": now - timedelta(minutes=5),
                "status": "pending",
                "created_at": now,
                "updated_at": now,
            }
        )
    for model, rows in (
        (Patient, patients),
        (Procedure, procedures),
        (Assignment, assignments),
        (Reminder, reminders),
    ):
        db.session.execute(sa.insert(model.__table__), rows)
    db.session.commit()
    return {str(a["id"]) for a in assignments}


def scheduler(args: list[str], database_url: str, log: Path, **env: str) -> subprocess.Popen:
    environment = {
        **os.environ,
        "APP_ENV": "development",
        "DATABASE_URL": database_url,
        "SCHEDULER_BATCH_SIZE": "50",
        "LOG_LEVEL": "WARNING",
        **env,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "wsgi", "scheduler", *args],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=log.open("w"),
        text=True,
    )


def sent_links(output: str) -> list[str]:
    """The questionnaire (assignment id) of each reminder printed, in order."""
    tails = [link.rsplit("/", 1)[1] for link in LINK.findall(output)]
    hashes = {digest(t): t for t in tails if len(t) == TOKEN_LENGTH}
    by_token = {
        hashes[token_hash]: str(assignment_id)
        for token_hash, assignment_id in db.session.execute(
            db.select(AnswerLink.token_hash, AnswerLink.assignment_id).where(
                AnswerLink.token_hash.in_(list(hashes))
            )
        )
    }
    return [by_token.get(t, t) for t in tails]


def outputs_of(processes: list[subprocess.Popen], timeout: float = 90) -> list[str]:
    """Every process's stdout, read concurrently (a pipe nobody reads stalls its writer)."""
    chunks: list[list[str]] = [[] for _ in processes]

    def read(i: int) -> None:
        chunks[i].extend(processes[i].stdout)  # type: ignore[arg-type]

    readers = [threading.Thread(target=read, args=(i,), daemon=True) for i in range(len(processes))]
    for reader in readers:
        reader.start()
    for process, reader in zip(processes, readers, strict=True):
        process.wait(timeout=timeout)
        reader.join(timeout=10)
    return ["".join(chunk) for chunk in chunks]


def test_two_schedulers_started_together_send_each_of_2000_reminders_exactly_once(
    postgresql_only, committing_app, tmp_path
):
    now = datetime.now(UTC)
    expected = seed_due_reminders(REMINDERS, now)

    started = time.monotonic()
    processes = [
        scheduler(["run-once"], postgresql_only, tmp_path / f"worker{i}.log") for i in range(2)
    ]
    outputs = outputs_of(processes)
    elapsed = time.monotonic() - started

    assert [p.returncode for p in processes] == [0, 0], [
        (tmp_path / f"worker{i}.log").read_text()[-2000:] for i in range(2)
    ]
    per_process = [sent_links(out) for out in outputs]
    counts = Counter(link for links in per_process for link in links)
    assert set(counts) == expected
    assert set(counts.values()) == {1}, "a reminder was sent twice"
    assert all(len(links) > 0 for links in per_process), "both processes did part of the work"
    db.session.expire_all()
    statuses = Counter(db.session.execute(db.select(Delivery.status)).scalars())
    assert statuses == {"sent": REMINDERS}
    outcomes = Counter(db.session.execute(db.select(DeliveryAttempt.outcome)).scalars())
    assert outcomes == {"sent": REMINDERS}
    print(
        f"\n{REMINDERS} reminders, 2 processes: {elapsed:.1f} s "
        f"(split {len(per_process[0])}/{len(per_process[1])})"
    )


def test_a_scheduler_killed_mid_batch_loses_no_reminder(
    postgresql_only, committing_app, clock, tmp_path
):
    now = datetime.now(UTC)
    expected = seed_due_reminders(REMINDERS, now)
    victim = scheduler(["run-once"], postgresql_only, tmp_path / "victim.log")
    survivor = scheduler(["run-once"], postgresql_only, tmp_path / "survivor.log")

    victim_lines: list[str] = []
    enough = threading.Event()

    def read_victim() -> None:
        assert victim.stdout is not None
        for line in victim.stdout:
            victim_lines.append(line)
            if len(LINK.findall("".join(victim_lines))) >= 10:
                enough.set()
        enough.set()

    reader = threading.Thread(target=read_victim, daemon=True)
    reader.start()
    assert enough.wait(60), "the victim never started sending"
    victim.send_signal(signal.SIGKILL)  # mid-batch: it claimed 50 deliveries and sent ~10
    (survivor_output,) = outputs_of([survivor])
    victim.wait(timeout=10)
    reader.join(timeout=10)
    assert victim.returncode == -signal.SIGKILL
    assert survivor.returncode == 0

    # What the victim had claimed stays leased to it until the lease runs out...
    db.session.expire_all()
    stranded = db.session.execute(
        db.select(sa.func.count()).select_from(Delivery).filter_by(status="sending")
    ).scalar_one()
    assert stranded > 0
    # ...then any scheduler takes it up: here one more pass, in this process, once the victim's
    # 300 s lease has run out (the clock moved, not waited for).
    recovered = StringIO()
    install_channels(committing_app, {"sms": ConsoleTransport("sms", stream=recovered)})
    clock.set(datetime.now(UTC) + timedelta(seconds=301))
    run_pass()

    counts = Counter(
        sent_links("".join(victim_lines))
        + sent_links(survivor_output)
        + sent_links(recovered.getvalue())
    )
    assert set(counts) == expected, "a reminder was lost"
    doubles = [link for link, n in counts.items() if n > 1]
    # At-least-once: only what the victim handed to the provider since its last record (at most
    # RECORD_EVERY sends) can go twice, and only twice (the console has no provider dedupe).
    assert set(doubles) <= set(sent_links("".join(victim_lines)))
    assert max(counts.values()) <= 2
    assert len(doubles) <= stranded
    assert len(doubles) <= RECORD_EVERY  # outcomes are recorded every RECORD_EVERY sends
    db.session.expire_all()
    assert Counter(db.session.execute(db.select(Delivery.status)).scalars()) == {"sent": REMINDERS}
    interrupted = db.session.execute(
        db.select(sa.func.count()).select_from(DeliveryAttempt).filter_by(outcome="interrupted")
    ).scalar_one()
    assert interrupted == stranded
    print(f"\nkilled mid-batch: {stranded} leased deliveries taken up, {len(doubles)} sent twice")


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_scheduler_run_passes_on_a_timer_and_stops_cleanly_on_sigterm(request, database, tmp_path):
    if database == "sqlite":  # a file of its own: no other test's open transaction in the way
        url = f"sqlite:///{tmp_path / 'scheduler.sqlite3'}"
        _migrate(url)
    else:
        url = request.getfixturevalue("postgresql_url")
    environment = {
        **os.environ,
        "APP_ENV": "development",
        "DATABASE_URL": url,
        "LOG_LEVEL": "INFO",
        "SCHEDULER_INTERVAL_SECONDS": "1",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "wsgi", "scheduler", "run"],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    log: list[str] = []
    passed = threading.Event()

    def read_log() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            log.append(line)
            if "scheduler pass" in line:
                passed.set()

    reader = threading.Thread(target=read_log, daemon=True)
    reader.start()
    try:
        assert passed.wait(30), "".join(log)[-2000:]
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0, "".join(log)[-2000:]
    finally:
        if process.poll() is None:
            process.kill()
    reader.join(timeout=5)
    text = "".join(log)
    assert '"signal": "SIGTERM"' in text and "scheduler stopped" in text
