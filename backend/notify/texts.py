"""Message texts, French and English, with no health content at all.

Push notifications, SMS and e-mails cross providers and lock screens, so (clinical.md, Privacy)
they say only that there is something to do, never what it is about: no procedure, no symptom,
no score, no patient name. A reminder carries a deep link with the questionnaire id alone; sent
by SMS or e-mail it carries instead a web link with a single-use token
(``backend.questionnaires.links``), so a patient without the app answers in the browser. The
SMS text and its longest link fit one GSM-7 segment (tests/notify/test_answer_link_texts.py).
Staff e-mails say that something waits in the nurse tools and link to it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import current_app

from backend.locales import LOCALES, pick


@dataclass(frozen=True)
class Text:
    title: str  # push title, e-mail subject
    body: str


PATIENT_TEXTS: dict[str, dict[str, Text]] = {
    "questionnaire_reminder": {
        "fr": Text("Rappel", "Vous avez un questionnaire à remplir."),
        "en": Text("Reminder", "You have a questionnaire to answer."),
    },
}


def staff_texts() -> dict[str, dict[str, Text]]:
    """The staff e-mail texts of the current application, from the ``staff_texts`` receivers
    (the alert engine's): the outbox owns none, so it knows nothing of what they are about.

    Raises ``ValueError`` when a text lacks one of ``LOCALES`` or two receivers give one key.
    """
    from backend import signals

    table: dict[str, dict[str, Text]] = {}
    for texts in signals.send(signals.staff_texts):
        for key, by_locale in texts.items():
            missing = [locale for locale in LOCALES if locale not in by_locale]
            if missing:
                raise ValueError(f"staff text {key!r} lacks the locales {missing}")
            if key in table:
                raise ValueError(f"staff text {key!r} given twice")
            table[key] = dict(by_locale)
    return table


def render(table: Mapping[str, Mapping[str, Text]], key: str, locale: str) -> Text:
    """The text in ``locale`` (French when the locale is unknown)."""
    return pick(table[key], locale)


def questionnaire_link(assignment_id: uuid.UUID) -> str:
    """The deep link to one questionnaire: the configured base and the assignment id only."""
    base = str(current_app.config["APP_DEEP_LINK_BASE"])
    return f"{base.rstrip('/')}/{assignment_id}"


# Channels whose reminders carry the web link (a phone's push opens the app instead).
WEB_LINK_CHANNELS = ("sms", "email")


def reminder_link(
    link: str | None,
    wanted_key: str | None,
    channel: str,
    *,
    patient_id: uuid.UUID | None,
    expires_at: datetime | None,
    now: datetime,
    links: list[dict[str, Any]] | None = None,
) -> str | None:
    """The link a patient's message carries on ``channel``: for a questionnaire sent by SMS or
    e-mail, a new single-use web link to answer it in the browser (the token exists only in
    this message, its hash in the database); otherwise the notification's own link. ``links``
    collects the new link's row for the caller to insert (see ``links.issue_for``)."""
    if wanted_key is None or channel not in WEB_LINK_CHANNELS:
        return link
    from backend.questionnaires.links import link_for_reminder

    found = link_for_reminder(
        wanted_key, channel, patient_id=patient_id, expires_at=expires_at, now=now, into=links
    )
    return found or link


def save_reminder_links(rows: list[dict[str, Any]]) -> None:
    """Insert the answer links ``reminder_link`` collected for a batch, in one statement."""
    if not rows:
        return
    from backend.questionnaires.links import insert_issued

    insert_issued(rows)
