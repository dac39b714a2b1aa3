"""Benchmark at hospital-network scale (issue 17): the alert queue, a patient's timeline and the
answers from phones, on PostgreSQL, against a bare baseline measured in the same run.

``make bench`` runs it (``BENCH_SCALE=0.1`` for a quick look). It builds its own database in a
schema of its own (templates through the real services, then cloned by SQL: bench/dataset.py),
measures, prints a table, writes ``bench/results/scale.json`` and drops the schema.

- Queue and timeline: in-process requests (Flask's test client: routing, authentication,
  validation, audit, serialisation; no network), p50/p95 over repeated reads, first page and a
  deep page reached by following ``next_cursor``; SQL statements per request.
- Ingest: ``POST /me/responses`` under gunicorn (3 sync workers) driven by ``wrk`` at
  saturation, alternated with a baseline gunicorn app doing one INSERT and commit on the same
  stack (Flask, Flask-SQLAlchemy, psycopg, PostgreSQL), pairs in one run; the ratio of their
  throughputs is the figure, because absolute numbers move with the machine.

Numbers are printed, never asserted.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from backend import create_app
from backend.clock import FrozenClock
from backend.extensions import db
from bench import dataset

URL = os.environ.get("BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
SCALE = float(os.environ.get("BENCH_SCALE", "1"))
PATIENTS = int(100_000 * SCALE)
SITES = 20
ALERT_EVERY = 10  # one patient in ten has an open alert: 10,000 at full scale
SECRET = "bench-secret-key-which-is-long-enough-0123456789"
RESULTS = ROOT / "bench" / "results"


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up the schema when stopped
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    url = sa.make_url(URL).update_query_dict({"options": f"-csearch_path={schema}"})
    db_url = url.render_as_string(hide_password=False)
    results: dict[str, Any] = {"scale": SCALE, "patients": PATIENTS}
    try:
        results |= build(db_url)
        results |= read_paths(db_url)
        if shutil.which("wrk"):
            results |= ingest(db_url)
        else:
            print("wrk not found (apt-get install wrk): ingest pairs skipped")
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()
    report(results)


# --- the database ----------------------------------------------------------------------------


def build(db_url: str) -> dict[str, Any]:
    clock = FrozenClock(dataset.real_now())
    app = create_app(_config(db_url, CLOCK=clock))
    t0 = time.perf_counter()
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
        sites = dataset.build_sites(SITES, clock.now())
        template = dataset.build_template(
            sites[0], clock, extra_checkins=10, call_request=True, seed=1
        )
        t_template = time.perf_counter() - t0
        dataset.clone(template, PATIENTS - 1, [s.id for s in sites], alert_every=ALERT_EVERY)
        # The phones' sessions were opened a year ago: keep them alive for the ingest runs.
        db.session.execute(
            sa.text("UPDATE auth_sessions SET expires_at = :far WHERE patient_id IS NOT NULL"),
            {"far": dataset.real_now() + timedelta(days=30)},
        )
        db.session.execute(sa.text("ANALYZE"))
        db.session.commit()
        counts = {
            t: db.session.execute(sa.text(f'SELECT count(*) FROM "{t}"')).scalar_one()
            for t in ("patients", "responses", "assignments", "alerts")
        }
        open_alerts = db.session.execute(
            sa.text("SELECT count(*) FROM alerts WHERE status <> 'resolved'")
        ).scalar_one()
        db.session.remove()
        db.engine.dispose()
    built = time.perf_counter() - t0
    print(
        f"database: {counts['patients']:,} patients, {counts['responses']:,} responses, "
        f"{counts['assignments']:,} questionnaires, {open_alerts:,} open alerts at {SITES} sites; "
        f"built in {built:.0f} s (template {t_template:.0f} s)"
    )
    return {
        "rows": counts | {"open_alerts": open_alerts},
        "build_seconds": round(built, 1),
        "template_patient": str(template.patient_id),
    }


def _config(db_url: str, **extra: Any) -> dict[str, Any]:
    return {
        "APP_ENV": "testing",
        "DATABASE_URL": db_url,
        "SECRET_KEY": SECRET,
        "LOG_LEVEL": "WARNING",
        "RATELIMIT_ENABLED": False,
        **extra,
    }


# --- reads, in process -----------------------------------------------------------------------


@contextmanager
def counting(engine: sa.Engine) -> Iterator[list[str]]:
    statements: list[str] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", before)
    try:
        yield statements
    finally:
        sa.event.remove(engine, "before_cursor_execute", before)


def timed(fn: Callable[[], Any], runs: int) -> dict[str, float]:
    fn()  # warm the caches and the connection pool
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    return {
        "p50_ms": round(statistics.median(samples), 1),
        "p95_ms": round(samples[max(0, int(len(samples) * 0.95) - 1)], 1),
        "runs": runs,
    }


def read_paths(db_url: str) -> dict[str, Any]:
    app = create_app(_config(db_url))
    client = app.test_client()
    with app.app_context():
        from backend.auth.models import User

        nurse = db.session.execute(
            db.select(User).filter_by(email="nurse0@bench.example")
        ).scalar_one()
        email = nurse.email
        template = db.session.execute(
            sa.text("SELECT id FROM patients WHERE mrn = 'T1'")
        ).scalar_one()
        db.session.remove()
    token = client.post(
        "/api/v1/auth/login", json={"email": email, "password": "a-long-bench-password"}
    ).get_json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}

    def get(path: str) -> Any:
        response = client.get(path, headers=headers)
        assert response.status_code == 200, (path, response.status_code, response.get_data()[:300])
        return response.get_json()

    deep_cursor = None
    cursor: str | None = None
    for _ in range(20):  # 20 pages of 50 in: the queue of a site with a thousand open alerts
        page = get("/api/v1/alerts" + (f"?cursor={cursor}" if cursor else ""))
        cursor = page["next_cursor"]
        if not cursor:
            break
        deep_cursor = cursor
    out: dict[str, Any] = {}
    with app.app_context():
        engine = db.engine
    paths = {
        "queue_first_page": "/api/v1/alerts",
        "queue_deep_page": f"/api/v1/alerts?cursor={deep_cursor}" if deep_cursor else None,
        "timeline_year": f"/api/v1/patients/{template}/timeline",
    }
    for name, path in paths.items():
        if path is None:
            continue
        with counting(engine) as statements:
            get(path)
        out[name] = timed(lambda p=path: get(p), 60) | {"statements": len(statements)}
        print(f"{name}: {out[name]}")
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    return {"reads": out}


# --- ingest, under gunicorn, against the baseline --------------------------------------------

WRK_SCRIPT = """
local tokens = {}
for line in io.lines(os.getenv("BENCH_TOKENS")) do tokens[#tokens + 1] = line end
local answered_at = os.getenv("BENCH_ANSWERED_AT")
local body = '{"assignment_id": null, "instrument": "checkin", "version": 1, ' ..
  '"answered_at": "' .. answered_at .. '", "source": "patient", "answers": {"pain_rest": 2, ' ..
  '"pain_walking": 3, "analgesics": "non_opioid", "walking_aid": "cane", "fell": false, ' ..
  '"symptoms": [], "change": "much_improved", "call_request": false}}'
local counter = 0
local thread_id = 0
function setup(thread) thread_id = thread_id + 1; thread:set("tid", thread_id) end
function init(args) math.randomseed(os.time() + tid * 7919) end
function request()
  counter = counter + 1
  local key = string.format("%08x-%04x-4%03x-a%03x-%012x", math.random(0, 0xffffffff),
    math.random(0, 0xffff), math.random(0, 0xfff), math.random(0, 0xfff), counter * 64 + tid)
  local token = tokens[(counter * 13 + tid) % #tokens + 1]
  return wrk.format("POST", "/api/v1/me/responses", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. token,
    ["Idempotency-Key"] = key,
  }, body)
end
"""
WRK_DONE = """
done = function(summary, latency, requests)
  io.write(string.format("JSON {\\"requests\\": %d, \\"seconds\\": %f, \\"non2xx\\": %d, " ..
    "\\"p50\\": %f, \\"p99\\": %f}\\n", summary.requests, summary.duration / 1e6,
    summary.errors.status, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def gunicorn(app_spec: str, env: dict[str, str]) -> Iterator[str]:
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--workers",
            "3",
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            app_spec,
        ],
        cwd=ROOT,
        env={**os.environ, **env},
    )
    try:
        # Ready when a worker answers, not when the master has bound the port: a worker that
        # cannot boot (a configuration refused in production) must stop the run, not let wrk
        # measure 0 requests per second.
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            if proc.poll() is not None:
                raise RuntimeError(f"gunicorn {app_spec} exited ({proc.returncode}) at start")
            try:
                urllib.request.urlopen(f"{base}/api/v1/health", timeout=1).close()  # noqa: S310 (our own http://127.0.0.1)
                break
            except urllib.error.HTTPError:
                break  # a worker answered (the baseline has no health route)
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError(f"gunicorn {app_spec} did not answer within 30 s")
        yield base
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def wrk(
    base: str, script: Path, env: dict[str, str], seconds: int, connections: int
) -> dict[str, Any]:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-s", str(script), base],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        check=True,
    ).stdout
    line = next(line for line in out.splitlines() if line.startswith("JSON "))
    stats = json.loads(line[5:])
    stats["rps"] = stats["requests"] / stats["seconds"]
    return stats


