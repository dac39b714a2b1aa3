"""The reminder pipeline in process: where one scheduler's CPU goes, and its PostgreSQL backend's.

Builds ``bench_reminders``' database in a child process (``BENCH_SCALE``, 0.05 by default:
5,000 questionnaires opening now, with four weeks of outbox history), starts ``smtp_sink.py``
in another (its CPU is not the scheduler's), then runs ``run_pass`` here, after
``freeze_start_up_objects`` as ``flask scheduler run`` does, until nothing is left. Printed per
message handed over: the scheduler thread's CPU (``time.thread_time``; user and system) split
by step (open, enqueue, claim, send, record), the garbage collector's share, its PostgreSQL
backend's CPU (``/proc``), statements, shared buffers the schema's tables and indexes were read
or hit (a measure of the database's work the machine's other load does not move), and updates
per table with those that wrote no index entry (HOT). Nothing is asserted; CPU moves with the
machine, so compare runs made one after the other (A/B/A/B) and their medians.

Knobs: ``BENCH_SQL=1`` (statements and buffers per index, largest first), ``BENCH_DETAIL=1``
(the steps' parts), ``BENCH_PROFILE=1`` (cProfile of the whole run by internal time, wall
clock; ``BENCH_PROFILE_OUT`` keeps it), ``BENCH_PROFILE_STEP=record`` (cProfile of one step),
``BENCH_NO_FREEZE=1`` (the start-up heap left to the collector), ``BENCH_RECORD_EVERY=20``
(sends per record; the product's is 10), ``BENCH_ATTACH_WAIT=5`` (prints the pids and waits,
to attach ``perf record -p``).
"""

from __future__ import annotations

import cProfile
import os
import pstats
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("BENCH_SCALE", "0.05")
os.environ["PGAPPNAME"] = "bench-reminders-scheduler"

from bench import bench_reminders, dataset
from bench.bench_scale import URL, _config, _free_port
from bench.timed_scheduler import time_steps

SINK = """
import sys, time
sys.path.insert(0, {root!r})
from bench.smtp_sink import SmtpSink
sink = SmtpSink("127.0.0.1", {port})
sink.start()
print("ready", flush=True)
sys.stdin.read()
print(len(sink.arrivals), sum(len(t) - 1 for t in sink.arrivals.values()), flush=True)
"""


def table_updates(engine: sa.Engine) -> dict[str, tuple[int, int]]:
    """Rows updated so far per table, and of them those updated HOT (no index entry written)."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT relname, n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables "
                "WHERE schemaname = current_schema()"
            )
        ).all()
    return {name: (upd, hot) for name, upd, hot in rows}


def index_accesses(engine: sa.Engine) -> dict[str, int]:
    """Shared buffers read or hit so far per index and per table's heap, in this schema."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT indexrelname, idx_blks_read + idx_blks_hit FROM pg_statio_user_indexes"
                " WHERE schemaname = current_schema() UNION ALL"
                " SELECT relname || ' (heap)', heap_blks_read + heap_blks_hit"
                " FROM pg_statio_user_tables WHERE schemaname = current_schema()"
            )
        ).all()
    return {name: int(n or 0) for name, n in rows}


def buffer_accesses(engine: sa.Engine) -> int:
    """Shared buffers read or hit so far by this schema's tables and indexes (TOAST included): a
    measure of the database's work that the machine's other load does not move."""
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.text(
                    "SELECT sum(coalesce(heap_blks_read, 0) + coalesce(heap_blks_hit, 0)"
                    " + coalesce(idx_blks_read, 0) + coalesce(idx_blks_hit, 0)"
                    " + coalesce(toast_blks_read, 0) + coalesce(toast_blks_hit, 0))"
                    " FROM pg_statio_user_tables WHERE schemaname = current_schema()"
                )
            ).scalar()
            or 0
        )


