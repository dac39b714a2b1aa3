"""Structured logs: JSON lines with the request id, and no secret in them."""

from __future__ import annotations

import io
import json
import logging

from tests.conftest import login


def test_request_logs_are_json_lines_with_the_request_id_and_no_secrets(client, nurse_ada):
    handler = next(h for h in logging.getLogger().handlers if getattr(h, "_ir_followup", False))
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    try:
        tokens = login(client, nurse_ada)
        client.post(
            "/api/v1/auth/login", json={"email": nurse_ada.email, "password": "bad-pass-x1"}
        )
    finally:
        handler.setStream(previous)
    err = buffer.getvalue()
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    access = [line for line in lines if line["logger"] == "backend.access"]
    assert len(access) == 2
    assert all(line["request_id"] and line["route"] == "/api/v1/auth/login" for line in access)
    for secret in (
        nurse_ada.password,
        "bad-pass-x1",
        tokens["access_token"],
        tokens["refresh_token"],
        nurse_ada.email,
    ):
        assert secret not in err


def test_an_anonymous_request_after_a_staff_one_is_audited_as_anonymous(
    client, nurse_ada, ada_headers
):
    from backend.audit.models import AuditEvent
    from backend.extensions import db

    assert client.get("/api/v1/patients", headers=ada_headers).status_code == 200
    client.post("/api/v1/auth/login", json={"email": "ghost@x.example", "password": "wrong-x1"})
    last = (
        db.session.execute(
            db.select(AuditEvent)
            .filter_by(action="auth.login")
            .order_by(AuditEvent.occurred_at.desc(), AuditEvent.id)
        )
        .scalars()
        .all()
    )
    failure = next(e for e in last if e.outcome == "failure")
    assert failure.actor_type == "anonymous" and failure.actor_id is None
