"""``record``: the one helper every read or write of patient data calls.

The event is added to the current session, so it commits (or rolls back) together with the change
it describes. Actor, request id and client address come from the request when there is one.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from flask import has_request_context

from backend.audit.models import AuditEvent
from backend.auth.principal import Principal, current_principal
from backend.context import client_address, request_id
from backend.extensions import db


def record(
    action: str,
    *,
    now: datetime,
    resource_type: str | None = None,
    resource_id: uuid.UUID | str | None = None,
    patient_id: uuid.UUID | None = None,
    outcome: str = "success",
    actor: Principal | None = None,
    actor_type: str | None = None,
    actor_id: uuid.UUID | None = None,
    site_id: uuid.UUID | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add an audit event to the current transaction (flushed with it, never committed here)."""
    in_request = has_request_context()
    if actor is None and in_request:
        actor = current_principal()
    event = AuditEvent(
        occurred_at=now,
        actor_type=actor_type
        or (
            "user"
            if actor and actor.is_staff
            else "patient"
            if actor
            else "anonymous"
            if in_request
            else "system"
        ),
        actor_id=actor.id if actor else actor_id,
        actor_role=actor.role if actor else None,
        site_id=site_id or (actor.site_id if actor else None),
        action=action,
        outcome=outcome,
        resource_type=resource_type,
        resource_id=str(resource_id) if resource_id is not None else None,
        patient_id=patient_id,
        request_id=request_id(),
        client_addr=client_address() if in_request else None,
        details=details or {},
    )
    db.session.add(event)
    return event
