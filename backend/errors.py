"""RFC 9457 problem details, from one place.

Services raise ``Problem`` (or a subclass); Werkzeug's HTTP errors, webargs' validation errors and
Flask-Limiter's 429 all pass through ``ProblemApi.handle_http_exception``. Under ``/api`` every
error is ``application/problem+json``; elsewhere (the nurse pages) it is a small HTML page. A 500
never shows internals: only a request id to quote.
"""

from __future__ import annotations

import contextlib
import http
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import marshmallow as ma
from apispec import APISpec
from flask import Response, current_app, json, render_template_string, request
from flask_smorest import Api, Blueprint
from flask_smorest.utils import prepare_response
from werkzeug.exceptions import HTTPException

from backend import fields
from backend.context import request_id

log = logging.getLogger(__name__)

PROBLEM_MIMETYPE = "application/problem+json"
TYPE_PREFIX = "urn:ir-followup:problem:"


class Problem(Exception):
    """An error the client can act on, rendered as problem+json."""

    status = 400
    title = "Bad Request"
    slug: str | None = None

    def __init__(
        self,
        detail: str | None = None,
        *,
        status: int | None = None,
        title: str | None = None,
        slug: str | None = None,
        errors: list[dict[str, str]] | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail or title or self.title)
        self.detail = detail
        if status is not None:
            self.status = status
        if title is not None:
            self.title = title
        if slug is not None:
            self.slug = slug
        self.errors = errors
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})


class BadRequest(Problem):
    status, title, slug = 400, "Bad Request", "bad-request"


