"""The ingest's floor: the SQL statements that recording an answer runs, replayed alone.

``capture`` posts one real answer (``POST /me/responses`` in process) for each of some phones
and keeps the statements and parameters each one sent to PostgreSQL: the session with its
patient, the patient's lock with the procedure, the daily limit, the response with its audit
row, the rule versions and missed questionnaires, the kept rule state (locked), the alerts with
the count of answers, the state's update. ``create`` is a bare Flask app on the baseline's stack
(``bench/baseline.py``: Flask, Flask-SQLAlchemy, psycopg) that replays one of them per request,
in one transaction, with a new response id, audit id and idempotency key; no token to verify,
no body to validate, no rules in Python, no response to build.

Its throughput against the baseline's is the most that any implementation keeping these
guarantees with these statements could reach on this stack: what is left for the ingest goal
once the database work is paid. ``gunicorn 'bench.floor:create()'`` with ``FLOOR_CAPTURED``
naming the file ``capture`` wrote.
"""

from __future__ import annotations

import itertools
import os
import pickle
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask, request
from flask_sqlalchemy import SQLAlchemy

Captured = list[list[tuple[str, Any]]]


def capture(app: Any, tokens: list[str], body: dict[str, Any], path: Path) -> int:
    """One answer per token through the real endpoint; the statements of each but the first
    (a warm-up) written to ``path`` (pickled); returns the number of statements of an answer.
    ``body`` has no ``answered_at``: each answer is given a second after the one before."""
    import sqlalchemy as sa

    from backend.clock import Clock
    from backend.extensions import db

    with app.app_context():
        engine = db.engine
    current: list[tuple[str, Any]] = []

    def seen(_c: Any, _cur: Any, statement: str, parameters: Any, *_args: Any) -> None:
        current.append((statement, parameters))

    client = app.test_client()
    start = Clock().now() - timedelta(minutes=1, seconds=len(tokens) + 1)
    captured: Captured = []
    sa.event.listen(engine, "before_cursor_execute", seen)
    try:
        # The first answer also reads the instrument (once per process): a warm-up, not kept.
        for i, token in enumerate(tokens):
            current.clear()
            answered = {**body, "answered_at": (start + timedelta(seconds=i)).isoformat()}
            headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": str(uuid.uuid4())}
            response = client.post("/api/v1/me/responses", json=answered, headers=headers)
            if response.status_code != 201:
                raise RuntimeError(f"capture: {response.status_code} {response.get_json()}")
            if i:
                captured.append(list(current))
    finally:
        sa.event.remove(engine, "before_cursor_execute", seen)
    path.write_bytes(pickle.dumps(captured))
    return len(captured[0]) if captured else 0


def create() -> Flask:
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["DATABASE_URL"]
    db = SQLAlchemy(app)
    captured: Captured = pickle.loads(Path(os.environ["FLOOR_CAPTURED"]).read_bytes())  # noqa: S301 (our own file)
    turn = itertools.count(os.getpid())  # each worker starts at another phone

    @app.post("/")
    def replay() -> tuple[dict[str, str], int]:
        request.get_json()
        response_id = uuid.uuid4()
        fresh = {
            "r_id": response_id,
            "a_id": uuid.uuid4(),
            "a_resource_id": response_id,
            "r_idempotency_key": str(uuid.uuid4()),
        }
        conn = db.session.connection()
        for statement, parameters in captured[next(turn) % len(captured)]:
            # The response with its audit row: new unique ids and key (the names it binds).
            if isinstance(parameters, dict) and "r_id" in parameters:
                parameters = parameters | fresh
            conn.exec_driver_sql(statement, parameters)
        db.session.commit()
        return {"id": str(response_id)}, 201

    return app