def patient_tokens(db_url: str, n: int) -> list[str]:
    """Access tokens of ``n`` cloned patients' phones, each spread over many patients so the
    per-patient check-in limit is not what is measured."""
    from backend.auth.tokens import issue_access_token
    from backend.clock import Clock
    from backend.patients.models import Device, Patient
    from backend.patients.services import patient_principal

    app = create_app(_config(db_url))
    with app.app_context():
        now = Clock().now() + timedelta(minutes=30)  # tokens outlive a run of a few minutes
        rows = db.session.execute(
            db.select(Patient, Device.session_id)
            .join(Device, Device.patient_id == Patient.id)
            .limit(n)
        ).all()
        tokens = [issue_access_token(patient_principal(p, sid), now)[0] for p, sid in rows]
        db.session.remove()
        db.engine.dispose()
    return tokens


def ingest(db_url: str) -> dict[str, Any]:
    from backend.clock import Clock

    tokens = patient_tokens(db_url, 2000)
    work = Path(tempfile.mkdtemp(prefix="bench-"))
    (work / "tokens.txt").write_text("\n".join(tokens))
    (work / "post.lua").write_text(WRK_SCRIPT + WRK_DONE)
    (work / "baseline.lua").write_text(
        "wrk.method = 'POST'\nwrk.headers['Content-Type'] = 'application/json'\n"
        'wrk.body = \'{"answers": {"pain_rest": 2}}\'\n' + WRK_DONE
    )
    env = {
        "APP_ENV": "production",
        "DATABASE_URL": db_url,
        "SECRET_KEY": SECRET,
        "LOG_LEVEL": "WARNING",
        "ANSWER_LINK_BASE_URL": "https://suivi.bench.example/a",
        "BENCH_TOKENS": str(work / "tokens.txt"),
        "BENCH_ANSWERED_AT": (Clock().now() - timedelta(minutes=1)).isoformat(),
        "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"),
        # wrk sends thousands of check-ins over 2,000 phones in seconds: far past the daily cap
        # per patient, which is not what this measures.
        "CHECKIN_LIMIT_PER_DAY": "1000000",
    }
    os.environ["DATABASE_URL"] = db_url
    from bench import baseline

    baseline.create_table()
    pairs = []
    try:
        for _ in range(int(os.environ.get("BENCH_PAIRS", "3"))):
            with gunicorn("bench.baseline:app", env) as base:
                wrk(base, work / "baseline.lua", env, 3, 16)  # warm-up
                baseline = wrk(base, work / "baseline.lua", env, 10, 16)
            with gunicorn("wsgi:app", env) as base:
                wrk(base, work / "post.lua", env, 3, 16)
                service = wrk(base, work / "post.lua", env, 10, 16)
            pairs.append({"baseline": baseline, "service": service})
            print(
                f"ingest pair: baseline {baseline['rps']:.0f} req/s, service {service['rps']:.0f} "
                f"req/s ({service['non2xx']} non-2xx), ratio {service['rps'] / baseline['rps']:.3f}"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ratios = [p["service"]["rps"] / p["baseline"]["rps"] for p in pairs]
    return {
        "ingest": {
            "pairs": pairs,
            "throughput_ratio_median": round(statistics.median(ratios), 3),
            "throughput_ratio_range": [round(min(ratios), 3), round(max(ratios), 3)],
        }
    }


# --- the table -------------------------------------------------------------------------------


def report(results: dict[str, Any]) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "scale.json").write_text(json.dumps(results, indent=2, default=str))
    reads = results.get("reads", {})
    rows = [
        (
            "GET /alerts, first page, p95",
            "<= 20 ms",
            reads.get("queue_first_page", {}).get("p95_ms"),
        ),
        ("GET /alerts, deep page, p95", "<= 20 ms", reads.get("queue_deep_page", {}).get("p95_ms")),
        (
            "timeline, a year of answers, p95",
            "<= 30 ms",
            reads.get("timeline_year", {}).get("p95_ms"),
        ),
        (
            "POST /me/responses / baseline throughput",
            ">= 0.6x",
            results.get("ingest", {}).get("throughput_ratio_median"),
        ),
    ]
    print(f"\nScale {SCALE:g}: {results['patients']:,} patients")
    print(f"{'measure':<44} {'goal':<10} measured")
    for name, goal, value in rows:
        print(f"{name:<44} {goal:<10} {value if value is not None else 'not run'}")
    print(f"(written to {RESULTS / 'scale.json'})")


if __name__ == "__main__":
    main()
