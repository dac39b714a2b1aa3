"""Benchmark at hospital-network scale (issue 17): the alert queue, a patient's timeline and the
answers from phones, on PostgreSQL, against a bare baseline measured in the same run.

``make bench`` runs it (``BENCH_SCALE=0.1`` for a quick look). It builds its own database in a
schema of its own (templates through the real services, then cloned by SQL: bench/dataset.py),
measures, prints a table, writes ``bench/results/scale.json`` and drops the schema.

- Queue and timeline: in-process requests (Flask's test client: routing, authentication,
  validation, audit, serialisation; no network), p50/p95 over repeated reads, first page and a
  deep page reached by following ``next_cursor``; the nurses' queue page (HTML, signed in
  through the sign-in form); SQL statements per request.
- Ingest: ``POST /me/responses`` under gunicorn (3 sync workers) driven by ``wrk`` at
  saturation, alternated with a baseline gunicorn app doing one INSERT and commit on the same
  stack (Flask, Flask-SQLAlchemy, psycopg, PostgreSQL), pairs in one run; the ratio of their
  throughputs is the figure, because absolute numbers move with the machine. Then both at a
  fixed rate, half the baseline's saturation throughput (wrk paced by its ``delay()`` hook),
  for their p99 latency; then two API instances at once against one.
- Memory: the API workers' RSS under a mix of requests, then a soak (``bench/bench_memory.py``,
  on the same database; ``BENCH_MEMORY=0`` skips it), written to ``bench/results/memory.json``.

Numbers are printed, never asserted.
"""

from __future__ import annotations

import json
import os
import random
import re
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
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from backend import create_app
from backend.clock import FrozenClock
from backend.extensions import db
from bench import dataset, procs

