"""FHIR errors: every failure under ``/fhir/R4`` is an OperationOutcome (application/fhir+json)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Response, json

FHIR_JSON = "application/fhir+json"

# OperationOutcome issue type per HTTP status (http://hl7.org/fhir/issue-type).
ISSUE_CODES = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    406: "not-supported",
    409: "conflict",
    410: "deleted",
    415: "not-supported",
    429: "throttled",
    500: "exception",
    503: "transient",
}


class FhirError(Exception):
    """An error rendered as an OperationOutcome with ``status``."""

    def __init__(
        self,
        status: int,
        diagnostics: str,
        *,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
        expression: list[str] | None = None,
    ) -> None:
        super().__init__(diagnostics)
        self.status = status
        self.diagnostics = diagnostics
        self.code = code or ISSUE_CODES.get(status, "processing")
        self.headers = dict(headers or {})
        self.expression = expression


def operation_outcome(
    diagnostics: str, code: str, *, severity: str = "error", expression: list[str] | None = None
) -> dict[str, Any]:
    issue: dict[str, Any] = {"severity": severity, "code": code, "diagnostics": diagnostics}
    if expression:
        issue["expression"] = expression
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def fhir_response(
    body: Mapping[str, Any], status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    response = Response(json.dumps(body, ensure_ascii=False), status=status, mimetype=FHIR_JSON)
    response.headers["Content-Type"] = f"{FHIR_JSON}; charset=utf-8"
    response.headers["Cache-Control"] = "no-store"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def render(error: FhirError) -> Response:
    return fhir_response(
        operation_outcome(error.diagnostics, error.code, expression=error.expression),
        error.status,
        error.headers,
    )
