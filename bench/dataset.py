"""A hospital network's database, built in a minute: templates through the real services, then
cloned by SQL.

1. A few template patients go through the real services (registration, a year of answers on
   their schedule and unscheduled check-ins, the alert rules, an enrolled phone), so every row
   is one the application itself would write.
2. ``clone`` copies each template patient's rows ``n`` times with ``INSERT ... SELECT ... FROM
   generate_series``: ids and the foreign keys between cloned rows are mapped by
   ``md5(id || ':' || g)::uuid`` (deterministic, so the clones of a response still point at the
   clones of their assignment), sites are spread round-robin, MRNs made unique. The column lists
   come from the application's own metadata, so a new column is cloned without touching this.

Nothing here is asserted: the benchmarks read the result.
"""

from __future__ import annotations

import random
import signal
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from backend.clock import FrozenClock
from backend.extensions import db

# Rows that belong to one patient, in insertion order (parents first). Tables left out are
# written per event and are not part of the read paths measured (audit, outbox, tokens).
CLONED_TABLES = (
    "patients",
    "procedures",
    "assignments",
    "responses",
    # The rules' kept state of each procedure, as a running system has it: without it the
    # first answer of every clone evaluated the whole history (and caught up on its alerts).
    "rule_states",
    "alerts",
    "alert_events",
    "alert_notes",
    "auth_sessions",
    "devices",
)
# The outbox and reminder ladder of a patient, for a running system's history (bench_reminders).
OUTBOX_TABLES = ("reminders", "notifications", "deliveries", "delivery_attempts", "answer_links")
# Foreign keys into the cloned tables are remapped with the row ids; site ids are spread.
PATIENT_COLUMNS_PER_TABLE = {"patients": "id"}
# Unique secrets and keys: a nullable one is left out of the clones, a required one gets the
# hash of itself and the clone's number (unique, and short enough for any of them).
SKIPPED_COLUMNS = {"code_hash", "dedupe_key", "token_hash"}


@dataclass
class Template:
    patient_id: uuid.UUID
    open_alerts: int


def answers(rng: random.Random, *, worse: bool = False, call: bool = False) -> dict[str, Any]:
    """A stable patient's check-in (or, ``worse``, a bad day)."""
    return {
        "pain_rest": rng.randint(1, 2) + (4 if worse else 0),
        "pain_walking": rng.randint(2, 3) + (4 if worse else 0),
        "analgesics": "non_opioid",
        "walking_aid": "cane",
        "fell": False,
        "symptoms": [],
        "change": "much_improved",
        "call_request": call,
    }


def followup(rng: random.Random, **kw: Any) -> dict[str, Any]:
    return {**answers(rng, **kw), "pms_indoors": 3, "pms_outdoors": 2, "pms_shopping": 1}


def build_sites(n_sites: int, now: datetime) -> list[Any]:
    from backend.auth.services import create_user, get_or_create_site

    sites = []
    for i in range(n_sites):
        site = get_or_create_site(f"B{i:03d}", now=now, timezone="Europe/Paris")
        create_user(f"nurse{i}@bench.example", "a-long-bench-password", "nurse", site, now=now)
        sites.append(site)
    db.session.commit()
    return sites


