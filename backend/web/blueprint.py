"""The nurse pages' blueprint: CSRF on every form, headers, errors as pages, page-view audit."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, g, render_template, request
from flask_babel import gettext as _
from flask_babel import refresh as babel_refresh
from flask_limiter.errors import RateLimitExceeded
from flask_wtf.csrf import CSRFError, CSRFProtect

from backend.audit.services import record
from backend.errors import Problem
from backend.extensions import db
from backend.uow import keep_on_error
from backend.web.i18n import current_locale, signed_in_site
from backend.web.session import current_staff

bp = Blueprint(
    "web",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/assets",
)
csrf = CSRFProtect()

# Pages show patient data: no framing, no inline script or style, nothing cached.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


@bp.context_processor
def _page_context() -> dict[str, Any]:
    return {"staff_user": g.get("web_user"), "site": signed_in_site(), "locale": current_locale()}


@bp.before_request
def _start_clean() -> None:
    """Per-request state lives on ``g``, which belongs to the application context; one context
    can serve several requests (the test client inside a test's context), so start clean."""
    for name in ("principal", "web_user", "web_auth_session", "csrf_token"):
        g.pop(name, None)
    babel_refresh()  # the locale and time zone are chosen again for this request


@bp.before_request
def _protect_forms() -> None:
    """Every POST of the pages carries its CSRF token (the API, with bearer tokens, needs none
    and is left alone: ``WTF_CSRF_CHECK_DEFAULT`` is off, the pages opt in here)."""
    csrf.protect()


@bp.after_request
def _headers(response: Response) -> Response:
    if request.endpoint == "web.static":
        return response
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"
    return response


def audit_view(
    action: str,
    *,
    now: datetime,
    resource_type: str,
    resource_id: uuid.UUID,
    patient_id: uuid.UUID,
    **details: Any,
) -> None:
    """A page showed a patient's data: audited as the API's reads are, marked as a page view.

    The read is kept even when the page answers an error status (a form shown again with its
    errors, after the view rolled back the change it refused): the nurse saw the data.
    """
    keep_on_error()
    record(
        action,
        now=now,
        actor=current_staff(),
        resource_type=resource_type,
        resource_id=resource_id,
        patient_id=patient_id,
        details={"via": "web", **details},
    )


def error_page(status: int, title: str, detail: str, **headers: str) -> Response:
    response = Response(
        render_template("web/error.html", status=status, title=title, detail=detail),
        status=status,
        mimetype="text/html",
    )
    response.headers.update(headers)
    return response


@bp.errorhandler(Problem)
def _problem(problem: Problem) -> Response:
    db.session.rollback()
    if problem.status == 404:
        return error_page(
            404,
            _("Not found"),
            _("This page does not exist, or it belongs to another site."),
        )
    if problem.status == 409:
        return error_page(409, _("Already done"), _("Someone changed this in the meantime."))
    return error_page(problem.status, _("This did not work"), problem.detail or "")


@bp.errorhandler(CSRFError)
def _csrf_refused(error: CSRFError) -> Response:
    return error_page(
        400,
        _("The form was refused"),
        _(
            "It had expired or did not come from this site. Go back, reload the page "
            "and send it again."
        ),
    )


@bp.errorhandler(RateLimitExceeded)
def _too_many(error: RateLimitExceeded) -> Response:
    from backend.web.views.auth import render_login

    response = render_login(
        error=_("Too many failed sign-ins. Wait a few minutes before trying again."), status=429
    )
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None:
        response.headers["Retry-After"] = str(int(retry_after))
    return response
