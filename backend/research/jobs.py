"""Research exports as scheduler work: a request writes a ``pending`` row, a scheduler claims
it and builds the files, never the request (an export may take minutes at scale).

The claim (``backend.leases.claim_next``, shared with the FHIR Bulk Data export) is a
conditional UPDATE (pending, or running with an expired lease -> running with a new lease),
committed at once: of two schedulers exactly one wins, and one killed mid-export
leaves a row another takes up when the lease has passed. The export itself runs outside any
long transaction; its result is a second short one. A failure is recorded on the row (its
partial files removed) and the job moves on.
"""

from __future__ import annotations

import logging
import shutil
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from flask import current_app

from backend import leases
from backend.audit.services import record
from backend.extensions import db
from backend.research import export
from backend.research.models import ResearchExport

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 3


def export_dir(export_id: uuid.UUID) -> Path:
    return Path(current_app.config["RESEARCH_EXPORT_DIR"]) / str(export_id)


def run_exports(now: datetime) -> int:
    """Build at most one due export; 1 when one was handled (done or failed)."""
    job = leases.claim_next(ResearchExport, now)
    if job is None:
        return 0
    out = export_dir(job.id)
    try:
        key = export.require_key(current_app.config)
        if out.exists():
            shutil.rmtree(out)  # a previous attempt's partial files
        manifest = export.write_files(
            out, job.site_id, key, now=now, requested_by_role=job.requested_role
        )
    except Exception as exc:
        db.session.rollback()
        shutil.rmtree(out, ignore_errors=True)
        job = db.session.get(ResearchExport, job.id, populate_existing=True)
        assert job is not None
        log.exception("research export failed", extra={"export_id": str(job.id)})
        if job.attempts >= MAX_ATTEMPTS or isinstance(exc, export.ExportKeyMissing):
            job.status, job.finished_at = "failed", now
            job.error = getattr(exc, "detail", None) or type(exc).__name__
        else:
            job.status, job.lease_until = "pending", None
        return 1
    job.status, job.finished_at, job.directory, job.manifest = "done", now, str(out), manifest
    job.lease_until = None
    record(
        "research.export.completed",
        now=now,
        actor=None,
        actor_type="system",
        site_id=job.site_id,
        resource_type="research_export",
        resource_id=job.id,
        details={"row_counts": manifest["row_counts"], "key_id": manifest["key_id"]},
    )
    return 1


def scheduler_jobs(_app: object) -> tuple[Callable[[datetime], int], ...]:
    """``scheduler_jobs`` receiver: the scheduler builds the exports requested."""
    return (run_exports,)