def build_template(
    site: Any, clock: FrozenClock, *, extra_checkins: int, call_request: bool, seed: int
) -> Template:
    """One patient discharged a year before ``clock.now()``, who answered every scheduled
    questionnaire and ``extra_checkins`` unscheduled ones, enrolled with one phone; with
    ``call_request`` the last answer asks for a call (one open high alert)."""
    from backend.auth.models import User
    from backend.auth.services import staff_principal
    from backend.patients import services as patients
    from backend.questionnaires.models import Assignment
    from backend.schedule.worker import run_pass

    rng = random.Random(seed)
    end = clock.now()
    start = end - timedelta(days=366)
    clock.set(start)
    nurse = db.session.execute(db.select(User).filter_by(site_id=site.id)).scalars().first()
    principal = staff_principal(nurse, uuid.uuid4())
    discharged: date = start.date()
    patient = patients.create_patient(
        principal,
        {
            "mrn": f"T{seed}",
            "given_name": "Bench",
            "family_name": f"Template {seed}",
            "birth_date": date(1940, 1, 1),
            "locale": "fr",
            "timezone": "Europe/Paris",
            "contact_channels": ["push"],
            "consent_given_on": start.date(),  # no enrollment code without care consent
            "consent_method": "paper",
        },
        now=start,
    )
    procedure = patients.create_procedure(
        principal,
        patient,
        {
            "kind": "screw_fixation",
            "location": "sacroiliac",
            "etiology": "osteoporotic",
            "performed_on": discharged - timedelta(days=2),
            "discharged_on": discharged,
            "baseline": {"pain_rest": 6, "pain_walking": 8, "mobility_score": 6},
        },
        now=start,
    )
    code, _ = patients.create_enrollment_code(principal, patient, now=start)
    patients.claim_enrollment(code.replace("-", ""), {"platform": "android"}, now=start)
    db.session.commit()
    phone = patients.patient_principal(patient, uuid.uuid4())

    scheduled = sorted(procedure.schedule, key=lambda a: a.opens_at)
    checkin_days = sorted(rng.sample(range(2, 360), extra_checkins))
    events: list[tuple[datetime, Assignment | None]] = [
        (a.opens_at + timedelta(hours=2), a) for a in scheduled if a.opens_at < end
    ]
    events += [(start + timedelta(days=d, hours=5), None) for d in checkin_days]
    events.sort(key=lambda e: e[0])
    for i, (when, assignment) in enumerate(events):
        clock.set(when - timedelta(hours=1))
        run_pass()  # opens the questionnaire (and sends its reminder) as the scheduler would
        db.session.commit()
        last = i == len(events) - 1
        kind = assignment.instrument_key if assignment else "checkin"
        body_answers = (followup if kind == "followup" else answers)(
            rng, call=call_request and last
        )
        answer(
            phone,
            patient.id,
            clock,
            when,
            db.session.get(Assignment, assignment.id) if assignment else None,
            body_answers,
        )
    clock.set(end)
    from backend.alerts.models import Alert

    open_alerts = db.session.execute(
        sa.select(sa.func.count()).where(Alert.patient_id == patient.id, Alert.status != "resolved")
    ).scalar_one()
    return Template(patient.id, int(open_alerts))


def answer(
    phone: Any,
    patient_id: uuid.UUID,
    clock: FrozenClock,
    when: datetime,
    assignment: Any,
    body_answers: dict[str, Any],
) -> None:
    """The patient's phone answers ``assignment`` (or an unscheduled check-in) at ``when``,
    through the real service; commits."""
    from backend.patients.models import Patient
    from backend.questionnaires import services as questionnaires

    clock.set(when)
    body = {
        "assignment_id": assignment.id if assignment else None,
        "instrument": assignment.instrument_key if assignment else "checkin",
        "version": 1,
        "answered_at": when,
        "source": "patient",
        "answers": body_answers,
    }
    questionnaires.record_response(
        phone,
        db.session.get(Patient, patient_id),
        body,
        now=when,
        idempotency_key=str(uuid.uuid4()),
        fingerprint=questionnaires.request_fingerprint(body),
    )
    db.session.commit()


def clone(
    template: Template,
    copies: int,
    site_ids: list[uuid.UUID],
    *,
    alert_every: int = 1,
    tables: tuple[str, ...] = CLONED_TABLES,
    unique_contacts: bool = False,
) -> None:
    """``copies`` clones of the template patient's rows (see the module docstring); the alerts
    only in every ``alert_every``-th clone, so open alerts are as rare as on a real ward; with
    ``unique_contacts`` each clone gets its own e-mail address (to count who was reached)."""
    metadata = db.metadata
    cloned = set(tables)
    conn = db.session.connection()
    conn.exec_driver_sql("CREATE TEMP TABLE IF NOT EXISTS bench_sites (n int, id uuid)")
    conn.exec_driver_sql("TRUNCATE bench_sites")
    conn.execute(
        sa.text("INSERT INTO bench_sites VALUES (:n, :id)"),
        [{"n": i, "id": sid} for i, sid in enumerate(site_ids)],
    )
    # The clones' foreign keys hold by construction: skip the per-row checks (triggers), which
    # would otherwise take most of the time (needs a superuser, as the local bench has).
    conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
    n_sites = len(site_ids)
    pid = f"'{template.patient_id}'::uuid"
    for name in tables:
        table = metadata.tables[name]
        cols, exprs = [], []
        for col in table.columns:
            if col.name in SKIPPED_COLUMNS and col.nullable:
                continue
            fk_tables = {fk.column.table.name for fk in col.foreign_keys}
            ref = f't."{col.name}"'
            if col.name in SKIPPED_COLUMNS:
                expr = f"md5({ref} || ':' || g)"
            elif col.primary_key or fk_tables & cloned:
                expr = (
                    f"CASE WHEN {ref} IS NULL THEN NULL ELSE md5({ref}::text || ':' || g)::uuid END"
                )
            elif col.name == "site_id":
                expr = f"(SELECT id FROM bench_sites WHERE n = mod(g, {n_sites}))"
            elif name == "patients" and col.name == "mrn":
                expr = f"{ref} || '-' || g"
            elif name == "patients" and col.name == "email" and unique_contacts:
                expr = "'p' || g || '@bench.example'"
            else:
                expr = ref
            cols.append(f'"{col.name}"')
            exprs.append(expr)
        owner = _owner_filter(name, pid)
        if name in {"alerts", "alert_events", "alert_notes"}:
            owner += f" AND mod(g, {alert_every}) = 0"
        rebuild = _drop_secondary_indexes(conn, name)
        conn.exec_driver_sql(
            f'INSERT INTO "{name}" ({", ".join(cols)}) '
            f'SELECT {", ".join(exprs)} FROM "{name}" t '
            f"CROSS JOIN generate_series(1, {copies}) g WHERE {owner}"
        )
        for statement in rebuild:
            conn.exec_driver_sql(statement)
    db.session.commit()


