"""The append-only audit log (GDPR article 9 accountability).

Rows are only ever inserted: the ORM refuses updates and deletes, and on PostgreSQL a trigger
installed by the migration refuses them for every client, including psql.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from backend.db import UUIDPrimaryKey
from backend.extensions import db


class AuditEvent(UUIDPrimaryKey, db.Model):  # type: ignore[name-defined,misc]
    """Who did what to which resource (and whose data), when, from where, in which request."""

    __tablename__ = "audit_events"
    __table_args__ = (
        sa.Index("ix_audit_events_patient_id_occurred_at", "patient_id", "occurred_at"),
        sa.Index("ix_audit_events_actor_id_occurred_at", "actor_id", "occurred_at"),
    )

    occurred_at: Mapped[datetime] = mapped_column(index=True)
    actor_type: Mapped[str] = mapped_column(sa.String(16))  # user | patient | system | anonymous
    actor_id: Mapped[uuid.UUID | None]
    actor_role: Mapped[str | None] = mapped_column(sa.String(16))
    site_id: Mapped[uuid.UUID | None]
    action: Mapped[str] = mapped_column(sa.String(64))
    outcome: Mapped[str] = mapped_column(sa.String(16), default="success")
    resource_type: Mapped[str | None] = mapped_column(sa.String(32))
    resource_id: Mapped[str | None] = mapped_column(sa.String(64))
    patient_id: Mapped[uuid.UUID | None]
    request_id: Mapped[str | None] = mapped_column(sa.String(64))
    client_addr: Mapped[str | None] = mapped_column(sa.String(64))
    # Identifiers and reasons only (e.g. {"reason": "bad_password"}); never health content.
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


@sa.event.listens_for(sa.orm.Session, "before_flush")
def _refuse_audit_changes(session: sa.orm.Session, _context: Any, _instances: Any) -> None:
    """The audit log is append-only: an update or delete of an event is a programming error."""
    for obj in list(session.dirty) + list(session.deleted):
        if isinstance(obj, AuditEvent) and (obj in session.deleted or session.is_modified(obj)):
            raise RuntimeError("audit events are append-only")
