"""The triage queue: the site's open and acknowledged alerts, in the API's order."""

from __future__ import annotations

from typing import Any

from flask import Response, render_template, request
from marshmallow import ValidationError

from backend.alerts import services as alerts
from backend.alerts.presenters import present_page
from backend.alerts.schemas import AlertQueryArgsSchema
from backend.clock import utcnow
from backend.errors import BadRequest
from backend.web.blueprint import bp
from backend.web.i18n import current_locale
from backend.web.session import current_staff, staff_page

QUEUE_LIMIT = 200  # the API's largest page; a ward's unresolved alerts fit in it
REFRESH_SECONDS = 60
FILTERS = ("status", "severity", "kind", "owner")


def _filters() -> dict[str, Any]:
    """The queue's filters, validated by the API's own query schema."""
    given = {key: request.args[key] for key in FILTERS if request.args.get(key)}
    try:
        loaded: dict[str, Any] = AlertQueryArgsSchema(only=FILTERS).load(given)
    except ValidationError as error:
        raise BadRequest(f"Unknown filter: {', '.join(sorted(error.messages))}.") from None
    return loaded


def _queue(refresh: bool = False) -> dict[str, Any]:
    now = utcnow()
    filters = _filters()
    statuses = (filters["status"],) if filters.get("status") else ("open", "acknowledged")
    page, more = alerts.queue(
        current_staff(),
        now,
        statuses=statuses,
        severity=filters.get("severity"),
        kind=filters.get("kind"),
        patient_id=None,
        limit=QUEUE_LIMIT,
        owner=filters.get("owner"),
    )
    # One "list viewed" audit event per page load or refresh, naming every alert on it.
    alerts.record_list_read(current_staff(), page, now, via="web-refresh" if refresh else "web")
    locale = current_locale()
    return {
        "items": present_page(page, now, locale),
        "more": more is not None,
        "filters": filters,
        "now": now,
        "refresh_seconds": REFRESH_SECONDS,
    }


def render_queue(
    errors: dict[str, str] | None = None, form: Any = None, status: int = 200
) -> Response:
    page = render_template("web/queue.html", **_queue(), errors=errors or {}, form=form or {})
    return Response(page, status=status, mimetype="text/html")


@bp.get("/")
@staff_page
def queue() -> Response:
    """The queue page; it refreshes its list in place (``queue_items``)."""
    return render_queue()


@bp.get("/queue/items")
@staff_page
def queue_items() -> Response:
    """The queue's list alone, for the page's periodic refresh."""
    page = render_template("web/_queue_items.html", **_queue(refresh=True), form={})
    return Response(page, mimetype="text/html")
