"""Telling staff about alerts, through the outbox, with no health content.

- Urgent and high alerts: each nurse of the site is e-mailed at once ("a new alert to review",
  a link to it), when the alert opens or its severity rises to high or urgent; and ("new
  information on an alert") when an answer adds evidence to one a nurse has acknowledged.
- Routine alerts: one digest a day per site, at ``ALERT_DIGEST_LOCAL_TIME`` site time.
- Overdue alerts: the site's physicians are e-mailed once (``escalated_at`` marks it).
Each e-mail is deduplicated by the outbox on (event, person), so a retried job or a second
scheduler sends nobody anything twice.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from flask import current_app

from backend.alerts.models import Alert
from backend.alerts.services import escalate_overdue
from backend.auth.models import Site
from backend.extensions import db
from backend.notify.enqueue import enqueue_staff_notification
from backend.notify.texts import Text

# The e-mails' texts (no health content: they say that something waits, and link to it).
STAFF_TEXTS: dict[str, dict[str, Text]] = {
    "alert_opened": {
        "fr": Text(
            "Nouvelle alerte à examiner",
            "Une nouvelle alerte attend votre examen dans l'outil de suivi.",
        ),
        "en": Text("New alert to review", "A new alert is waiting for your review."),
    },
    "alert_news": {
        "fr": Text(
            "Nouvelles informations sur une alerte",
            "Une alerte déjà prise en charge a reçu de nouvelles informations dans l'outil de "
            "suivi.",
        ),
        "en": Text(
            "New information on an alert",
            "An alert that was acknowledged has new information in the follow-up tool.",
        ),
    },
    "alert_overdue": {
        "fr": Text(
            "Alerte en attente",
            "Une alerte n'a pas été prise en charge dans le délai prévu.",
        ),
        "en": Text("Alert waiting", "An alert was not acknowledged within its target time."),
    },
    "alerts_digest": {
        "fr": Text(
            "Alertes de routine à examiner",
            "De nouvelles alertes de routine attendent votre examen dans l'outil de suivi.",
        ),
        "en": Text(
            "Routine alerts to review",
            "New routine alerts are waiting for your review in the follow-up tool.",
        ),
    },
}


def staff_texts(_app: object) -> dict[str, dict[str, Text]]:
    """``staff_texts`` receiver: the alert e-mails' texts."""
    return STAFF_TEXTS


def scheduler_jobs(_app: object) -> tuple[Callable[[datetime], int], ...]:
    """``scheduler_jobs`` receiver: escalations, then the routine digests."""
    return (escalate, send_routine_digests)


def _link(alert: Alert | None = None) -> str:
    base = str(current_app.config["STAFF_BASE_URL"]).rstrip("/")
    return f"{base}/alerts/{alert.id}" if alert else f"{base}/"


def announce(_app: object, *, alert: Alert, opened: bool, now: datetime) -> None:
    """``alert_raised`` receiver: e-mail the nurses at once about urgent and high alerts."""
    if _tell_nurses(alert, "alert_opened", f"alert:{alert.id}:{alert.severity}", now):
        alert.nurses_notified_at = now


def announce_news(_app: object, *, alert: Alert, response_id: str, now: datetime) -> None:
    """``alert_news`` receiver: e-mail the nurses at once about new evidence on an acknowledged
    urgent or high alert, once per answer that brought it."""
    _tell_nurses(alert, "alert_news", f"alert:{alert.id}:news:{response_id}", now)


def _tell_nurses(alert: Alert, text_key: str, dedupe_key: str, now: datetime) -> bool:
    """E-mail the site's nurses ``text_key`` with a link to an urgent or high alert (routine
    ones wait for the digest); whether it was one to tell."""
    if alert.severity not in {"urgent", "high"}:
        return False
    enqueue_staff_notification(
        alert.site_id,
        ["nurse"],
        text_key,
        now=now,
        subject_key=text_key,
        link=_link(alert),
        dedupe_key=dedupe_key,
    )
    return True


def send_routine_digests(now: datetime) -> int:
    """Once a day per site, after the digest time: one e-mail for the new routine alerts."""
    pending = (
        db.session.execute(
            db.select(Alert)
            .filter(
                Alert.severity == "routine",
                Alert.status == "open",
                Alert.nurses_notified_at.is_(None),
            )
            .with_for_update(skip_locked=True)
        )
        .scalars()
        .all()
    )
    digest_time = current_app.config["ALERT_DIGEST_LOCAL_TIME"]
    by_site: dict[object, list[Alert]] = {}
    for alert in pending:
        by_site.setdefault(alert.site_id, []).append(alert)
    handled = 0
    for site_id, alerts in by_site.items():
        site = db.session.get(Site, site_id)
        assert site is not None
        local = now.astimezone(ZoneInfo(site.timezone))
        if local.time() < digest_time:
            continue
        enqueue_staff_notification(
            site.id,
            ["nurse"],
            "alerts_digest",
            now=now,
            subject_key="alerts_digest",
            link=_link(),
            dedupe_key=f"digest:{site.id}:{local.date().isoformat()}",
        )
        for alert in alerts:
            alert.nurses_notified_at = now
        handled += len(alerts)
    return handled


def escalate(now: datetime) -> int:
    """Alerts past their target time: mark them (they rise in the queue) and tell physicians."""
    overdue = escalate_overdue(now)
    for alert in overdue:
        enqueue_staff_notification(
            alert.site_id,
            ["physician"],
            "alert_overdue",
            now=now,
            subject_key="alert_overdue",
            link=_link(alert),
            dedupe_key=f"overdue:{alert.id}",
        )
    return len(overdue)
