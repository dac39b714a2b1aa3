"""Message texts, French and English, with no health content at all.

Push notifications, SMS and e-mails cross providers and lock screens, so (clinical.md, Privacy)
they say only that there is something to do, never what it is about: no procedure, no symptom,
no score, no patient name. A reminder carries a deep link with the questionnaire id alone.
Staff e-mails say that something waits in the nurse tools and link to it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass

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
