"""The pseudonymised export (research.md): CSV and Parquet tables, codebook, manifest.

1. The cohort comes from ``services.load_cohort`` (who may be included, data cut at a
   withdrawal: ``services.included_patients``, the one place).
2. Each patient becomes a pseudonym: HMAC-SHA256 of the patient id under
   ``RESEARCH_PSEUDONYM_KEY``, 16 hex characters; the key id in the manifest is the first 8 hex
   characters of the key's SHA-256, so two exports can be told to share a key without it.
3. Only allow-listed fields are written: days relative to discharge (never dates), age in
   years, procedure fields, answers of the instrument's closed items (free-text items and any
   ``comment`` are dropped: a comment is where identities leak), alert kinds and outcome codes.
4. The files are written to a fresh directory, hashed (SHA-256) into ``manifest.json``.

pyarrow is imported inside ``write_files`` only.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from backend.auth.models import Site
from backend.errors import Problem
from backend.extensions import db
from backend.patients.models import PROCEDURE_KINDS
from backend.questionnaires.models import Instrument
from backend.research import services, stats

FORMAT_VERSION = 1
# Answer items never exported whatever the instrument says: free text.
FREE_TEXT_ITEMS = {"comment", "comments", "note", "notes", "free_text"}


class ExportKeyMissing(Problem):
    status, title, slug = 409, "Export not configured", "research-key-missing"


def require_key(config: Any) -> str:
    key = config.get("RESEARCH_PSEUDONYM_KEY")
    if not key:
        raise ExportKeyMissing(
            "RESEARCH_PSEUDONYM_KEY is not set: no research export without the pseudonym key "
            "(configured apart from every other secret)."
        )
    return str(key)


def key_id(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:8]


def pseudonym(key: str, patient_id: uuid.UUID) -> str:
    """HMAC-SHA256 of the patient id, 16 hex characters (research.md)."""
    return hmac.new(key.encode(), str(patient_id).encode(), hashlib.sha256).hexdigest()[:16]


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # integer, number, string, boolean
    unit: str = ""
    allowed: str = ""
    description: str = ""


PATIENT_COLUMNS = (
    Column("pseudonym", "string", description="HMAC-SHA256 of the patient id (16 hex)"),
    Column("site_code", "string"),
    Column("age", "integer", "years", description="Age at the procedure"),
    Column("sex", "string", allowed="female|male|other|unknown"),
    Column("kind", "string", allowed="|".join(PROCEDURE_KINDS)),
    Column("location", "string"),
    Column("side", "string"),
    Column("etiology", "string"),
    Column("bone_quality", "string"),
    Column("anaesthesia", "string"),
    Column("screw_count", "integer"),
    Column("cement_volume_ml", "number", "ml"),
    Column("procedure_day", "integer", "days", description="Procedure day; day 0 = discharge"),
    Column("allocated_arm", "string", description="Randomised arm (intention to treat)"),
    Column("arm", "string", description="Allocated arm, else the study arm recorded"),
    Column("baseline_pain_walking", "integer", "0-10"),
    Column("baseline_pain_rest", "integer", "0-10"),
    Column("baseline_mobility_score", "integer", "0-9"),
    Column("baseline_analgesic_step", "integer", "WHO step 0-3"),
    Column("baseline_aid_level", "integer", "0-5"),
    Column("status", "string", allowed="active|paused|readmitted|deceased|withdrawn"),
    Column("last_day", "integer", "days", description="Last follow-up (last kept response)"),
)
RESPONSE_COLUMNS = (
    Column("pseudonym", "string"),
    Column("day", "integer", "days", description="Days since discharge"),
    Column("instrument", "string", allowed="checkin|followup"),
    Column("version", "integer"),
    Column("item", "string", description="Item id of the instrument, or a derived score"),
    Column("value", "string", description="The answer (lists joined with |)"),
    Column("source", "string", allowed="patient|caregiver|nurse"),
)
TIMEPOINT_COLUMNS = (
    Column("pseudonym", "string"),
    Column("time_point", "string", allowed="|".join(tp.key for tp in stats.TIME_POINTS)),
    *(
        col
        for outcome in stats.OUTCOMES
        for col in (
            Column(f"{outcome}_day", "integer", "days", description=f"Day of {outcome}"),
            Column(outcome, "number", description="Value at the time point; empty = missing"),
            Column(f"{outcome}_change", "number", description="Value minus baseline"),
        )
    ),
    Column("responder", "boolean", description=">= 2 points and >= 30 % less walking pain"),
)
EVENT_COLUMNS = (
    Column("pseudonym", "string"),
    Column("day", "integer", "days"),
    Column(
        "event",
        "string",
        allowed="alert_<kind>|red_flag_<reason>|loosening_confirmed|revision_planned|"
        "readmission|death|withdrawal",
    ),
    Column("detail", "string", description="Alert outcome code, when resolved"),
)
TABLES: dict[str, Sequence[Column]] = {
    "patients": PATIENT_COLUMNS,
    "responses": RESPONSE_COLUMNS,
    "timepoints": TIMEPOINT_COLUMNS,
    "events": EVENT_COLUMNS,
}


def _closed_items(instruments: Sequence[Instrument]) -> dict[tuple[str, int], set[str]]:
    """Items of each instrument version that are not free text (free text is never exported)."""
    out = {}
    for inst in instruments:
        items = inst.definition.get("items", [])
        out[(inst.key, inst.version)] = {
            item["id"]
            for item in items
            if item.get("type") not in {"text", "free_text", "string"}
            and item["id"] not in FREE_TEXT_ITEMS
        }
    return out


def build_tables(site_id: uuid.UUID, key: str) -> dict[str, list[dict[str, Any]]]:
    subjects = services.load_cohort(site_id, with_responses=True)
    site = db.session.get(Site, site_id)
    site_code = site.code if site else ""
    closed = _closed_items(db.session.execute(db.select(Instrument)).scalars().all())
    tables: dict[str, list[dict[str, Any]]] = {name: [] for name in TABLES}
    for s in subjects:
        pid = pseudonym(key, s.patient_id)
        tables["patients"].append(
            {
                "pseudonym": pid,
                "site_code": site_code,
                "age": s.age,
                "sex": s.sex,
                "kind": s.kind,
                "location": s.location,
                "side": s.side,
                "etiology": s.etiology,
                "bone_quality": s.bone_quality,
                "anaesthesia": s.anaesthesia,
                "screw_count": s.screw_count,
                "cement_volume_ml": s.cement_volume_ml,
                "procedure_day": s.procedure_day,
                "allocated_arm": s.allocated_arm,
                "arm": s.arm,
                "baseline_pain_walking": s.baseline["pain_walking"],
                "baseline_pain_rest": s.baseline["pain_rest"],
                "baseline_mobility_score": s.baseline["mobility_score"],
                "baseline_analgesic_step": s.baseline["analgesic_step"],
                "baseline_aid_level": s.baseline["aid_level"],
                # A status reached after a consent withdrawal is not the research's to know.
                "status": s.status
                if s.status_day is not None or s.status in {"active", "paused"}
                else "unknown",
                "last_day": s.last_day,
            }
        )
        for resp in s.responses:
            allowed = closed.get((resp.instrument_key, resp.instrument_version), set())
            values = {k: v for k, v in resp.answers.items() if k in allowed}
            values.update(
                {k: v for k, v in resp.scores.items() if v is not None and k != "comment"}
            )
            for item, value in sorted(values.items()):
                tables["responses"].append(
                    {
                        "pseudonym": pid,
                        "day": resp.day,
                        "instrument": resp.instrument_key,
                        "version": resp.instrument_version,
                        "item": item,
                        "value": _text(value),
                        "source": resp.source,
                    }
                )
        for tp in stats.TIME_POINTS:
            row: dict[str, Any] = {"pseudonym": pid, "time_point": tp.key}
            for outcome in stats.OUTCOMES:
                picked = s.pick(tp, outcome)
                base = s.baseline.get(outcome)
                row[f"{outcome}_day"] = picked[0] if picked else None
                row[outcome] = picked[1] if picked else None
                row[f"{outcome}_change"] = picked[1] - base if picked and base is not None else None
            walking, base_walking = row["pain_walking"], s.baseline["pain_walking"]
            row["responder"] = (
                stats.is_responder(base_walking, walking)
                if walking is not None and base_walking is not None
                else None
            )
            tables["timepoints"].append(row)
        tables["events"].extend(_events(s, pid))
    return tables


def _events(s: services.Subject, pid: str) -> list[dict[str, Any]]:
    out = []
    for alert in s.alerts:
        day = services.alert_day(s, alert.created_at)
        out.append(
            {"pseudonym": pid, "day": day, "event": f"alert_{alert.kind}", "detail": alert.outcome}
        )
        if alert.kind == "red_flag":
            for reason in sorted(set(services.reasons(alert.evidence))):
                out.append(
                    {"pseudonym": pid, "day": day, "event": f"red_flag_{reason}", "detail": None}
                )
        if alert.outcome in services.EVENT_OUTCOMES and alert.resolved_at is not None:
            resolved = services.alert_day(s, alert.resolved_at)
            if s.keeps(resolved):
                out.append(
                    {"pseudonym": pid, "day": resolved, "event": alert.outcome, "detail": None}
                )
    if s.status_day is not None:
        event = {"deceased": "death", "readmitted": "readmission", "withdrawn": "withdrawal"}
        out.append(
            {"pseudonym": pid, "day": s.status_day, "event": event[s.status], "detail": None}
        )
    return sorted(out, key=lambda e: (e["day"], e["event"]))


def _text(value: Any) -> str:
    if isinstance(value, list):
        return "|".join(str(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def codebook_rows(instruments: dict[str, int]) -> list[dict[str, Any]]:
    versions = ";".join(f"{k} v{v}" for k, v in sorted(instruments.items()))
    rows = []
    for file, columns in TABLES.items():
        for col in columns:
            rows.append(
                {
                    "file": f"{file}.csv",
                    "name": col.name,
                    "type": col.type,
                    "unit": col.unit,
                    "allowed_values": col.allowed,
                    "description": col.description,
                    "instrument_versions": versions if file == "responses" else "",
                    "rule_versions": "alert ruleset v1" if file == "events" else "",
                }
            )
    return rows


def write_files(
    out: Path, site_id: uuid.UUID, key: str, *, now: datetime, requested_by_role: str
) -> dict[str, Any]:
    """Write every file of the export into ``out`` (created); return the manifest."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out.mkdir(parents=True, exist_ok=True)
    tables = build_tables(site_id, key)
    instruments = {
        inst.key: inst.version
        for inst in db.session.execute(db.select(Instrument).order_by(Instrument.version))
        .scalars()
        .all()
    }
    pa_types = {
        "integer": pa.int64(),
        "number": pa.float64(),
        "string": pa.string(),
        "boolean": pa.bool_(),
    }
    for name, columns in TABLES.items():
        rows = tables[name]
        names = [c.name for c in columns]
        with (out / f"{name}.csv").open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=names)
            writer.writeheader()
            writer.writerows(rows)
        schema = pa.schema([(c.name, pa_types[c.type]) for c in columns])
        arrays = {c.name: [r[c.name] for r in rows] for c in columns}
        pq.write_table(pa.table(arrays, schema=schema), out / f"{name}.parquet")
    codebook = codebook_rows(instruments)
    with (out / "codebook.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(codebook[0]))
        writer.writeheader()
        writer.writerows(codebook)
    files = sorted(p.name for p in out.iterdir() if p.name != "manifest.json")
    manifest = {
        "format_version": FORMAT_VERSION,
        "generated_at": now.isoformat(),
        "requested_by_role": requested_by_role,
        "key_id": key_id(key),
        "instruments": instruments,
        "row_counts": {name: len(rows) for name, rows in tables.items()},
        "files": {name: _sha256(out / name) for name in files},
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return manifest


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