def _drop_secondary_indexes(conn: Any, table: str) -> list[str]:
    """Drop ``table``'s indexes and unique constraints other than its primary key and those a
    foreign key stands on; the statements that build them again, to run after the bulk load
    (one sorted build instead of an insertion per row at a random place in each index)."""
    rebuild: list[str] = []
    constraints = conn.execute(
        sa.text(
            "SELECT c.conname, pg_get_constraintdef(c.oid) FROM pg_constraint c "
            "WHERE c.conrelid = to_regclass(:t) AND c.contype = 'u' AND NOT EXISTS "
            "(SELECT 1 FROM pg_constraint f WHERE f.contype = 'f' AND f.conindid = c.conindid)"
        ),
        {"t": f'"{table}"'},
    ).all()
    for name, definition in constraints:
        conn.exec_driver_sql(f'ALTER TABLE "{table}" DROP CONSTRAINT "{name}"')
        rebuild.append(f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}')
    indexes = conn.execute(
        sa.text(
            "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = to_regclass(:t) "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)"
        ),
        {"t": f'"{table}"'},
    ).all()
    for name, definition in indexes:
        conn.exec_driver_sql(f'DROP INDEX "{name}"')
        rebuild.append(definition)
    return rebuild


def _owner_filter(table: str, pid: str) -> str:
    """The template patient's rows of ``table``."""
    if table == "patients":
        return f"t.id = {pid}"
    if table == "rule_states":
        return f"t.procedure_id IN (SELECT id FROM procedures WHERE patient_id = {pid})"
    if table in {"alert_events", "alert_notes"}:
        return f"t.alert_id IN (SELECT id FROM alerts WHERE patient_id = {pid})"
    notifications = f"SELECT id FROM notifications WHERE patient_id = {pid}"
    if table == "deliveries":
        return f"t.notification_id IN ({notifications})"
    if table == "delivery_attempts":
        return (
            f"t.delivery_id IN (SELECT id FROM deliveries WHERE notification_id IN "
            f"({notifications}))"
        )
    return f"t.patient_id = {pid}"


def cloned_patient_id(template_patient_id: uuid.UUID, g: int) -> uuid.UUID:
    """The id ``clone`` gave the template patient's ``g``-th copy (as PostgreSQL computes it)."""
    import hashlib

    return uuid.UUID(hashlib.md5(f"{template_patient_id}:{g}".encode()).hexdigest())  # noqa: S324


def cpu_probe() -> float:
    """CPU seconds of a fixed pure-Python workload (5 million additions, best of three): how fast
    the machine runs Python at the time of a run, beside the run's figures (0.205 s on 2026-12-07
    at 03:00, when the bare baseline answered 706-762 req/s, half its morning rate). Two runs
    compare only at similar probes."""
    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        total = 0
        for i in range(5_000_000):
            total += i
        best = min(best, time.process_time() - start)
    return round(best, 3)


def real_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def new_schema(url: str) -> tuple[str, Callable[[], None]]:
    """A PostgreSQL schema of its own for one benchmark run: the database URL that uses it, and
    the function that drops it (call it in a ``finally``; SIGTERM becomes an exit, so it runs
    then too)."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    scoped = sa.make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})

    def drop() -> None:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()

    return scoped.render_as_string(hide_password=False), drop