def main() -> None:
    from backend import create_app
    from backend.extensions import db
    from backend.notify import jobs as notify_jobs
    from backend.schedule import services
    from backend.schedule.worker import freeze_start_up_objects, run_pass

    db_url, drop_schema = dataset.new_schema(URL)
    port = _free_port()
    sink = subprocess.Popen(
        [sys.executable, "-c", SINK.format(root=str(ROOT), port=port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert sink.stdout is not None and sink.stdin is not None
        sink.stdout.readline()
        zone = bench_reminders.daytime_zone()
        t0 = time.perf_counter()
        # In a child process: this one's heap stays a scheduler's (the garbage collector's work
        # grows with it).
        subprocess.run(
            [
                sys.executable,
                "-c",
                f"import sys; sys.path.insert(0, {str(ROOT)!r}); from bench import bench_reminders;"
                f" bench_reminders.build({db_url!r}, {zone!r})",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        print(
            f"{bench_reminders.QUESTIONNAIRES:,} questionnaires, built in "
            f"{time.perf_counter() - t0:.0f} s; probe {dataset.cpu_probe()} s"
        )
        app = create_app(
            _config(
                db_url,
                SMTP_HOST="127.0.0.1",
                SMTP_PORT=port,
                SMTP_STARTTLS=False,
                MAIL_FROM="rappels@bench.example",
                ANSWER_LINK_BASE_URL="https://suivi.bench.example/a",
            )
        )
        steps: Counter[str] = Counter()

        focus = os.environ.get("BENCH_PROFILE_STEP")  # profile this step alone
        step_profile = cProfile.Profile()

        def timed(name: str, fn: Any) -> Any:
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                start = time.thread_time()
                if name == focus:
                    step_profile.enable()
                try:
                    return fn(*args, **kwargs)
                finally:
                    if name == focus:
                        step_profile.disable()
                    steps[name] += time.thread_time() - start

            return wrapper

        time_steps(timed)
        if os.environ.get("BENCH_DETAIL"):  # the steps' parts, timed the same way
            from backend.notify import claim as claim_module

            for module, names in (
                (
                    claim_module,
                    ("_due", "_load_batch", "_decide_simple", "_lease", "save_reminder_links"),
                ),
                (
                    services,
                    (
                        "_enqueue_due_now",
                        "insert_rows",
                        "reminder_times",
                        "enqueue_patient_notifications",
                    ),
                ),
            ):
                for name in names:
                    setattr(
                        module,
                        name,
                        timed(f"{module.__name__.rsplit('.', 1)[1]}.{name}", getattr(module, name)),
                    )
        if every := os.environ.get("BENCH_RECORD_EVERY"):  # what a larger chunk would save
            notify_jobs.RECORD_EVERY = int(every)
        statements = 0
        by_sql: dict[str, list[float]] = {}  # statement -> [count, wall seconds]
        started: list[float] = []

        def count(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
            nonlocal statements
            statements += 1
            started.append(time.perf_counter())

        def done(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
            entry = by_sql.setdefault(" ".join(sql.split())[:110], [0, 0.0])
            entry[0] += 1
            entry[1] += time.perf_counter() - started.pop()

        profile = cProfile.Profile() if os.environ.get("BENCH_PROFILE") else None
        with app.app_context():
            sa.event.listen(db.engine, "before_cursor_execute", count)
            sa.event.listen(db.engine, "after_cursor_execute", done)
            backend_pid = db.session.execute(sa.text("SELECT pg_backend_pid()")).scalar()
            db.session.commit()
            if wait := float(os.environ.get("BENCH_ATTACH_WAIT", "0")):
                # Time to attach a profiler (perf record -p) to the backend or this process.
                print(f"scheduler pid {os.getpid()}, its backend {backend_pid}", flush=True)
                time.sleep(wait)
            watcher = sa.create_engine(db_url, isolation_level="AUTOCOMMIT")
            hot_before = table_updates(watcher)
            buffers_before = buffer_accesses(watcher)
            by_index_before = index_accesses(watcher)
            pg_before = sum(bench_reminders.backend_cpu(watcher).values())
            import gc

            if not os.environ.get("BENCH_NO_FREEZE"):
                freeze_start_up_objects()  # as ``flask scheduler run`` does
            collections = [0, 0, 0]
            gc_time = [0.0]
            gc_started = [0.0]

            def on_gc(phase: str, info: dict[str, int]) -> None:
                if phase == "start":
                    gc_started[0] = time.thread_time()
                else:
                    collections[info["generation"]] += 1
                    gc_time[0] += time.thread_time() - gc_started[0]

            gc.callbacks.append(on_gc)
            statements = 0
            by_sql.clear()
            import resource

            usage = resource.getrusage(resource.RUSAGE_THREAD)
            cpu = time.thread_time()
            wall = time.perf_counter()
            if profile:
                profile.enable()
            while True:
                totals = run_pass()
                if not any(totals.values()):
                    break
            if profile:
                profile.disable()
            cpu = time.thread_time() - cpu
            after = resource.getrusage(resource.RUSAGE_THREAD)
            user_sys = (after.ru_utime - usage.ru_utime, after.ru_stime - usage.ru_stime)
            switches = (after.ru_nvcsw - usage.ru_nvcsw, after.ru_nivcsw - usage.ru_nivcsw)
            gc.callbacks.remove(on_gc)
            wall = time.perf_counter() - wall
            pg = sum(bench_reminders.backend_cpu(watcher).values()) - pg_before
            db.session.remove()
            db.engine.dispose()  # its statistics reach pg_stat_user_tables as it closes
            time.sleep(1.5)
            buffers = buffer_accesses(watcher) - buffers_before
            by_index = {
                k: v - by_index_before.get(k, 0) for k, v in index_accesses(watcher).items()
            }
            hot = {
                name: (upd - hot_before.get(name, (0, 0))[0], h - hot_before.get(name, (0, 0))[1])
                for name, (upd, h) in table_updates(watcher).items()
            }
            watcher.dispose()
            db.session.remove()
            db.engine.dispose()
        sink.stdin.close()
        delivered, duplicates = (int(x) for x in sink.stdout.readline().split())
        n = max(delivered, 1)
        print(
            f"delivered {delivered:,} (duplicates {duplicates}) in {wall:.1f} s; per message: "
            f"scheduler CPU {1000 * cpu / n:.3f} ms, PostgreSQL {1000 * pg / n:.3f} ms, "
            f"statements {statements / n:.3f}"
        )
        print("  " + ", ".join(f"{k} {1000 * v / n:.3f}" for k, v in steps.most_common()))
        print(
            f"  user {1000 * user_sys[0] / n:.3f} ms, system {1000 * user_sys[1] / n:.3f} ms; "
            f"context switches per message {switches[0] / n:.2f} (+{switches[1] / n:.2f})"
        )
        print(f"  PostgreSQL buffer accesses per message {buffers / n:.1f}")
        if os.environ.get("BENCH_SQL"):
            for name, count in sorted(by_index.items(), key=lambda kv: -kv[1])[:30]:
                if count:
                    print(f"    {count / n:6.1f}  {name}")
        print(
            f"  garbage collections by generation {collections}, "
            f"{1000 * gc_time[0] / n:.3f} ms per message"
        )
        print(
            "  updates (HOT) per table: "
            + ", ".join(f"{name} {upd} ({h})" for name, (upd, h) in sorted(hot.items()) if upd)
        )
        if os.environ.get("BENCH_SQL"):
            for sql, (calls, seconds) in sorted(by_sql.items(), key=lambda kv: -kv[1][1])[:25]:
                print(f"  {calls:6} {1000 * seconds / n:7.3f} ms/msg  {sql}")
        if focus:
            pstats.Stats(step_profile).sort_stats("tottime").print_stats(30)
        if profile:
            if out := os.environ.get("BENCH_PROFILE_OUT"):
                profile.dump_stats(out)
            pstats.Stats(profile).sort_stats("tottime").print_stats(35)
    finally:
        if sink.poll() is None:
            sink.kill()
        drop_schema()


if __name__ == "__main__":
    main()
