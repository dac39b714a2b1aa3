"""System clients (SMART Backend Services), their used assertion ids, Bulk exports and files."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from backend.db import UUIDPrimaryKey
from backend.extensions import db

ACCESS_KINDS = ("care", "research")  # care: identified, one site; research: pseudonymised
BULK_STATUSES = ("pending", "running", "done", "failed", "cancelled", "expired")


class FhirClient(UUIDPrimaryKey, db.Model):  # type: ignore[name-defined,misc]
    """A hospital system registered by an administrator (``flask fhir register-client``): its
    public keys (a JWKS) check its signed assertions; ``access`` and ``site_id`` bound what
    its tokens may read."""

    __tablename__ = "fhir_clients"
    __table_args__ = (sa.CheckConstraint("access IN ('care', 'research')", name="access_known"),)

    client_id: Mapped[str] = mapped_column(sa.String(64), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    access: Mapped[str] = mapped_column(sa.String(16))
    site_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("sites.id"), index=True)
    jwks: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    disabled_at: Mapped[datetime | None]


class FhirAssertion(UUIDPrimaryKey, db.Model):  # type: ignore[name-defined,misc]
    """A client assertion's ``jti``, kept until the assertion expires: a replay is refused by
    the unique constraint whatever the timing (two token requests racing with one assertion)."""

    __tablename__ = "fhir_assertions"
    __table_args__ = (sa.UniqueConstraint("client_id", "jti"),)

    client_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("fhir_clients.id"))
    jti: Mapped[str] = mapped_column(sa.String(255))
    expires_at: Mapped[datetime] = mapped_column(index=True)


class BulkExport(UUIDPrimaryKey, db.Model):  # type: ignore[name-defined,misc]
    """A Bulk Data ``$export`` of a group, asked for by a system client, built by the scheduler.

    ``pending`` -> ``running`` (claimed with a conditional update and a lease) -> ``done``
    (files in ``fhir_bulk_files`` until ``expires_at``, then ``expired``) or ``failed``;
    ``cancelled`` by the client's DELETE at any time (the worker stops at its next chunk).
    """

    __tablename__ = "fhir_bulk_exports"
    __table_args__ = (
        sa.CheckConstraint(
            "status IN ('pending', 'running', 'done', 'failed', 'cancelled', 'expired')",
            name="status_known",
        ),
        sa.Index("ix_fhir_bulk_exports_status_created_at", "status", "created_at"),
    )

    client_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("fhir_clients.id"), index=True)
    site_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("sites.id"))
    access: Mapped[str] = mapped_column(sa.String(16))
    group_id: Mapped[str] = mapped_column(sa.String(64))
    types: Mapped[list[Any]]
    since: Mapped[datetime | None]
    request_url: Mapped[str] = mapped_column(sa.String(2000))
    status: Mapped[str] = mapped_column(sa.String(16), default="pending")
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    lease_until: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)
    transaction_time: Mapped[datetime | None]
    progress: Mapped[str | None] = mapped_column(sa.String(100))
    finished_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None] = mapped_column(index=True)
    error: Mapped[str | None] = mapped_column(sa.String(500))
    # {type: resource count} of the finished files, in output order.
    counts: Mapped[dict[str, Any] | None]


class BulkFileChunk(UUIDPrimaryKey, db.Model):  # type: ignore[name-defined,misc]
    """A slice of one NDJSON file (a few hundred resources): a file is its chunks in ``seq``
    order, streamed one by one, so neither the worker nor a download holds a file in memory,
    and every host reaching the database serves every file (no shared directory)."""

    __tablename__ = "fhir_bulk_files"
    __table_args__ = (sa.UniqueConstraint("export_id", "resource_type", "seq"),)

    export_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("fhir_bulk_exports.id", ondelete="CASCADE")
    )
    resource_type: Mapped[str] = mapped_column(sa.String(40))
    seq: Mapped[int]
    count: Mapped[int]
    data: Mapped[str] = mapped_column(sa.Text)
