"""End-to-end: the real app served on 127.0.0.1, driven by a real headless Chromium.

Chromium is Debian's (``/usr/bin/chromium``, installed by ``.ci/run`` when missing); Playwright
drives it and never downloads a browser of its own. The app runs with real commits
(``committing_app``) in a background thread; its clock is the tests' frozen clock, so pages,
ages and screenshots come out the same at every run.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import make_server

from backend.demo import seed
from backend.extensions import db
from tests.conftest import IN_CI, ROOT

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# Headless, and no background traffic: the machine's network is closed (and CI's may be).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = ROOT / "docs" / "screenshots"
VIEWPORT = {"width": 1280, "height": 800}


@pytest.fixture(params=["sqlite"])
def database_url(request: pytest.FixtureRequest) -> str:
    """SQLite only. The browser tests prove the pages, which are the same on both databases;
    the views' queries run on PostgreSQL too in ``tests/web`` (Flask's test client, both
    databases). A second browser pass would double the suite's slowest part for nothing new."""
    return str(request.getfixturevalue(f"{request.param}_url"))


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        message = f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def live_server(committing_app: Flask) -> Iterator[str]:
    """The app on a free port of 127.0.0.1, one thread per request, until the test ends."""
    server = make_server("127.0.0.1", 0, committing_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


@pytest.fixture
def demo(committing_app: Flask) -> None:
    """The demo cohort of `make run` (the personas of the screenshots), committed."""
    seed()
    db.session.commit()
    release()


def release() -> None:
    """End the test thread's transaction: on SQLite every transaction holds the write lock
    (BEGIN IMMEDIATE), and the server's threads must not wait for the test."""
    db.session.rollback()
    db.session.remove()


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    """A fresh browser profile: an English-speaking nurse in Lyon, on a 1280x800 screen."""
    ctx = browser.new_context(viewport=VIEWPORT, locale="en-GB", timezone_id="Europe/Paris")
    ctx.set_default_timeout(10_000)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: Any) -> Any:
    return context.new_page()


def screenshot(page: Any, name: str, full_page: bool = False) -> Path:
    """Written to docs/screenshots/ (the README shows them): what the nurse sees."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    page.screenshot(path=str(path), full_page=full_page, animations="disabled", caret="hide")
    return path


# WCAG 2.2 AA, as axe-core (pinned with axe-playwright-python) tests it: the success criteria
# of levels A and AA of WCAG 2.0, 2.1 and 2.2.
WCAG_AA_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]


def serious_violations(page: Any) -> list[str]:
    """axe-core's serious and critical WCAG 2.2 AA violations on the page as it is now, each
    as "rule: target, ..." (empty when there is none)."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(
        page,
        options={
            "runOnly": {"type": "tag", "values": WCAG_AA_TAGS},
            "resultTypes": ["violations"],
        },
    )
    return [
        f"{v['id']} ({v['impact']}): " + ", ".join(str(node["target"]) for node in v["nodes"][:5])
        for v in results.response["violations"]
        if v.get("impact") in ("serious", "critical")
    ]


def assert_accessible(page: Any) -> None:
    found = serious_violations(page)
    assert not found, f"axe-core on {page.url}:\n" + "\n".join(found)
