"""Benchmark: the CPU per request of the read paths of ``bench_scale.py`` (``GET /api/v1/alerts``
first page and a deep page by cursor, the nurses' queue page ``GET /``, a year-long timeline),
in process, on a database built as ``bench_scale`` builds it (``BENCH_SCALE``, 0.02 by default:
2,000 patients, 200 open alerts; a page of 50 costs the same Python at any scale, the plans do
not change in kind). Not in ``make bench``: a tool for the read paths' hot spots.

It prints, per path, the CPU time per request (``time.thread_time``: it moves less with the
machine's load than wall time; median and p10 over ``BENCH_REQUESTS``, 200), the wall time, the
SQL statements and the response's size and hash (to compare two codes' bodies).
``BENCH_PROFILE=1`` adds the Python function calls per request (deterministic, so a step that
removes work shows whatever the load) and a cProfile by CPU time of each path
(``BENCH_PROFILE_PATH`` prints one; ``BENCH_PROFILE_OUT=prefix`` writes each to ``prefix.<path>``).

``BENCH_CODE=/path/to/another/worktree`` measures that worktree's ``backend`` with this script
(an A/B of two commits on databases built alike). To compare two codes' bodies byte for byte on
one database: ``BENCH_KEEP=1`` keeps the schema (its URL is printed), ``BENCH_URL=<that URL>``
reads it without building, ``BENCH_BODIES=<dir>`` writes each path's body there; with either of
the last two the clock is frozen at ``BENCH_NOW`` (ISO 8601, default 2026-12-07T04:00:00+00:00) so
that "3 hours ago" reads the same in both runs. Numbers are printed, never asserted.
"""

from __future__ import annotations

import hashlib
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("BENCH_SCALE", "0.02")
HERE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(HERE))
if os.environ.get("BENCH_CODE"):
    sys.path.insert(0, os.environ["BENCH_CODE"])

import sqlalchemy as sa

from backend import create_app
from backend.extensions import db
from bench import dataset
from bench.bench_scale import _CSRF, URL, _config, build, counting

REQUESTS = int(os.environ.get("BENCH_REQUESTS", "200"))
PASSWORD = "a-long-bench-password"


def main() -> None:
    import backend

    print(f"code: {Path(backend.__file__).parent.parent}; probe {dataset.cpu_probe():.3f} s")
    if os.environ.get("BENCH_URL"):
        measure(os.environ["BENCH_URL"])
        return
    db_url, drop_schema = dataset.new_schema(URL)
    try:
        build(db_url)
        measure(db_url)
    finally:
        if os.environ.get("BENCH_KEEP"):
            print(f"schema kept: BENCH_URL='{db_url}'")
        else:
            drop_schema()


def requests(db_url: str) -> tuple[Any, dict[str, Callable[[], bytes]]]:
    """The app and, per path, a function making one request and giving its body."""
    extra: dict[str, Any] = {}
    if os.environ.get("BENCH_URL") or os.environ.get("BENCH_BODIES"):
        from datetime import datetime

        from backend.clock import FrozenClock

        now = os.environ.get("BENCH_NOW", "2026-12-07T04:00:00+00:00")
        extra["CLOCK"] = FrozenClock(datetime.fromisoformat(now))
    app = create_app(_config(db_url, **extra))
    api = app.test_client()
    with app.app_context():
        template = db.session.execute(
            sa.text("SELECT id FROM patients WHERE mrn = 'T1'")
        ).scalar_one()
        db.session.remove()
    email = "nurse0@bench.example"
    token = api.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD}).get_json()[
        "access_token"
    ]
    headers = {"Authorization": f"Bearer {token}"}

    def getter(client: Any, path: str, **kw: Any) -> Callable[[], bytes]:
        def get() -> bytes:
            response = client.get(path, **kw)
            assert response.status_code == 200, (path, response.status_code)
            return bytes(response.get_data())

        return get

    cursor, deep = None, None
    for _ in range(20):
        page = api.get("/api/v1/alerts" + (f"?cursor={cursor}" if cursor else ""), headers=headers)
        cursor = page.get_json()["next_cursor"]
        if not cursor:
            break
        deep = cursor
    browser = app.test_client()
    match = _CSRF.search(browser.get("/login").get_data(as_text=True))
    assert match
    signed_in = browser.post(
        "/login", data={"csrf_token": match.group(1), "email": email, "password": PASSWORD}
    )
    assert signed_in.status_code == 303
    paths = {
        "alerts_first": getter(api, "/api/v1/alerts", headers=headers),
        "alerts_deep": getter(api, f"/api/v1/alerts?cursor={deep}", headers=headers),
        "queue_page": getter(browser, "/"),
        "timeline": getter(api, f"/api/v1/patients/{template}/timeline", headers=headers),
    }
    return app, paths


def measure(db_url: str) -> None:
    app, paths = requests(db_url)
    with app.app_context():
        engine = db.engine
    for name, get in paths.items():
        for _ in range(10):  # warm-up: caches, pools, compiled statements
            body = get()
        with counting(engine) as statements:
            get()
        wall, cpu = [], []
        for _ in range(REQUESTS):
            t0, c0 = time.perf_counter(), time.thread_time()
            get()
            cpu.append((time.thread_time() - c0) * 1000)
            wall.append((time.perf_counter() - t0) * 1000)
        digest = hashlib.sha256(_stable(name, body)).hexdigest()[:12]
        if os.environ.get("BENCH_BODIES"):
            Path(os.environ["BENCH_BODIES"], name).write_bytes(_stable(name, body))
        print(
            f"{name:13s} CPU median {statistics.median(cpu):6.2f} ms "
            f"(p10 {sorted(cpu)[len(cpu) // 10]:6.2f}), wall median "
            f"{statistics.median(wall):6.2f} ms, {len(statements)} statements, "
            f"{len(body):,} bytes, body {digest}",
            end="",
        )
        if os.environ.get("BENCH_PROFILE"):
            import cProfile
            import pstats

            profile = cProfile.Profile(time.thread_time)  # CPU, not the waits on PostgreSQL
            profile.enable()
            for _ in range(50):
                get()
            profile.disable()
            stats = pstats.Stats(profile)
            print(f", Python calls {stats.total_calls / 50:,.0f}", end="")  # type: ignore[attr-defined]
            if os.environ.get("BENCH_PROFILE_OUT"):
                stats.dump_stats(f"{os.environ['BENCH_PROFILE_OUT']}.{name}")
            if os.environ.get("BENCH_PROFILE_PATH", name) == name:
                print()
                stats.sort_stats(os.environ.get("BENCH_PROFILE_SORT", "tottime"))
                stats.print_stats(os.environ.get("BENCH_PROFILE_FILTER", ""), 45)
        print()
        if os.environ.get("BENCH_VERBOSE"):
            for s in statements:
                print("   ", " ".join(s.split())[:200])
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def _stable(name: str, body: bytes) -> bytes:
    """The body without what differs between two runs (the queue page's CSRF token)."""
    if name == "queue_page":
        return _CSRF.sub("", body.decode()).encode()
    return body


if __name__ == "__main__":
    main()
