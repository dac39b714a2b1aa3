"""The enrollment code between the POST that issues it and the page that shows it, once.

The session cookie is signed, not encrypted: whatever it holds, the nurse's browser (and anyone
who copies the cookie) can read. So it holds only a handle and a one-time pad; the database holds
the code masked by that pad (``EnrollmentSheet``) for ``SHEET_TTL``. Showing the sheet deletes
the row: a replayed cookie finds nothing, and a copy of the database alone reveals no code.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import session

from backend.extensions import db
from backend.patients.models import EnrollmentSheet, Patient

SHEET_TTL = timedelta(minutes=10)
_KEY = "enrollment_sheet"


def _xor(data: bytes, pad: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(data, pad, strict=True))


def keep_for_display(
    patient: Patient,
    code: str,
    code_expires_at: datetime,
    *,
    auth_session_id: uuid.UUID,
    now: datetime,
) -> None:
    """Store the masked code and put its handle and pad in the cookie (flush only)."""
    db.session.execute(sa.delete(EnrollmentSheet).where(EnrollmentSheet.expires_at <= now))
    raw = code.encode()
    pad = secrets.token_bytes(len(raw))
    sheet = EnrollmentSheet(
        patient_id=patient.id,
        auth_session_id=auth_session_id,
        masked_code=_xor(raw, pad).hex(),
        code_expires_at=code_expires_at,
        created_at=now,
        expires_at=now + SHEET_TTL,
    )
    db.session.add(sheet)
    db.session.flush()
    session[_KEY] = {"id": str(sheet.id), "pad": pad.hex()}


def take_for_display(
    patient: Patient, *, auth_session_id: uuid.UUID, now: datetime
) -> tuple[str, datetime] | None:
    """The code and its expiry, once, for this patient and this sign-in; else None."""
    handle = session.get(_KEY)
    if not isinstance(handle, dict):
        return None
    try:
        sheet_id = uuid.UUID(str(handle["id"]))
        pad = bytes.fromhex(str(handle["pad"]))
    except (KeyError, ValueError):
        session.pop(_KEY, None)
        return None
    sheet = db.session.get(EnrollmentSheet, sheet_id)
    if sheet is None or sheet.patient_id != patient.id:
        return None
    session.pop(_KEY, None)
    # Deleted whether shown or refused: one look, by the sign-in that issued it, in time.
    deleted = db.session.execute(sa.delete(EnrollmentSheet).where(EnrollmentSheet.id == sheet.id))
    if (
        deleted.rowcount != 1  # type: ignore[attr-defined]
        or sheet.auth_session_id != auth_session_id
        or sheet.expires_at <= now
    ):
        return None
    masked = bytes.fromhex(sheet.masked_code)
    if len(masked) != len(pad):
        return None
    return _xor(masked, pad).decode(), sheet.code_expires_at
