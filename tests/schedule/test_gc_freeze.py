"""The scheduler leaves its start-up heap out of the garbage collector's passes, and nothing else.

Checked in a child process: freezing is for the life of a process, and the test run's own heap
must not be frozen.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.conftest import ROOT

CHILD = textwrap.dedent(
    """
    import gc, weakref
    from backend import create_app
    from backend.schedule.worker import freeze_start_up_objects

    app = create_app({"APP_ENV": "testing", "DATABASE_URL": "sqlite://",
                      "SECRET_KEY": "x" * 40, "RATELIMIT_ENABLED": False})
    assert gc.get_freeze_count() == 0
    freeze_start_up_objects()
    frozen = gc.get_freeze_count()

    class Node:
        pass

    # A cycle made after start-up, as a batch's rows and sessions make: still collected.
    node = Node()
    node.self = node
    gone = weakref.ref(node)
    del node
    gc.collect()
    print(frozen, gone() is None)
    """
)


def test_the_start_up_heap_is_frozen_and_later_cycles_are_still_collected():
    out = subprocess.run(
        [sys.executable, "-c", CHILD], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    frozen, collected = int(out[-2]), out[-1]
    # The application's objects (modules, mappers, the app): tens of thousands, not a handful.
    assert frozen > 10_000
    assert collected == "True"
