"""The long scheduler jobs (the research export, the FHIR Bulk Data export) claimed one at a time
with a lease, so that a process that stops mid-job leaves it to another.

Not in ``backend.batches``: that one is a pure module (the standard library only,
``tests/test_dependencies.py``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, TypeVar

import sqlalchemy as sa
from flask import current_app

from backend.extensions import db

Job = TypeVar("Job")


def lease() -> timedelta:
    """How long a claimed job stays ours without news (``SCHEDULER_LEASE_SECONDS``)."""
    return timedelta(seconds=int(current_app.config["SCHEDULER_LEASE_SECONDS"]))


def claim_next(model: type[Job], now: datetime) -> Job | None:
    """Claim one due job of ``model`` for this process (committed), or None.

    Due: ``pending``, or ``running`` with its lease past (the process that had it stopped). Each
    of the oldest few is claimed by a conditional ``UPDATE … WHERE <still due>``: of two processes
    after the same job, one UPDATE matches and the other tries the next one. The claim is
    committed before the long work starts. ``model`` has ``id``, ``status``, ``created_at``,
    ``started_at``, ``lease_until`` and ``attempts``.
    """
    job: Any = model
    due = sa.or_(
        job.status == "pending",
        sa.and_(job.status == "running", job.lease_until < now),
    )
    candidates = (
        db.session.execute(sa.select(job.id).where(due).order_by(job.created_at).limit(5))
        .scalars()
        .all()
    )
    for job_id in candidates:
        claimed = db.session.execute(
            sa.update(job)
            .where(job.id == job_id, due)
            .values(
                status="running",
                started_at=now,
                lease_until=now + lease(),
                attempts=job.attempts + 1,
            )
            .execution_options(synchronize_session=False)
        )
        db.session.commit()  # the claim is ours before the long work starts
        if claimed.rowcount == 1:  # type: ignore[attr-defined]
            return db.session.get(model, job_id, populate_existing=True)
    return None
