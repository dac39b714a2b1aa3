"""Structured logs: one JSON object per line on stderr, each with the request id.

What is logged is chosen, never dumped: method, path template, status, duration, ids. No request
or response body, no header, no token, password, address or health content is ever passed to a
logger, and SQLAlchemy hides statement parameters (see ``create_app``).
"""

from __future__ import annotations

import logging
import sys
import time
import traceback
from types import TracebackType

from flask import Flask, Response, g, request
from pythonjsonlogger.json import JsonFormatter

from backend.context import request_id


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id()
        return True


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter(
            "{levelname}{name}{message}{request_id}",
            style="{",
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp="time",  # ISO 8601, UTC
        )
    )
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        if getattr(existing, "_ir_followup", False):
            root.removeHandler(existing)
    handler._ir_followup = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    # Werkzeug's own access log repeats the query string; ours replaces it.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)


access_log = logging.getLogger("backend.access")
error_log = logging.getLogger("backend.errors")


class App(Flask):
    """Flask, logging an unhandled exception without what the request carried.

    Flask's own line names the concrete path (a patient's id) and its traceback ends with the
    exception's message, which can quote a value sent (a driver's "invalid input ... 'Dupont'").
    Here: the route template, the method, the exception's type and where it was raised
    (file, line, function of each frame), and nothing else.
    """

    def log_exception(
        self,
        exc_info: tuple[type, BaseException, TracebackType] | tuple[None, None, None],
    ) -> None:
        _, error, tb = exc_info
        frames = [
            f"{frame.filename}:{frame.lineno} in {frame.name}"
            for frame in traceback.extract_tb(tb)[-12:]
        ]
        error_log.error(
            "unhandled error",
            extra={
                "method": request.method,
                "route": request.url_rule.rule if request.url_rule else None,
                "error_type": type(error).__name__ if error is not None else None,
                "frames": frames,
            },
        )


def init_app(app: Flask) -> None:
    @app.before_request
    def _start_timer() -> None:
        g.started_at = time.perf_counter()

    @app.after_request
    def _log_request(response: Response) -> Response:
        started = g.get("started_at")
        duration_ms = round((time.perf_counter() - started) * 1000, 1) if started else None
        access_log.info(
            "request",
            extra={
                "method": request.method,
                # The route template, not the concrete path: no identifiers in access logs.
                "route": request.url_rule.rule if request.url_rule else None,
                "status": response.status_code,
                "duration_ms": duration_ms,
            },
        )
        return response