URL = os.environ.get("BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
SCALE = float(os.environ.get("BENCH_SCALE", "1"))
PATIENTS = int(100_000 * SCALE)
SITES = 20
ALERT_EVERY = 10  # one patient in ten has an open alert: 10,000 at full scale
SECRET = "bench-secret-key-which-is-long-enough-0123456789"
RESULTS = ROOT / "bench" / "results"


def main() -> None:
    db_url, drop_schema = dataset.new_schema(URL)
    results: dict[str, Any] = {
        "scale": SCALE,
        "patients": PATIENTS,
        "cpu_probe_s": dataset.cpu_probe(),
    }
    phases: dict[str, float] = {}
    results["phase_seconds"] = phases
    try:
        t0 = time.perf_counter()
        results |= build(db_url)
        phases["build"] = round(time.perf_counter() - t0, 1)
        t0 = time.perf_counter()
        results |= read_paths(db_url)
        phases["reads"] = round(time.perf_counter() - t0, 1)
        if shutil.which("wrk"):
            t0 = time.perf_counter()
            results |= ingest(db_url)
            phases["ingest"] = round(time.perf_counter() - t0, 1)
        else:
            print("wrk not found (apt-get install wrk): ingest pairs and memory skipped")
        report(results)
        if shutil.which("wrk") and os.environ.get("BENCH_MEMORY", "1") != "0":
            from bench import bench_memory  # the API workers' memory, on the same database

            t0 = time.perf_counter()
            memory = bench_memory.measure(db_url)
            memory["seconds"] = round(time.perf_counter() - t0, 1)
            bench_memory.report(memory)
    finally:
        drop_schema()


# --- the database ----------------------------------------------------------------------------


def build(db_url: str) -> dict[str, Any]:
    clock = FrozenClock(dataset.real_now())
    app = create_app(_config(db_url, CLOCK=clock))
    t0 = time.perf_counter()
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
        sites = dataset.build_sites(SITES, clock.now())
        # Two templates, so that every clone's alerts agree with its answers: one patient in
        # ALERT_EVERY whose last answer asked for a call (its alert open), the others quiet.
        # (One template whose alerts were cloned to one patient in ten left the other nine with
        # a call request and no alert: the rules caught up at their next answer, opening an
        # alert and notifying the nurses, which the ingest runs then measured.)
        template = dataset.build_template(
            sites[0], clock, extra_checkins=10, call_request=False, seed=1
        )
        alerted = dataset.build_template(
            sites[0], clock, extra_checkins=10, call_request=True, seed=2
        )
        t_template = time.perf_counter() - t0
        site_ids = [s.id for s in sites]
        with_alert = PATIENTS // ALERT_EVERY
        dataset.clone(alerted, with_alert - 1, site_ids)
        dataset.clone(template, PATIENTS - with_alert - 1, site_ids)
        # The phones' sessions were opened a year ago: keep them alive for the ingest runs.
        db.session.execute(
            sa.text("UPDATE auth_sessions SET expires_at = :far WHERE patient_id IS NOT NULL"),
            {"far": dataset.real_now() + timedelta(days=30)},
        )
        db.session.execute(sa.text("ANALYZE"))
        db.session.commit()
        # The alerts' visibility map, as autovacuum keeps it on a live database: without it the
        # queue's segments cannot be read from their index alone (a fresh bulk load has none).
        with db.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
                "VACUUM (ANALYZE) alerts"
            )
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
    """Wall time percentiles, and the median CPU time of this thread (the request's own work:
    it moves less than wall time when other work shares the machine)."""
    fn()  # warm the caches and the connection pool
    samples, cpu = [], []
    for _ in range(runs):
        t0, c0 = time.perf_counter(), time.thread_time()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.thread_time() - c0) * 1000)
    samples.sort()
    return {
        "p50_ms": round(statistics.median(samples), 1),
        "p95_ms": round(samples[max(0, int(len(samples) * 0.95) - 1)], 1),
        "cpu_p50_ms": round(statistics.median(cpu), 1),
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

    def fetch(path: str) -> int:
        """The request as a client sees it come back, not parsed: reading 100 kB of JSON back
        into Python (2-3 ms) is the test client's work, not the server's."""
        response = client.get(path, headers=headers)
        assert response.status_code == 200, (path, response.status_code, response.get_data()[:300])
        return len(response.get_data())

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
            fetch(path)
        out[name] = timed(lambda p=path: fetch(p), 60) | {"statements": len(statements)}
        print(f"{name}: {out[name]}")
    out["web_queue_page"] = web_queue_page(app, email, engine)
    print(f"web_queue_page: {out['web_queue_page']}")
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    return {"reads": out}


_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def web_queue_page(app: Any, email: str, engine: sa.Engine) -> dict[str, Any]:
    """The nurses' queue page (``GET /``, HTML, its first page of 50 alerts), signed in through
    the sign-in form as a browser would (its CSRF token read from the page, as tests/web do)."""
    browser = app.test_client()
    match = _CSRF.search(browser.get("/login").get_data(as_text=True))
    assert match, "no CSRF token on /login"
    signed_in = browser.post(
        "/login",
        data={"csrf_token": match.group(1), "email": email, "password": "a-long-bench-password"},
    )
    assert signed_in.status_code == 303, (signed_in.status_code, signed_in.get_data()[:300])

    def page() -> int:
        response = browser.get("/")
        assert response.status_code == 200, (response.status_code, response.get_data()[:300])
        return len(response.get_data())

    with counting(engine) as statements:
        size = page()
    return timed(page, 60) | {"statements": len(statements), "bytes": size}


# --- ingest, under gunicorn, against the baseline --------------------------------------------

# The check-in every phone sends (and the floor's capture, ``bench/floor.py``).
CHECKIN: dict[str, Any] = {
    "assignment_id": None,
    "instrument": "checkin",
    "version": 1,
    "source": "patient",
    "answers": dataset.answers(random.Random(17)),  # a stable patient's, the same at every run
}
# The body as JSON around its answered_at, which wrk writes at each request.
_BODY_HEAD, _BODY_TAIL = json.dumps({**CHECKIN, "answered_at": "@"}).split('"@"')
WRK_SCRIPT = """
local tokens = {}
for line in io.lines(os.getenv("BENCH_TOKENS")) do tokens[#tokens + 1] = line end
local body_head = 'BODY_HEAD"'
local body_tail = '"BODY_TAIL'
local counter = 0
local thread_id = 0
function setup(thread) thread_id = thread_id + 1; thread:set("tid", thread_id) end
function init(args) math.randomseed(os.time() + tid * 7919) end
function post_response()
  counter = counter + 1
  local key = string.format("%08x-%04x-4%03x-a%03x-%012x", math.random(0, 0xffffffff),
    math.random(0, 0xffff), math.random(0, 0xfff), math.random(0, 0xfff), counter * 64 + tid)
  local token = tokens[(counter * 13 + tid) % #tokens + 1]
  -- Answered a second ago, each of a thread's answers after the one before, as a phone's are:
  -- the rules' kept state follows a patient's answers in the order they were given (one time
  -- for every answer sent half of them down the path of an answer arriving late).
  local body = body_head .. os.date("!%Y-%m-%dT%H:%M:%S", os.time() - 1) ..
    string.format(".%06d+00:00", counter % 1000000) .. body_tail
  return wrk.format("POST", "/api/v1/me/responses", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. token,
    ["Idempotency-Key"] = key,
  }, body)
end
request = post_response
""".replace("BODY_HEAD", _BODY_HEAD).replace("BODY_TAIL", _BODY_TAIL)
BASELINE_SCRIPT = """
wrk.method = 'POST'
wrk.headers['Content-Type'] = 'application/json'
wrk.body = '{"answers": {"pain_rest": 2}}'
"""
# A fixed rate (BENCH_RATE requests per second over the BENCH_THREADS threads) instead of as fast
# as the server answers: each wrk thread hands out send times at a fixed interval and wrk's
# delay() hook holds a connection's next request until its time (a wall clock through LuaJIT's
# ffi; wrk's Lua has none). A time already past is not caught up: if every connection is busy,
# the achieved rate falls below the target, which the results show beside it.
WRK_PACE = """
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]]
local pace_ts = ffi.new("bench_timespec")
local pace_interval = tonumber(os.getenv("BENCH_THREADS")) * 1000 /
  tonumber(os.getenv("BENCH_RATE"))
local pace_next = nil
local function pace_now()
  ffi.C.clock_gettime(1, pace_ts)  -- CLOCK_MONOTONIC
  return tonumber(pace_ts.tv_sec) * 1000 + tonumber(pace_ts.tv_nsec) / 1e6
end
function delay()
  local now = pace_now()
  if pace_next == nil or pace_next < now then pace_next = now end
  local wait = pace_next - now
  pace_next = pace_next + pace_interval
  return math.floor(wait)
end
"""
WRK_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("JSON {\\"requests\\": %d, \\"seconds\\": %f, \\"non2xx\\": %d, " ..
    "\\"socket_errors\\": %d, \\"p50\\": %f, \\"p90\\": %f, \\"p99\\": %f, \\"max\\": %f}\\n",
    summary.requests, summary.duration / 1e6, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
end
"""
WRK_THREADS = 2
CONNECTIONS = 16


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    base: str  # http://127.0.0.1:port
    pid: int  # gunicorn's master (its workers are its children)


@contextmanager
def gunicorn(app_spec: str, env: dict[str, str], workers: int = 3) -> Iterator[Server]:
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--workers",
            str(workers),
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
        yield Server(base, proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wrk_start(
    base: str,
    script: Path,
    env: dict[str, str],
    seconds: float,
    connections: int = CONNECTIONS,
    rate: float | None = None,
) -> subprocess.Popen[str]:
    """wrk in the background; ``rate`` (requests per second) needs a script with WRK_PACE."""
    paced = {"BENCH_RATE": f"{rate:.3f}", "BENCH_THREADS": str(WRK_THREADS)} if rate else {}
    return subprocess.Popen(
        [
            "wrk",
            f"-t{WRK_THREADS}",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            base,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env, **paced},
    )


def wrk_result(proc: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"wrk exited {proc.returncode}: {err.strip()[:500]}")
    line = next(line for line in out.splitlines() if line.startswith("JSON "))
    stats: dict[str, Any] = json.loads(line[5:])
    stats["rps"] = round(stats["requests"] / stats["seconds"], 1)
    return stats


def wrk(
    base: str,
    script: Path,
    env: dict[str, str],
    seconds: float,
    connections: int = CONNECTIONS,
    rate: float | None = None,
) -> dict[str, Any]:
    proc = wrk_start(base, script, env, seconds, connections, rate)
    try:
        return wrk_result(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def patient_tokens(
    db_url: str,
    n: int,
    *,
    valid_for: timedelta = timedelta(minutes=45),
    exclude: tuple[uuid.UUID, ...] = (),
) -> list[str]:
    """Access tokens of ``n`` cloned patients' phones, each spread over many patients so the
    per-patient check-in limit is not what is measured; valid for ``valid_for`` from now (the
    tokens are issued as if later: their lifetime is at most 15 minutes)."""
    from backend.auth.tokens import issue_access_token
    from backend.clock import Clock
    from backend.patients.models import Device, Patient
    from backend.patients.services import patient_principal

    app = create_app(_config(db_url))
    with app.app_context():
        ttl = timedelta(seconds=int(app.config["ACCESS_TOKEN_TTL_SECONDS"]))
        now = Clock().now() + max(timedelta(0), valid_for - ttl)
        query = db.select(Patient, Device.session_id).join(Device, Device.patient_id == Patient.id)
        if exclude:
            query = query.where(Patient.id.not_in(exclude))
        rows = db.session.execute(query.limit(n)).all()
        tokens = [issue_access_token(patient_principal(p, sid), now)[0] for p, sid in rows]
        db.session.remove()
        db.engine.dispose()
    return tokens


def ingest_env(db_url: str, tokens_file: Path) -> dict[str, str]:
    """The environment of the production app under gunicorn (and of the wrk scripts)."""
    return {
        "APP_ENV": "production",
        "DATABASE_URL": db_url,
        "SECRET_KEY": SECRET,
        "LOG_LEVEL": "WARNING",
        "ANSWER_LINK_BASE_URL": "https://suivi.bench.example/a",
        "BENCH_TOKENS": str(tokens_file),
        "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"),
        # wrk sends thousands of check-ins over 2,000 phones in seconds: far past the daily cap
        # per patient, which is not what this measures.
        "CHECKIN_LIMIT_PER_DAY": "1000000",
        # Names the workers' PostgreSQL backends, whose CPU is read from /proc (``cpu_split``).
        "PGAPPNAME": INGEST_APP_NAME,
    }


INGEST_APP_NAME = "bench-ingest"


def measured(
    server: Server, script: Path, env: dict[str, str], watcher: sa.Engine
) -> dict[str, Any]:
    """A saturated 10-s run with the CPU it cost per request: the API workers' and their
    PostgreSQL backends' (``cpu_ms``; wrk's own is not counted). At saturation on a machine
    whose cores do nothing else, the throughputs' ratio follows these: the service reaches
    0.6x the baseline only if its whole request costs at most the baseline's / 0.6."""
    with procs.cpu_used(server.pid, watcher, INGEST_APP_NAME) as used:
        run = wrk(server.base, script, env, 10)
    if run["requests"]:
        run["cpu_ms"] = {k: round(1000 * v / run["requests"], 3) for k, v in used.items()}
    return run


# The floor (``bench/floor.py``): the statements of this many answers, captured from phones
# that wrk does not use, replayed in turn.
FLOOR_PHONES = 200
# What each member of a pair runs: the gunicorn app and the wrk script.
MEMBERS = {
    "baseline": ("bench.baseline:app", "baseline.lua"),
    "floor": ("bench.floor:create()", "baseline.lua"),
    "service": ("wsgi:app", "post.lua"),
}


def ingest(db_url: str) -> dict[str, Any]:
    # Phones of their own for the floor's capture: its replays write the captured states back,
    # which would send the service's next answers for those patients down the whole-history path.
    tokens = patient_tokens(db_url, min(PATIENTS, 2000 + FLOOR_PHONES + 1))
    tokens, floor_tokens = tokens[: -FLOOR_PHONES - 1], tokens[-FLOOR_PHONES - 1 :]
    work = Path(tempfile.mkdtemp(prefix="bench-"))
    (work / "tokens.txt").write_text("\n".join(tokens))
    # The two-instance run: each instance's phones of its own half.
    (work / "tokens-a.txt").write_text("\n".join(tokens[0::2]))
    (work / "tokens-b.txt").write_text("\n".join(tokens[1::2]))
    (work / "post.lua").write_text(WRK_SCRIPT + WRK_DONE)
    (work / "baseline.lua").write_text(BASELINE_SCRIPT + WRK_DONE)
    (work / "post-paced.lua").write_text(WRK_SCRIPT + WRK_PACE + WRK_DONE)
    (work / "baseline-paced.lua").write_text(BASELINE_SCRIPT + WRK_PACE + WRK_DONE)
    env = ingest_env(db_url, work / "tokens.txt") | {"FLOOR_CAPTURED": str(work / "floor.pkl")}
    os.environ["DATABASE_URL"] = db_url
    from bench import baseline, floor

    baseline.create_table()
    app = create_app(_config(db_url, CHECKIN_LIMIT_PER_DAY=1_000_000))
    floor_statements = floor.capture(app, floor_tokens, CHECKIN, work / "floor.pkl")
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    pairs = []
    out: dict[str, Any] = {}
    watcher = sa.create_engine(db_url, isolation_level="AUTOCOMMIT")
    try:
        for _ in range(int(os.environ.get("BENCH_PAIRS", "3"))):
            pair = {}
            for name, (app_spec, script) in MEMBERS.items():
                with gunicorn(app_spec, env) as server:
                    wrk(server.base, work / script, env, 3)  # warm-up
                    pair[name] = measured(server, work / script, env, watcher)
            pairs.append(pair)
            bare, service = pair["baseline"], pair["service"]
            print(
                f"ingest: baseline {bare['rps']:.0f} req/s, its statements alone "
                f"{pair['floor']['rps']:.0f}, service {service['rps']:.0f} (non-2xx: "
                f"{', '.join(str(run['non2xx']) for run in pair.values())}), "
                f"ratio {service['rps'] / bare['rps']:.3f}; "
                "CPU per request (ms): "
                + ", ".join(f"{name} {_cpu_text(run)}" for name, run in pair.items())
            )
        ratios = [p["service"]["rps"] / p["baseline"]["rps"] for p in pairs]
        floors = [p["floor"]["rps"] / p["baseline"]["rps"] for p in pairs]
        out = {
            "pairs": pairs,
            "throughput_ratio_median": round(statistics.median(ratios), 3),
            "throughput_ratio_range": [round(min(ratios), 3), round(max(ratios), 3)],
            "floor_statements": floor_statements,
            "floor_ratio_median": round(statistics.median(floors), 3),
            "floor_ratio_range": [round(min(floors), 3), round(max(floors), 3)],
            "cpu_ms_median": {
                name: {
                    part: round(statistics.median(values), 3)
                    for part in ("workers", "postgresql")
                    if (
                        values := [
                            p[name]["cpu_ms"][part]
                            for p in pairs
                            if part in p[name].get("cpu_ms", {})
                        ]
                    )
                }
                for name in MEMBERS
            },
        }
        half = statistics.median(p["baseline"]["rps"] for p in pairs) / 2
        out["half_load"] = half_load(work, env, half)
        out["own_half_load"] = own_half_load(
            work, env, statistics.median(p["service"]["rps"] for p in pairs) / 2
        )
        one = statistics.median(p["service"]["rps"] for p in pairs)
        out["instances"] = instances(work, env, one)
    finally:
        watcher.dispose()
        shutil.rmtree(work, ignore_errors=True)
    return {"ingest": out}


def _has(run: dict[str, Any], part: str) -> bool:
    return part in run.get("cpu_ms", {})


def _cpu_text(run: dict[str, Any]) -> str:
    cpu = run.get("cpu_ms", {})
    return " + ".join(
        f"{part} {cpu[part]:.2f}" for part in ("workers", "postgresql") if part in cpu
    )


def half_load(work: Path, env: dict[str, str], rate: float) -> dict[str, Any]:
    """Latency at a fixed rate, half the baseline's saturation throughput, service and baseline
    alike (the goal: the service's p99 at most twice the baseline's)."""
    seconds = float(os.environ.get("BENCH_PACED_SECONDS", "15"))
    runs = {}
    for name, app_spec, script in (
        ("baseline", "bench.baseline:app", "baseline"),
        ("service", "wsgi:app", "post"),
    ):
        with gunicorn(app_spec, env) as server:
            wrk(server.base, work / f"{script}-paced.lua", env, 3, rate=rate)  # warm-up
            runs[name] = wrk(server.base, work / f"{script}-paced.lua", env, seconds, rate=rate)
    bare, service = runs["baseline"], runs["service"]
    result = {
        "target_rps": round(rate, 1),
        "seconds": seconds,
        "baseline": bare,
        "service": service,
        "p99_ratio": round(service["p99"] / bare["p99"], 2) if bare["p99"] else None,
    }
    print(
        f"half load ({rate:.0f} req/s asked): baseline p99 {bare['p99']:.1f} ms at "
        f"{bare['rps']:.0f} req/s, service p99 {service['p99']:.1f} ms at {service['rps']:.0f} "
        f"req/s ({service['non2xx']} non-2xx), ratio {result['p99_ratio']}"
    )
    return result


def own_half_load(work: Path, env: dict[str, str], rate: float) -> dict[str, Any]:
    """The service's latency at half its own saturation throughput (a figure: what phones wait
    under a heavy load the instance holds; the goal's half load is the baseline's)."""
    seconds = float(os.environ.get("BENCH_PACED_SECONDS", "15"))
    with gunicorn("wsgi:app", env) as server:
        wrk(server.base, work / "post-paced.lua", env, 3, rate=rate)  # warm-up
        run = wrk(server.base, work / "post-paced.lua", env, seconds, rate=rate)
    print(
        f"the service at half its own saturation ({rate:.0f} req/s asked): p50 {run['p50']:.1f} "
        f"ms, p99 {run['p99']:.1f} ms at {run['rps']:.0f} req/s ({run['non2xx']} non-2xx)"
    )
    return {"target_rps": round(rate, 1), "seconds": seconds, "service": run}


def instances(work: Path, env: dict[str, str], one_rps: float) -> dict[str, Any]:
    """Two API instances (two gunicorns of 3 workers on their own ports, one wrk each, at once)
    against the one instance of the pairs, on the same machine and database."""
    seconds = 10
    envs = [env | {"BENCH_TOKENS": str(work / f"tokens-{x}.txt")} for x in "ab"]
    with (
        gunicorn("wsgi:app", envs[0]) as first,
        gunicorn("wsgi:app", envs[1]) as second,
    ):
        servers = (first, second)
        runs = []
        for duration in (3, seconds):  # a warm-up, then the measure
            procs = [
                wrk_start(s.base, work / "post.lua", e, duration)
                for s, e in zip(servers, envs, strict=True)
            ]
            try:
                runs = [wrk_result(p) for p in procs]
            finally:
                for p in procs:
                    if p.poll() is None:
                        p.kill()
                        p.wait()
    total = sum(r["rps"] for r in runs)
    result = {
        "one_instance_rps": round(one_rps, 1),
        "two_instances_rps": round(total, 1),
        "two_instances_runs": runs,
        "speedup": round(total / one_rps, 2) if one_rps else None,
        "workers_per_instance": 3,
        "cpus": os.cpu_count(),
    }
    each = " + ".join(f"{r['rps']:.0f}" for r in runs)
    print(
        f"instances: one {one_rps:.0f} req/s, two {total:.0f} req/s ({each}), x{result['speedup']}"
    )
    return result


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
            "queue page (HTML), p95",
            "<= 50 ms",
            reads.get("web_queue_page", {}).get("p95_ms"),
        ),
        (
            "POST /me/responses / baseline throughput",
            ">= 0.6x",
            results.get("ingest", {}).get("throughput_ratio_median"),
        ),
        (
            "p99 at half load / baseline's",
            "<= 2x",
            results.get("ingest", {}).get("half_load", {}).get("p99_ratio"),
        ),
        (
            "two API instances / one, throughput",
            "-",
            results.get("ingest", {}).get("instances", {}).get("speedup"),
        ),
    ]
    print(f"\nScale {SCALE:g}: {results['patients']:,} patients")
    print(f"{'measure':<44} {'goal':<10} measured")
    for name, goal, value in rows:
        print(f"{name:<44} {goal:<10} {value if value is not None else 'not run'}")
    print(f"(written to {RESULTS / 'scale.json'})")


if __name__ == "__main__":
    main()
