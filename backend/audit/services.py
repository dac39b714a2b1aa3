"""``record``: the one helper every read or write of patient data calls.

The event is added to the current session, so it commits (or rolls back) together with the change
it describes. The actor is always said by the caller, who holds it (a service is given its
principal; a job or the rules act as ``actor_type="system"``; a request before sign-in as
``"anonymous"``): never guessed from the request, so a service called from a job cannot sign a
row with a stale principal. Request id and client address come from the request when there is one.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import has_request_context

from backend.audit.models import AuditEvent
from backend.auth.principal import Principal
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
    actor: Principal | None,
    actor_type: str | None = None,
    actor_id: uuid.UUID | None = None,
    site_id: uuid.UUID | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add an audit event to the current transaction (flushed with it, never committed here).

    ``actor`` is the principal acting, or None with ``actor_type`` saying who acted instead
    ("system", "anonymous", or "user"/"patient" with ``actor_id`` before a principal exists).
    """
    event = AuditEvent(
        **event_values(
            action,
            now=now,
            resource_type=resource_type,
            resource_id=resource_id,
            patient_id=patient_id,
            outcome=outcome,
            actor=actor,
            actor_type=actor_type,
            actor_id=actor_id,
            site_id=site_id,
            details=details,
        )
    )
    db.session.add(event)
    return event


def insert_event(
    action: str,
    *,
    now: datetime,
    resource_type: str | None = None,
    actor: Principal | None,
    details: dict[str, Any] | None = None,
) -> None:
    """``record``'s event inserted at once by a Core statement, in the current transaction, for
    a hot read that writes nothing else: the ORM would build an ``AuditEvent`` and flush it at
    the commit (its unit of work: about 180 of a queue read's 10,300 Python calls). The same columns
    (``event_values``); the row commits or rolls back with the request as ``record``'s does."""
    db.session.execute(
        _INSERT,
        event_values(action, now=now, resource_type=resource_type, actor=actor, details=details),
    )


_INSERT = sa.insert(AuditEvent)


def event_values(
    action: str,
    *,
    now: datetime,
    resource_type: str | None = None,
    resource_id: uuid.UUID | str | None = None,
    patient_id: uuid.UUID | None = None,
    outcome: str = "success",
    actor: Principal | None,
    actor_type: str | None = None,
    actor_id: uuid.UUID | None = None,
    site_id: uuid.UUID | None = None,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The columns of the audit event ``record`` adds (with its ``id``), for a hot path that
    inserts it in a statement of its own making, in the same transaction (the answers from
    phones: ``questionnaires.services.record_response``)."""
    if actor is None and actor_type is None:
        raise TypeError("record() needs an actor, or actor_type for a system or anonymous act")
    in_request = has_request_context()
    return {
        "id": uuid.uuid4(),
        "occurred_at": now,
        "actor_type": actor_type or ("user" if actor and actor.is_staff else "patient"),
        "actor_id": actor.id if actor else actor_id,
        "actor_role": actor.role if actor else None,
        "site_id": site_id or (actor.site_id if actor else None),
        "action": action,
        "outcome": outcome,
        "resource_type": resource_type,
        "resource_id": str(resource_id) if resource_id is not None else None,
        "patient_id": patient_id,
        "request_id": request_id(),
        "client_addr": client_address() if in_request else None,
        "details": details or {},
    }
