"""Bulk Data ``$export`` (HL7 FHIR Bulk Data Access IG 2.0), Group level: kick-off writes a
``pending`` row, the scheduler builds the files, never the request.

1. Kick-off (``routes``): checks the group against the client's registration, ``_type``,
   ``_since``, ``_outputFormat``; writes the row; 202 with ``Content-Location``.
2. ``run_exports`` (a scheduler job): claims one due export (``backend.leases.claim_next``,
   shared with the research export) with a conditional UPDATE
   (pending, or running with an expired lease -> running with a new lease), committed at once:
   of two schedulers exactly one wins; one killed mid-export leaves a row another takes up
   when the lease has passed (its partial chunks are deleted first).
3. Each type is read by keyset pages of ``CHUNK`` rows (by id, in short transactions: no
   cursor is held across commits), mapped (``mapping``), and written as one chunk row of NDJSON;
   after each chunk the job commits, extends its lease, updates ``progress`` (the poll's
   ``X-Progress``) and stops if the client cancelled.
4. Done: one audit row per exported patient (as a staff read of that patient), the counts, and
   ``expires_at`` (``FHIR_EXPORT_TTL_HOURS``), after which ``expire_exports`` deletes the files.

Files are stored in the database, not a directory: the API host that serves the download and
the scheduler host that wrote it need no shared filesystem, backups and retention follow the
database's, and a file streams chunk by chunk (PostgreSQL compresses large text values itself).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import lazyload, selectinload

from backend import leases
from backend.alerts.models import Alert
from backend.audit.services import record
from backend.auth.models import Site, User
from backend.extensions import db
from backend.fhir import mapping
from backend.fhir.auth import purge_assertions
from backend.fhir.models import BulkExport, BulkFileChunk, FhirClient
from backend.fhir.search import actual_arms
from backend.patients.models import Consent, Patient, Procedure
from backend.questionnaires.models import Instrument, Response
from backend.research.models import Allocation, Study

log = logging.getLogger(__name__)
CHUNK = 1000
MAX_ATTEMPTS = 3
CARE_TYPES = (
    "Patient",
    "Procedure",
    "Questionnaire",
    "QuestionnaireResponse",
    "ClinicalImpression",
    "Task",
    "Consent",
    "ResearchStudy",
    "ResearchSubject",
)
# Consent is left out of the research group: its dates and methods are not the research's,
# and every patient in it has consented (that is why they are in it).
RESEARCH_TYPES = tuple(t for t in CARE_TYPES if t != "Consent")
RESEARCH_SUFFIX = "-research"


def group_id(site_code: str, access: str) -> str:
    return site_code + (RESEARCH_SUFFIX if access == "research" else "")


def types_for(access: str) -> tuple[str, ...]:
    return RESEARCH_TYPES if access == "research" else CARE_TYPES


# --- what a group holds --------------------------------------------------------------------------


@dataclass
class Member:
    """A patient of the group: for research, when their data stops (withdrawal) and the dates
    that turn instants into days since discharge."""

    patient_id: uuid.UUID
    zone: str
    discharged_on: date | None
    cut_from: date | None = None
    age: int | None = None

    def keeps(self, instant: datetime) -> bool:
        if self.cut_from is None:
            return True
        return instant.astimezone(_zone(self.zone)).date() < self.cut_from


def _zone(name: str) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


def members(job: BulkExport) -> dict[uuid.UUID, Member]:
    """Care: every patient of the site. Research: ``research.services.included_patients``
    (the one place that decides who may be included and from when data is cut)."""
    discharges: dict[uuid.UUID, tuple[date, date]] = {}
    for pid, discharged, performed in db.session.execute(
        sa.select(Procedure.patient_id, Procedure.discharged_on, Procedure.performed_on)
        .where(Procedure.site_id == job.site_id)
        .order_by(Procedure.discharged_on, Procedure.created_at)
    ):
        discharges[pid] = (discharged, performed)
    if job.access == "research":
        from backend.research.services import age_at, included_patients

        out: dict[uuid.UUID, Member] = {}
        for inc in included_patients(job.site_id):
            dates = discharges.get(inc.patient.id)
            out[inc.patient.id] = Member(
                inc.patient.id,
                inc.patient.timezone,
                dates[0] if dates else None,
                inc.cut_from,
                age_at(inc.patient.birth_date, dates[1]) if dates else None,
            )
        return out
    return {
        pid: Member(pid, zone, discharges.get(pid, (None, None))[0])
        for pid, zone in db.session.execute(
            sa.select(Patient.id, Patient.timezone).where(Patient.site_id == job.site_id)
        )
    }


def _pages(query: sa.Select[Any], id_col: Any) -> Iterator[list[Any]]:
    """Rows of ``query`` by keyset pages of CHUNK (each page its own short query)."""
    after: uuid.UUID | None = None
    while True:
        page_query = query.order_by(id_col).limit(CHUNK)
        if after is not None:
            page_query = page_query.where(id_col > after)
        rows = list(db.session.execute(page_query).scalars().unique())
        if not rows:
            return
        yield rows
        after = rows[-1].id
        if len(rows) < CHUNK:
            return


Lines = Iterator[list[tuple[dict[str, Any], uuid.UUID | None]]]


class Builder:
    """The resources of one export, type by type, in pages."""

    def __init__(self, job: BulkExport, key: str | None) -> None:
        self.job = job
        # Read once: every chunk commits, which expires the job's attributes.
        self.site_id = job.site_id
        self.members = members(job)
        codes = dict(db.session.execute(sa.select(Site.id, Site.code)).all())
        self.view = mapping.View(job.access, codes, key)
        self.research = job.access == "research"
        self.since = job.since
        self.definitions = {
            (i.key, i.version): i.definition
            for i in db.session.execute(db.select(Instrument)).scalars()
        }
        self.staff = (
            {}
            if self.research
            else {
                uid: (name or "nurse")
                for uid, name in db.session.execute(
                    sa.select(User.id, User.full_name).where(User.site_id == job.site_id)
                )
            }
        )

    def _since(self, column: Any) -> Any:
        return column > self.since if self.since is not None else sa.true()

    def resources(self, resource_type: str) -> Lines:
        build: Callable[[], Lines] = getattr(self, "_" + resource_type.lower())
        return build()

    def _member(self, patient_id: uuid.UUID) -> Member | None:
        return self.members.get(patient_id)

    def _patient(self) -> Lines:
        query = (
            db.select(Patient)
            .options(lazyload(Patient.procedures), lazyload(Patient.consents))
            .where(Patient.site_id == self.site_id, self._since(Patient.updated_at))
        )
        for rows in _pages(query, Patient.id):
            page = []
            for p in rows:
                m = self._member(p.id)
                if m is None:
                    continue
                resource = mapping.patient(p, self.view, age=m.age)
                if self.research and m.cut_from is not None:
                    # A status reached after the withdrawal is not the research's to know.
                    resource["extension"] = [
                        e for e in resource["extension"] if "follow-up-status" not in e["url"]
                    ]
                page.append((resource, p.id))
            yield page

    def _procedure(self) -> Lines:
        query = (
            db.select(Procedure)
            .options(lazyload(Procedure.schedule), lazyload(Procedure.protocol))
            .where(Procedure.site_id == self.site_id, self._since(Procedure.created_at))
        )
        for rows in _pages(query, Procedure.id):
            yield [
                (mapping.procedure(p, self.view), p.patient_id)
                for p in rows
                if self._member(p.patient_id) is not None
            ]

    def _questionnaire(self) -> Lines:
        query = db.select(Instrument).where(self._since(Instrument.created_at))
        for rows in _pages(query, Instrument.id):
            yield [(mapping.questionnaire(i), None) for i in rows]

    def _questionnaireresponse(self) -> Lines:
        query = (
            db.select(Response)
            .join(Patient, Patient.id == Response.patient_id)
            .where(Patient.site_id == self.site_id, self._since(Response.received_at))
        )
        for rows in _pages(query, Response.id):
            page = []
            for r in rows:
                m = self._member(r.patient_id)
                if m is None or not m.keeps(r.answered_at):
                    continue
                page.append(
                    (
                        mapping.questionnaire_response(
                            r,
                            self.view,
                            self.definitions.get((r.instrument_key, r.instrument_version)),
                            discharged_on=m.discharged_on or r.answered_at.date(),
                            zone=m.zone,
                            entered_by_name=self.staff.get(r.entered_by_id)
                            if r.entered_by_id
                            else None,
                        ),
                        r.patient_id,
                    )
                )
            yield page

    def _alerts(self, present: Callable[[Alert, Member], dict[str, Any]]) -> Lines:
        query = (
            db.select(Alert)
            .options(selectinload(Alert.notes), lazyload(Alert.history))
            .where(Alert.site_id == self.site_id, self._since(Alert.updated_at))
        )
        for rows in _pages(query, Alert.id):
            page = []
            for a in rows:
                m = self._member(a.patient_id)
                if m is None or not m.keeps(a.created_at):
                    continue
                page.append((present(a, m), a.patient_id))
            yield page

    def _clinicalimpression(self) -> Lines:
        return self._alerts(
            lambda a, m: mapping.clinical_impression(
                a,
                self.view,
                discharged_on=m.discharged_on or a.created_at.date(),
                zone=m.zone,
            )
        )

    def _task(self) -> Lines:
        return self._alerts(
            lambda a, m: mapping.task(
                a,
                self.view,
                staff_names=self.staff,
                discharged_on=m.discharged_on or a.created_at.date(),
                zone=m.zone,
            )
        )

    def _consent(self) -> Lines:
        decisions: dict[uuid.UUID, list[Consent]] = {}
        for c in db.session.execute(
            db.select(Consent)
            .join(Patient, Patient.id == Consent.patient_id)
            .where(Patient.site_id == self.site_id)
            .order_by(Consent.patient_id, Consent.decided_on, Consent.recorded_at, Consent.id)
        ).scalars():
            decisions.setdefault(c.patient_id, []).append(c)
        page: list[tuple[dict[str, Any], uuid.UUID | None]] = []
        for pid, rows in decisions.items():
            for resource in mapping.consents(pid, rows, self.view):
                updated = resource["meta"]["lastUpdated"]
                if self.since is None or _parse(updated) > self.since:
                    page.append((resource, pid))
            if len(page) >= CHUNK:
                yield page
                page = []
        yield page

    def _researchstudy(self) -> Lines:
        query = db.select(Study).where(Study.site_id == self.site_id, self._since(Study.created_at))
        for rows in _pages(query, Study.id):
            yield [(mapping.research_study(s, self.view), None) for s in rows]

    def _researchsubject(self) -> Lines:
        query = (
            db.select(Allocation)
            .join(Study, Study.id == Allocation.study_id)
            .where(
                Study.site_id == self.site_id,
                Allocation.patient_id.is_not(None),
                self._since(Allocation.allocated_at),
            )
        )
        for rows in _pages(query, Allocation.id):
            kept = [a for a in rows if self._member(a.patient_id) is not None]
            arms = actual_arms({a.patient_id for a in kept})
            yield [
                (
                    mapping.research_subject(a, self.view, actual_arm=arms.get(a.patient_id)),
                    a.patient_id,
                )
                for a in kept
            ]


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# --- the scheduler job ---------------------------------------------------------------------------


class Cancelled(Exception):
    pass


def _still_ours(export_id: uuid.UUID, now: datetime, progress: str) -> None:
    """Commit the chunk written, extend the lease, show progress; stop if cancelled."""
    updated = db.session.execute(
        sa.update(BulkExport)
        .where(BulkExport.id == export_id, BulkExport.status == "running")
        .values(lease_until=now + leases.lease(), progress=progress[:100])
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    if updated.rowcount != 1:  # type: ignore[attr-defined]
        raise Cancelled()


def build(job: BulkExport, now: datetime, key: str | None) -> tuple[dict[str, int], set[Any]]:
    """Write the chunks of every type of ``job``; the counts and the patients exported."""
    builder = Builder(job, key)
    counts: dict[str, int] = {}
    patients: set[uuid.UUID] = set()
    types = list(job.types)
    export_id = job.id
    for index, resource_type in enumerate(types, start=1):
        seq = 0
        total = 0
        for page in builder.resources(resource_type):
            if not page:
                continue
            data = "".join(
                json.dumps(resource, ensure_ascii=False, separators=(",", ":")) + "\n"
                for resource, _ in page
            )
            patients.update(pid for _, pid in page if pid is not None)
            db.session.add(
                BulkFileChunk(
                    export_id=export_id,
                    resource_type=resource_type,
                    seq=seq,
                    count=len(page),
                    data=data,
                )
            )
            seq += 1
            total += len(page)
            _still_ours(export_id, now, f"{resource_type}: {total} ({index}/{len(types)} types)")
        if total:
            counts[resource_type] = total
        _still_ours(export_id, now, f"{resource_type} done ({index}/{len(types)} types)")
    return counts, patients


def _delete_chunks(export_id: uuid.UUID) -> None:
    db.session.execute(sa.delete(BulkFileChunk).where(BulkFileChunk.export_id == export_id))


def run_exports(now: datetime) -> int:
    """Build at most one due export; 1 when one was handled (done, failed or cancelled)."""
    job = leases.claim_next(BulkExport, now)
    if job is None:
        return 0
    export_id = job.id
    _delete_chunks(export_id)  # a previous attempt's partial files
    db.session.commit()
    try:
        key = current_app.config.get("RESEARCH_PSEUDONYM_KEY") if job.access == "research" else None
        if job.access == "research" and not key:
            raise RuntimeError("RESEARCH_PSEUDONYM_KEY is not set")
        counts, patients = build(job, now, key)
    except Cancelled:
        db.session.rollback()
        _delete_chunks(export_id)
        return 1
    except Exception as exc:
        db.session.rollback()
        log.exception("FHIR bulk export failed", extra={"export_id": str(export_id)})
        _delete_chunks(export_id)
        job = db.session.get(BulkExport, export_id, populate_existing=True)
        assert job is not None
        if job.status != "running":
            return 1
        if job.attempts >= MAX_ATTEMPTS or isinstance(exc, RuntimeError):
            job.status, job.finished_at = "failed", now
            job.error = str(exc)[:500] if isinstance(exc, RuntimeError) else type(exc).__name__
        else:
            job.status, job.lease_until = "pending", None
        return 1
    job = db.session.get(BulkExport, export_id, populate_existing=True)
    assert job is not None
    if job.status != "running":  # cancelled between the last chunk and here
        _delete_chunks(export_id)
        return 1
    ttl = timedelta(hours=int(current_app.config["FHIR_EXPORT_TTL_HOURS"]))
    job.status, job.finished_at, job.lease_until = "done", now, None
    job.transaction_time = job.started_at or now
    job.expires_at = now + ttl
    job.counts = counts
    job.progress = "done"
    client = db.session.get(FhirClient, job.client_id)
    audit_details = {
        "via": "fhir-bulk",
        "export_id": str(job.id),
        "client_id": client.client_id if client else None,
        "access": job.access,
    }
    for pid in sorted(patients):  # every system read audited like a staff read of the patient
        record(
            "patient.read",
            now=now,
            actor=None,
            actor_type="system",
            actor_id=job.client_id,
            site_id=job.site_id,
            resource_type="patient",
            resource_id=pid,
            patient_id=pid,
            details=audit_details,
        )
    record(
        "fhir.export.completed",
        now=now,
        actor=None,
        actor_type="system",
        actor_id=job.client_id,
        site_id=job.site_id,
        resource_type="fhir_bulk_export",
        resource_id=job.id,
        details={**audit_details, "counts": counts, "patients": len(patients)},
    )
    return 1


def expire_exports(now: datetime) -> int:
    """Files past their expiry are deleted (the export answers 404 from then on); cancelled
    exports lose theirs; used assertion ids past their expiry are forgotten."""
    handled = 0
    for job in db.session.execute(
        db.select(BulkExport)
        .where(
            sa.or_(
                sa.and_(BulkExport.status == "done", BulkExport.expires_at <= now),
                BulkExport.status == "cancelled",
            )
        )
        .limit(int(current_app.config["SCHEDULER_BATCH_SIZE"]))
        .with_for_update(skip_locked=True)
    ).scalars():
        _delete_chunks(job.id)
        job.status = "expired"
        handled += 1
    purge_assertions(now)
    return handled


def scheduler_jobs(_app: object) -> tuple[Callable[[datetime], int], ...]:
    """``scheduler_jobs`` receiver: the scheduler builds the exports and expires their files."""
    return (run_exports, expire_exports)