class Unauthorized(Problem):
    status, title, slug = 401, "Unauthorized", "unauthorized"

    def __init__(self, detail: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": 'Bearer realm="api"'})
        super().__init__(detail, **kwargs)


class Forbidden(Problem):
    status, title, slug = 403, "Forbidden", "forbidden"


class NotFound(Problem):
    status, title, slug = 404, "Not Found", "not-found"

    def __init__(self, detail: str | None = None, **kwargs: Any) -> None:
        # One wording for "absent" and "not yours": a 404 must not tell them apart.
        super().__init__(detail or "The resource does not exist.", **kwargs)


class Conflict(Problem):
    status, title, slug = 409, "Conflict", "conflict"


class ValidationProblem(Problem):
    status, title, slug = 422, "Unprocessable Content", "validation-error"

    def __init__(self, errors: list[dict[str, str]], detail: str | None = None) -> None:
        super().__init__(
            detail or "The request has invalid fields; each is listed in errors.", errors=errors
        )


def field_error(pointer: str, detail: str) -> dict[str, str]:
    return {"pointer": pointer, "detail": detail}


def _escape(token: str) -> str:
    """JSON Pointer escaping (RFC 6901)."""
    return token.replace("~", "~0").replace("/", "~1")


def flatten_messages(messages: Any, prefix: str = "") -> list[dict[str, str]]:
    """Turn marshmallow's nested error dict into a flat list of JSON pointers."""
    out: list[dict[str, str]] = []
    if isinstance(messages, Mapping):
        for key, value in messages.items():
            if key == "_schema":
                out.extend(flatten_messages(value, prefix))
            else:
                out.extend(flatten_messages(value, f"{prefix}/{_escape(str(key))}"))
    elif isinstance(messages, list | tuple) and all(isinstance(m, str) for m in messages):
        out.extend(field_error(prefix or "/", message) for message in messages)
    elif isinstance(messages, Iterable) and not isinstance(messages, str):
        for item in messages:
            out.extend(flatten_messages(item, prefix))
    else:
        out.append(field_error(prefix or "/", str(messages)))
    return out


def webargs_errors(messages: Mapping[str, Any]) -> list[dict[str, str]]:
    """Map webargs' ``{location: {field: [msg]}}`` to problem errors.

    Body fields get a JSON pointer; query parameters and headers are named as such (RFC 9457
    section 3 example), since a pointer into the body would be wrong for them.
    """
    errors: list[dict[str, str]] = []
    for location, located in messages.items():
        flat = flatten_messages(located)
        if location in {"json", "form", "json_or_form"}:
            errors.extend(flat)
        else:
            kind = {"query": "parameter", "headers": "header", "view_args": "parameter"}.get(
                location, location
            )
            for item in flat:
                name = item["pointer"].lstrip("/").split("/")[0]
                errors.append({kind: name, "detail": item["detail"]})
    return errors


def problem_response(
    status: int,
    title: str,
    detail: str | None = None,
    slug: str | None = None,
    errors: list[dict[str, str]] | None = None,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Response:
    body: dict[str, Any] = {
        "type": f"{TYPE_PREFIX}{slug}" if slug else "about:blank",
        "title": title,
        "status": status,
    }
    if detail:
        body["detail"] = detail
    if errors is not None:
        body["errors"] = errors
    body["request_id"] = request_id()
    if extra:
        body.update(extra)
    response = current_app.response_class(
        json.dumps(body), status=status, mimetype=PROBLEM_MIMETYPE
    )
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


_HTML_ERROR = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>{{ status }} {{ title }}</title></head><body><main>
<h1>{{ status }} {{ title }}</h1><p>{{ detail }}</p>
{% if request_id %}<p>Reference: <code>{{ request_id }}</code></p>{% endif %}
</main></body></html>"""


def wants_problem_json() -> bool:
    return request.path.startswith("/api")


def render_error(status: int, title: str, detail: str | None = None, **kwargs: Any) -> Response:
    if wants_problem_json():
        return problem_response(status, title, detail, **kwargs)
    html = render_template_string(
        _HTML_ERROR, status=status, title=title, detail=detail or "", request_id=request_id()
    )
    response = current_app.response_class(html, status=status, mimetype="text/html")
    for key, value in (kwargs.get("headers") or {}).items():
        response.headers[key] = value
    return response


# One title per status whichever layer refused the request (RFC 9457: the title does not
# change from occurrence to occurrence): werkzeug still says "Unprocessable Entity" for a 422
# that webargs raises, where our own problems say RFC 9110's "Unprocessable Content".
_TITLES = {
    problem.status: problem.title
    for problem in (BadRequest, Unauthorized, Forbidden, NotFound, Conflict, ValidationProblem)
}
_SLUGS = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "validation-error",
    429: "too-many-requests",
    500: "internal-error",
    503: "service-unavailable",
}


class ProblemErrorSchema(ma.Schema):
    """RFC 9457 problem details (documentation of every error response)."""

    type = fields.String(metadata={"description": "A URI identifying the problem type"})
    title = fields.String()
    status = fields.Integer()
    detail = fields.String()
    request_id = fields.String(metadata={"description": "Quote it when reporting a problem"})
    errors = fields.List(
        fields.Dict(),
        metadata={
            "description": "422 only: one entry per bad field, with a JSON `pointer` "
            "(or `parameter`/`header`) and a `detail`"
        },
    )
    owner = fields.Dict(
        allow_none=True,
        metadata={
            "description": "409 on an alert's owner only: who holds the alert now (`id`, "
            "`full_name`), or null when it went back to the shared queue"
        },
    )


class _FinishedSpec(APISpec):
    def to_dict(self) -> dict[str, Any]:
        from backend.openapi import finish

        return finish(super().to_dict())


class ProblemApi(Api):
    """flask-smorest's Api, answering errors as RFC 9457 problems."""

    ERROR_SCHEMA = ProblemErrorSchema
    # No catch-all response: backend.openapi lists each status every operation can answer.
    DEFAULT_ERROR_RESPONSE_NAME = None

    def _init_spec(self, *args: Any, **kwargs: Any) -> None:
        super()._init_spec(*args, **kwargs)
        # The document served and printed is the finished one (backend.openapi).
        self.spec.__class__ = _FinishedSpec

    def _register_responses(self) -> None:
        """Document every error response as ``application/problem+json``."""
        for status in http.HTTPStatus:
            response: dict[str, Any] = {"description": status.phrase}
            if status >= 400:
                response["schema"] = self.ERROR_SCHEMA
            prepare_response(response, self.spec, PROBLEM_MIMETYPE)
            self.spec.components.response(status.name, response, lazy=True)

    def handle_http_exception(self, error: HTTPException) -> Any:  # type: ignore[override]
        status = error.code or 500
        headers: dict[str, str] = dict(error.get_headers() if status == 405 else [])
        headers.pop("Content-Type", None)
        data = getattr(error, "data", None) or {}
        errors = None
        detail: str | None = None
        if status == 422 and "messages" in data:
            errors = webargs_errors({**data["messages"], **_other_arguments_errors(data)})
            detail = "The request has invalid fields; each is listed in errors."
        elif status == 429:
            detail = "Too many attempts. Wait before trying again."
        elif status >= 500:
            # The exception itself was logged by ``backend.logs.App.log_exception``.
            detail = "An unexpected error occurred. Quote the request id when reporting it."
        else:
            detail = error.description if status != 404 else "The resource does not exist."
        headers.update(data.get("headers") or {})
        retry_after = getattr(error, "retry_after", None)
        if status == 429 and retry_after is not None:
            headers["Retry-After"] = str(int(retry_after))
        return render_error(
            status,
            _TITLES.get(status, error.name),
            detail,
            slug=_SLUGS.get(status),
            errors=errors,
            headers=headers,
        )


def _other_arguments_errors(data: Mapping[str, Any]) -> dict[str, Any]:
    """The errors of the request's other arguments, when webargs refused one of them.

    Each ``arguments`` of a view is parsed apart, and the first refused stops the request: a
    missing ``Idempotency-Key`` would hide every bad field of the body. The others are parsed
    here (on this error path only), so the problem names every bad field at once.
    """
    messages = data["messages"]
    if not isinstance(messages, Mapping) or request.endpoint is None:
        return {}
    view = current_app.view_functions.get(request.endpoint)
    view_class = getattr(view, "view_class", None)
    method = getattr(view_class, request.method.lower(), None) if view_class else view
    parameters = getattr(method, "_apidoc", {}).get("arguments", {}).get("parameters", [])
    others: dict[str, Any] = {}
    for parameter in parameters:
        location = parameter["in"]
        if location in messages or location in others:
            continue
        try:
            Blueprint.ARGUMENTS_PARSER.parse(parameter["schema"], request, location=location)
        except HTTPException as error:
            refused = (getattr(error, "data", None) or {}).get("messages")
            if error.code == 422 and isinstance(refused, Mapping):
                others.update(refused)
    return others


def handle_problem(problem: Problem) -> Response:
    return render_error(
        problem.status,
        problem.title,
        problem.detail,
        slug=problem.slug,
        errors=problem.errors,
        headers=problem.headers,
        extra=problem.extra,
    )


def problems(blp: Blueprint, *statuses: int) -> Callable[[Any], Any]:
    """Document the problem responses an endpoint can give (in the OpenAPI document)."""

    def decorator(view: Any) -> Any:
        for status in statuses:
            view = blp.alt_response(status, response=http.HTTPStatus(status).name)(view)
        return view

    return decorator


# How long a client should wait before retrying while the database is unreachable: long enough
# for a PostgreSQL restart or a fail-over, short enough that a phone's queued answer goes soon.
DATABASE_RETRY_AFTER_SECONDS = 30


def register_outage_handlers(app: Any) -> None:
    """The database unreachable (connection refused or lost, pool exhausted, a restart under
    way) answers 503 with ``Retry-After``, not 500: the client may retry, nothing was stored."""
    import sqlalchemy as sa

    def database_unavailable(error: Exception) -> Response:
        from backend.extensions import db

        # The connection may be gone already; the pool replaces it (pre-ping).
        with contextlib.suppress(sa.exc.SQLAlchemyError):
            db.session.rollback()
        log.warning(
            "database unavailable",
            extra={
                "error_type": type(getattr(error, "orig", None) or error).__name__,
                "route": request.url_rule.rule if request.url_rule else None,
            },
        )
        return render_error(
            503,
            "Service Unavailable",
            "The service cannot reach its database. Try again in a moment; nothing was stored.",
            slug="service-unavailable",
            headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
        )

    for error_class in (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError):
        app.register_error_handler(error_class, database_unavailable)
