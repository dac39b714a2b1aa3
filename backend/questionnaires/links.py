"""Answering from a reminder's link: a single-use capability to one questionnaire.

Patients who never install the app (most are over 80) answer from the SMS or e-mail reminder
itself, in any phone's browser (issue 16). The link is a capability, so it is built to be worth
as little as possible to anyone else:

- **Random and hashed.** The token is 160 random bits (27 characters); the database keeps only
  its SHA-256 (``AnswerLink.token_hash``), the token itself exists only in the message sent. A
  copy of the database opens nothing.
- **One questionnaire, once.** A link names one assignment. It answers that questionnaire and
  nothing else: there is no page of history, no other questionnaire, no patient data beyond the
  questions. It ends when the questionnaire is answered (by any way in: the app, another link, a
  nurse), when its window closes or it is cancelled, and when the patient is no longer followed.
- **A light check first.** Before the questions, the person types the patient's year of birth;
  after ``ANSWER_LINK_MAX_TRIES`` wrong years (counted on the row, under a row lock, so the
  bound holds across workers) the link is locked for good. A forwarded or mistyped message
  therefore does not expose the form. The browser that passed the check gets a random cookie
  (its hash on the row, for ``ANSWER_LINK_SESSION_MINUTES``): the bare link, opened elsewhere,
  asks again.
- **The app's service.** Answers go through ``record_response`` like the phone's (validation,
  scores, alert rules, idempotency: the form's token is the ``Idempotency-Key``, so a double tap
  or a reload stores one response), with the link's channel (``sms`` or ``email``).

Services flush, never commit; the caller (the pages in ``backend.web.answer_link``) commits.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app

from backend.audit.services import record
from backend.auth.principal import Principal
from backend.db import insert_rows, new_id
from backend.extensions import db
from backend.patients.models import Patient
from backend.questionnaires import services
from backend.questionnaires.models import (
    LINK_CHANNELS,
    AnswerLink,
    Assignment,
    Instrument,
    Response,
)

TOKEN_BYTES = 20  # 160 bits
TOKEN_LENGTH = 27  # characters of ``secrets.token_urlsafe(TOKEN_BYTES)``: A-Z a-z 0-9 - _
LINK_PATH = "/a"  # where the pages are served (``ANSWER_LINK_BASE_URL`` points at it)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii", "replace")).hexdigest()


# --- issuing -----------------------------------------------------------------------------------


def issue(assignment: Assignment, channel: str, *, now: datetime) -> str:
    """A new link to ``assignment`` for a reminder sent by ``channel`` (flush only)."""
    return issue_for(
        patient_id=assignment.patient_id,
        assignment_id=assignment.id,
        expires_at=assignment.closes_at,
        channel=channel,
        now=now,
    )


def issue_for(
    *,
    patient_id: uuid.UUID,
    assignment_id: uuid.UUID,
    expires_at: datetime,
    channel: str,
    now: datetime,
    into: list[dict[str, Any]] | None = None,
) -> str:
    """A new link to a questionnaire for a reminder sent by ``channel``; it ends when the
    questionnaire closes (``expires_at``) or is answered. With ``into``, the link's row is
    appended there for the caller to insert with the rest of its batch (the outbox's claim:
    one statement for a batch's links), else it is added to the session.

    Called when the message is rendered for sending, so the token is in the message and never
    in the outbox's rows. Each send gets its own link; all of them end together when the
    questionnaire is answered or closes. Nothing is read: the outbox passes what its row holds,
    so a batch of messages costs one INSERT of all their links, not a SELECT per message.
    """
    if channel not in LINK_CHANNELS:
        raise ValueError(f"no answer link for channel {channel!r}")
    token = secrets.token_urlsafe(TOKEN_BYTES)
    row = {
        "id": new_id(),
        "token_hash": digest(token),
        "patient_id": patient_id,
        "assignment_id": assignment_id,
        "channel": channel,
        "created_at": now,
        "expires_at": expires_at,
        "failed_checks": 0,
    }
    if into is None:
        db.session.add(AnswerLink(**row))
    else:
        into.append(row)
    return url_for_token(token)


def insert_issued(rows: list[dict[str, Any]]) -> None:
    """Insert the links ``issue_for`` collected ``into`` a list (flush only)."""
    insert_rows(db.session, AnswerLink.__table__, rows)


def url_for_token(token: str) -> str:
    return f"{current_app.config['ANSWER_LINK_BASE_URL']}/{token}"


def link_for_reminder(
    wanted_key: str,
    channel: str,
    *,
    patient_id: uuid.UUID | None,
    expires_at: datetime | None,
    now: datetime,
    into: list[dict[str, Any]] | None = None,
) -> str | None:
    """The web link of a reminder about to be sent by SMS or e-mail (``wanted_key`` names its
    questionnaire, ``expires_at`` is when it closes, as the schedule enqueued it); None when it
    is about no questionnaire (the outbox then keeps the message's own link).

    The outbox asked the schedule whether the questionnaire still wants its message
    (``outbox_still_wanted``) in this same transaction, so the questionnaire exists."""
    from backend.schedule.services import assignment_of

    assignment_id = assignment_of(wanted_key)
    if assignment_id is None or patient_id is None or expires_at is None:
        return None
    return issue_for(
        patient_id=patient_id,
        assignment_id=assignment_id,
        expires_at=expires_at,
        channel=channel,
        now=now,
        into=into,
    )


# --- opening -----------------------------------------------------------------------------------


class LinkRefused(Exception):
    """The link cannot be used; ``reason`` says why, in a word the pages translate."""

    def __init__(self, reason: str, link: AnswerLink | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.link = link


@dataclass
class Opened:
    link: AnswerLink
    assignment: Assignment
    patient: Patient

    @property
    def instrument(self) -> Instrument:
        return services.get_instrument(
            self.assignment.instrument_key, self.assignment.instrument_version
        )


def find(token: str) -> AnswerLink | None:
    if len(token) != TOKEN_LENGTH:
        return None
    found: AnswerLink | None = db.session.execute(
        db.select(AnswerLink).filter_by(token_hash=digest(token))
    ).scalar_one_or_none()
    return found


def open_link(token: str, *, now: datetime, for_update: bool = False) -> Opened:
    """The link's questionnaire while the link can still be used, else ``LinkRefused``:
    ``unknown``, ``answered``, ``closed`` (window over, cancelled, not followed), ``locked``.
    ``for_update`` locks the link's row (checks and submissions: two workers, one at a time)."""
    link = find(token)
    if link is None:
        raise LinkRefused("unknown")
    if for_update:
        db.session.refresh(link, with_for_update=True)
    assignment = db.session.get(Assignment, link.assignment_id)
    patient = db.session.get(Patient, link.patient_id)
    assert assignment is not None and patient is not None
    if link.used_at is not None or assignment.status == "completed":
        raise LinkRefused("answered", link)
    if (
        now >= link.expires_at
        or assignment.effective_status(now) != "open"
        or patient.status != "active"
    ):
        raise LinkRefused("closed", link)
    if link.locked_at is not None:
        raise LinkRefused("locked", link)
    return Opened(link, assignment, patient)


def tries_left(link: AnswerLink) -> int:
    return max(0, int(current_app.config["ANSWER_LINK_MAX_TRIES"]) - link.failed_checks)


@dataclass(frozen=True)
class Checked:
    passed: bool
    tries_left: int
    session_secret: str | None = None


def check_birth_year(opened: Opened, answer: str, *, now: datetime) -> Checked:
    """Compare the typed year with the patient's (the row is locked by ``open_link``).

    Right: a new browser session (the secret goes in the cookie, its hash on the row; an earlier
    browser's session ends). Wrong: one try fewer, the link locked at the last; audited both
    ways, as sign-ins are.
    """
    link, patient = opened.link, opened.patient
    typed = answer.strip()
    right = typed.isdigit() and len(typed) == 4 and int(typed) == patient.birth_date.year
    if right:
        secret = secrets.token_urlsafe(32)
        link.session_hash = digest(secret)
        minutes = int(current_app.config["ANSWER_LINK_SESSION_MINUTES"])
        link.session_expires_at = min(now + timedelta(minutes=minutes), link.expires_at)
        _audit("answer_link.check", opened, now, "success")
        return Checked(True, tries_left(link), secret)
    link.failed_checks += 1
    left = tries_left(link)
    if left == 0:
        link.locked_at = now
    _audit("answer_link.check", opened, now, "failure", tries_left=left)
    return Checked(False, left)


def in_session(link: AnswerLink, secret: str | None, *, now: datetime) -> bool:
    """Whether this browser (its cookie's ``secret``) passed the check on this link and its
    time is not up."""
    if not secret or link.session_hash is None or link.session_expires_at is None:
        return False
    if now >= link.session_expires_at:
        return False
    return hmac.compare_digest(digest(secret), link.session_hash)


# --- answering ---------------------------------------------------------------------------------


def principal_for(opened: Opened) -> Principal:
    """The patient, acting through this link (the audit rows name the link as the session)."""
    return Principal(
        kind="patient",
        id=opened.patient.id,
        site_id=opened.patient.site_id,
        session_id=opened.link.id,
        role="patient",
    )


def submit(
    opened: Opened,
    *,
    source: str,
    answers: dict[str, Any],
    form_token: str,
    now: datetime,
) -> services.Recorded:
    """Record the answers through the app's service, once; the link is then used up.

    ``form_token`` (chosen when the form was first shown, carried by every screen) is the
    ``Idempotency-Key``: a second post of the same form replays the first result. The time of
    answering is the time of sending and is left out of the fingerprint, so a reload a second
    later is the same request.
    """
    instrument = opened.instrument
    body: dict[str, Any] = {
        "assignment_id": opened.assignment.id,
        "instrument": instrument.key,
        "version": instrument.version,
        "answered_at": now,
        "source": source,
        "answers": answers,
    }
    fingerprint = services.request_fingerprint(
        {k: v for k, v in body.items() if k != "answered_at"}
    )
    recorded = services.record_response(
        principal_for(opened),
        opened.patient,
        body,
        now=now,
        idempotency_key=form_token,
        fingerprint=fingerprint,
        channel=opened.link.channel,
    )
    opened.link.used_at = now
    opened.link.response_id = recorded.response.id
    return recorded


def replayed(token: str, form_token: str) -> services.Recorded | None:
    """The response a used link stored with this form token (a double tap, a reload of the
    sending page), else None."""
    link = find(token)
    if link is None or link.response_id is None:
        return None
    response = db.session.get(Response, link.response_id)
    if response is None or not hmac.compare_digest(response.idempotency_key or "", form_token):
        return None
    return services.Recorded(response, replayed=True)


def _audit(action: str, opened: Opened, now: datetime, outcome: str, **details: Any) -> None:
    record(
        action,
        now=now,
        actor=principal_for(opened),
        resource_type="answer_link",
        resource_id=opened.link.id,
        patient_id=opened.patient.id,
        outcome=outcome,
        details={"channel": opened.link.channel, **details},
    )
