"""Research: export jobs, randomised studies and their concealed allocation lists."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from backend.db import UUIDPrimaryKey
from backend.extensions import db

EXPORT_STATUSES = ("pending", "running", "done", "failed")


class ResearchExport(UUIDPrimaryKey, db.Model):  # type: ignore[name-defined,misc]
    """A pseudonymised export, asked for by a request and built by the scheduler.

    ``pending`` -> ``running`` (claimed with a lease by one scheduler; an expired lease is taken
    up again) -> ``done`` (files in ``directory``) or ``failed`` (``error``, no file kept).
    """

    __tablename__ = "research_exports"
    __table_args__ = (
        sa.CheckConstraint(
            "status IN ('pending', 'running', 'done', 'failed')", name="status_known"
        ),
        sa.Index("ix_research_exports_status_created_at", "status", "created_at"),
    )

    site_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("sites.id"), index=True)
    requested_by_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))
    requested_role: Mapped[str] = mapped_column(sa.String(16))
    status: Mapped[str] = mapped_column(sa.String(16), default="pending")
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    lease_until: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)
    finished_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(sa.String(500))
    directory: Mapped[str | None] = mapped_column(sa.String(500))
    manifest: Mapped[dict[str, Any] | None]


class Study(UUIDPrimaryKey, db.Model):  # type: ignore[name-defined,misc]
    """A randomised study: arms, stratification factors and block sizes (research.md).

    The allocation lists are generated once, at creation, from a secret seed that is not kept
    (only its SHA-256, so whoever holds the seed can prove the lists came from it).
    """

    __tablename__ = "research_studies"
    __table_args__ = (sa.UniqueConstraint("site_id", "key"),)

    site_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("sites.id"), index=True)
    key: Mapped[str] = mapped_column(sa.String(64))
    title: Mapped[str] = mapped_column(sa.String(200))
    arms: Mapped[list[Any]]
    # {"etiology": ["osteoporotic", "neoplastic"], "location": ["pelvic_ring", "other"]}
    strata: Mapped[dict[str, Any]]
    block_sizes: Mapped[list[Any]]  # total block sizes, multiples of the number of arms
    seed_sha256: Mapped[str] = mapped_column(sa.String(64))
    list_length: Mapped[int]  # allocations generated per stratum
    created_at: Mapped[datetime]
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))


class Allocation(UUIDPrimaryKey, db.Model):  # type: ignore[name-defined,misc]
    """One slot of a stratum's allocation list. ``patient_id`` is set once, when a physician
    randomises; no endpoint or page reads a slot that has no patient yet (concealment)."""

    __tablename__ = "research_allocations"
    __table_args__ = (
        sa.UniqueConstraint("study_id", "stratum", "position"),
        # Randomise once: a patient holds at most one slot of a study, whatever the timing.
        sa.UniqueConstraint("study_id", "patient_id"),
    )

    study_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("research_studies.id"))
    stratum: Mapped[str] = mapped_column(sa.String(200))
    position: Mapped[int]
    block: Mapped[int]
    block_size: Mapped[int]
    arm: Mapped[str] = mapped_column(sa.String(64))
    patient_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("patients.id"), index=True)
    allocated_at: Mapped[datetime | None]
    allocated_by_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))
