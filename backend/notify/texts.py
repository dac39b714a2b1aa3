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

LOCALES = ("fr", "en")
FALLBACK_LOCALE = "fr"


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

# Staff e-mails; the alert domain adds its own with ``register_staff_text``.
STAFF_TEXTS: dict[str, dict[str, Text]] = {
    "alert_opened": {
        "fr": Text(
            "Nouvelle alerte à examiner",
            "Une nouvelle alerte attend votre examen dans l'outil de suivi.",
        ),
        "en": Text("New alert to review", "A new alert is waiting for your review."),
    },
    "alert_overdue": {
        "fr": Text(
            "Alerte en attente",
            "Une alerte n'a pas été prise en charge dans le délai prévu.",
        ),
        "en": Text("Alert waiting", "An alert was not acknowledged within its target time."),
    },
}


def register_staff_text(key: str, texts: Mapping[str, Text]) -> None:
    """Add a staff e-mail text (one per locale of ``LOCALES``); no health content in it."""
    missing = [locale for locale in LOCALES if locale not in texts]
    if missing:
        raise ValueError(f"staff text {key!r} lacks the locales {missing}")
    STAFF_TEXTS[key] = dict(texts)


def render(table: Mapping[str, Mapping[str, Text]], key: str, locale: str) -> Text:
    """The text in ``locale`` (French when the locale is unknown)."""
    by_locale = table[key]
    return by_locale.get(locale) or by_locale[FALLBACK_LOCALE]


def questionnaire_link(assignment_id: uuid.UUID) -> str:
    """The deep link to one questionnaire: the configured base and the assignment id only."""
    base = str(current_app.config["APP_DEEP_LINK_BASE"])
    return f"{base.rstrip('/')}/{assignment_id}"
