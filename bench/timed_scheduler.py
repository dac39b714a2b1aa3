"""``flask scheduler run`` with the CPU of each step of the reminder pipeline timed, for
``bench_reminders.py`` with ``BENCH_STEPS=1``: the same steps as ``profile_reminders.py`` (open,
enqueue, claim, send, record), measured inside the real scheduler processes.

Each step's time is the scheduler thread's CPU (``time.thread_time``) inside it; ``start_up`` is
the process's CPU before its first pass (imports, the application, the frozen heap), ``passes``
the pass thread's CPU in ``run_pass``, ``process`` all the process's CPU at exit. Written as
JSON to the path in ``BENCH_STEPS_OUT`` when the scheduler stops (SIGTERM).
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def time_steps(timed: Callable[[str, Any], Any]) -> None:
    """Wrap each step of the reminder pipeline in ``timed(name, fn)``: open, enqueue, claim,
    send, and record (the session's and, for a chunk of accepted sends, the held connection's).
    Shared with ``profile_reminders.py``, so both tools time the same steps."""
    from backend.notify import jobs as notify_jobs
    from backend.schedule import services

    services.open_due_assignments = timed("open", services.open_due_assignments)
    services.enqueue_due_reminders = timed("enqueue", services.enqueue_due_reminders)
    notify_jobs.claim_due_deliveries = timed("claim", notify_jobs.claim_due_deliveries)
    notify_jobs.record_outcomes = timed("record", notify_jobs.record_outcomes)
    notify_jobs.record_sent_on = timed("record", notify_jobs.record_sent_on)
    notify_jobs.Sender.send = timed("send", notify_jobs.Sender.send)


def install() -> None:
    from backend.schedule import worker

    steps: Counter[str] = Counter()
    first_pass: list[float] = []

    def timed(name: str, fn: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                steps[name] += time.thread_time() - start

        return wrapper

    time_steps(timed)
    run_pass = worker.run_pass

    def timed_pass(*args: Any, **kwargs: Any) -> Any:
        if not first_pass:
            first_pass.append(time.process_time())
        return timed("passes", run_pass)(*args, **kwargs)

    worker.run_pass = timed_pass

    def write() -> None:
        out = {
            "start_up": first_pass[0] if first_pass else time.process_time(),
            "process": time.process_time(),
            **steps,
        }
        Path(os.environ["BENCH_STEPS_OUT"]).write_text(json.dumps(out))

    atexit.register(write)


if __name__ == "__main__":
    install()
    from flask.cli import main

    sys.argv = ["flask", "--app", "wsgi", "scheduler", "run"]
    main()
