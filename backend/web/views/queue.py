"""The triage queue: the site's open and acknowledged alerts, in the API's order, a page of 50
at a time (the API's keyset cursor), with how many alerts the whole queue holds per severity."""

from __future__ import annotations

from typing import Any

from flask import Response, render_template, request
from marshmallow import ValidationError

from backend.alerts import services as alerts
from backend.alerts.presenters import present_rows
from backend.alerts.schemas import AlertQueryArgsSchema
from backend.clock import utcnow
from backend.errors import BadRequest, ValidationProblem
from backend.web.blueprint import bp
from backend.web.i18n import current_locale
from backend.web.queue_rows import queue_rows
from backend.web.session import current_staff, staff_page

# The API's default page. The queue is in order of urgency, so the first page holds what must
# be done first; the counts above it say what the next pages hold (a page of 200 rows took
# ten times as long to render, and nobody triages the two-hundredth alert before the first).
QUEUE_PAGE = 50
REFRESH_SECONDS = 60
FILTERS = ("status", "severity", "kind", "owner")
MAX_PAGE_NUMBER = 10_000

bp.add_app_template_global(queue_rows)  # the rows of web/_queue_items.html


def _filters() -> dict[str, Any]:
    """The queue's filters, validated by the API's own query schema."""
    given = {key: request.args[key] for key in FILTERS if request.args.get(key)}
    try:
        loaded: dict[str, Any] = AlertQueryArgsSchema(only=FILTERS).load(given)
    except ValidationError as error:
        raise BadRequest(f"Unknown filter: {', '.join(sorted(error.messages))}.") from None
    return loaded


def _page_number() -> int:
    """Which page this is (1: the first), for the heading only: the cursor says where it is."""
    try:
        number = int(request.args.get("page", "1"))
    except ValueError:
        raise BadRequest("The page number is not a number.") from None
    return min(max(number, 1), MAX_PAGE_NUMBER) if request.args.get("cursor") else 1


def _queue(refresh: bool = False) -> dict[str, Any]:
    now = utcnow()
    filters = _filters()
    cursor = request.args.get("cursor") or None
    statuses = (filters["status"],) if filters.get("status") else ("open", "acknowledged")
    chosen: dict[str, Any] = {
        "statuses": statuses,
        "severity": filters.get("severity"),
        "kind": filters.get("kind"),
        "owner": filters.get("owner"),
    }
    locale = current_locale()
    try:
        page, next_cursor = alerts.queue(
            current_staff(),
            now,
            patient_id=None,
            limit=QUEUE_PAGE,
            cursor=cursor,
            columns=True,
            locale=locale,
            **chosen,
        )
    except ValidationProblem:
        raise BadRequest("This link to a page of the queue is not valid.") from None
    counts = alerts.queue_counts(current_staff(), now, **chosen)
    # One "list viewed" audit event per page load or refresh, naming every alert on it.
    alerts.record_list_read(current_staff(), page, now, via="web-refresh" if refresh else "web")
    number = _page_number()
    return {
        "items": present_rows(page, now),
        "counts": counts,
        "total": sum(c["total"] for c in counts.values()),
        "page_number": number,
        "next_page": {**filters, "cursor": next_cursor, "page": number + 1}
        if next_cursor
        else None,
        "first_page": filters if cursor else None,
        # This page again (the bulk acknowledge's form comes back to it when a field is wrong).
        "here": {**filters, "cursor": cursor, "page": number} if cursor else filters,
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
