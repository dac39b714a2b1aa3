"""The served OpenAPI document, finished: every status an operation can answer, named enums.

flask-smorest documents what each view declares (its success, the problems listed with
``problems(...)``, 422 for its arguments). What the layers around the views can answer is added
here, from what the operation has, so the document and the service cannot drift apart:

- a JSON body: 400 (malformed, or nested too deep), 413 (over ``MAX_CONTENT_LENGTH``),
  415 (not ``application/json``) and 422 (invalid fields);
- query or header arguments: 422;
- a path parameter: 404 (a malformed id does not route; an unknown or other site's id is absent);
- a bearer token: 401, and 404 (a patient's token on a staff operation, or the reverse, answers
  as if nothing were there);
- every operation: 414 (a request line longer than the HTTP server takes; answered by gunicorn,
  without a body), 500 (an unexpected error: a problem with a request id) and 503 (each one
  reads the database; unreachable, it answers a problem with ``Retry-After`` and stores nothing:
  ``backend.errors.register_outage_handlers``).

There is no catch-all ``default`` response: a client generator then knows each one.

Enumerations become named components (``Analgesics``, ``WalkingAid``) referenced where used;
a nullable one is ``nullable`` beside an ``allOf`` of the reference (and so is a nullable nested
object), so a generated client has ``Analgesics | None`` rather than
``BaselineAnalgesicsType2Type1``. The name is the property's in CamelCase unless the field's
metadata gives ``x-enum-name`` (for ``status``, ``kind`` and ``source``, which mean different
lists in different places); one name for two different lists is an error when the document is built.
"""

from __future__ import annotations

import copy
import http
from typing import Any

PROBLEM_REF = {"$ref": "#/components/schemas/ProblemError"}
PROBLEM_MIMETYPE = "application/problem+json"
METHODS = ("get", "put", "post", "delete", "patch")

_DESCRIPTIONS = {
    400: "The body is not JSON, or nests it too deeply",
    401: "No valid access token",
    403: "Your role does not allow this action",
    404: "Not found (or not yours, or not for this kind of token)",
    409: "Conflict with the current state",
    413: "The body is larger than the server accepts",
    414: "The request line is longer than the HTTP server accepts (answered before the "
    "application, without a problem body)",
    415: "The body is not application/json",
    422: "Invalid fields, each named in errors",
    429: "Too many attempts; wait for Retry-After",
    500: "An unexpected error; quote the request id",
    503: "The database is unreachable and nothing was stored; retry later (after Retry-After "
    "seconds when given)",
}

RETRY_AFTER = {
    "description": "Seconds to wait before retrying",
    "schema": {"type": "integer", "minimum": 0},
}


def _response_name(status: int) -> str:
    return http.HTTPStatus(status).name


def _response(status: int) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": _DESCRIPTIONS.get(status, http.HTTPStatus(status).phrase)
    }
    if status != 414:
        response["content"] = {PROBLEM_MIMETYPE: {"schema": dict(PROBLEM_REF)}}
    return response


def statuses_of(
    method: str, operation: dict[str, Any], path: str, path_parameters: list[Any]
) -> set[int]:
    """The error statuses the layers around the view can answer for this operation."""
    statuses = {414, 500, 503}
    parameters = [*path_parameters, *operation.get("parameters", [])]
    if method in {"post", "put", "patch"}:
        statuses |= {400, 413, 415}  # any body sent is checked before the view (backend/__init__)
    if "requestBody" in operation:
        statuses |= {400, 413, 415, 422}
    if any(p.get("in") in {"query", "header"} for p in parameters if isinstance(p, dict)):
        statuses.add(422)
    if "{" in path:
        statuses.add(404)
    if operation.get("security", [{"bearerAuth": []}]):
        statuses |= {401, 404}
    return statuses


def _complete_responses(spec: dict[str, Any]) -> None:
    responses = spec.setdefault("components", {}).setdefault("responses", {})
    responses.pop("DEFAULT_ERROR", None)
    for path, item in spec.get("paths", {}).items():
        for method in METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            documented = operation.setdefault("responses", {})
            documented.pop("default", None)
            parameters = item.get("parameters", [])
            for status in sorted(statuses_of(method, operation, path, parameters)):
                name = _response_name(status)
                documented.setdefault(str(status), {"$ref": f"#/components/responses/{name}"})
                responses.setdefault(name, _response(status))
            operation["responses"] = dict(sorted(documented.items()))
    for name, response in responses.items():
        if name == _response_name(414):
            response.pop("content", None)
        if name == _response_name(503):
            response.setdefault("headers", {"Retry-After": copy.deepcopy(RETRY_AFTER)})
        status = http.HTTPStatus[name].value
        if status in _DESCRIPTIONS:
            response["description"] = _DESCRIPTIONS[status]


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


class _Enums:
    """Named enumeration components, one per list of values."""

    def __init__(self, schemas: dict[str, Any]) -> None:
        self.schemas = schemas
        self.values: dict[str, list[Any]] = {}

    def name(self, prop: str, schema: dict[str, Any]) -> str:
        name = str(schema.pop("x-enum-name", None) or _camel(prop))
        values = [v for v in schema["enum"] if v is not None]
        known = self.values.setdefault(name, values)
        if known != values:
            raise ValueError(
                f"two enumerations are named {name}: {known} and {values}; give one of the "
                "fields metadata={'x-enum-name': ...}"
            )
        self.schemas.setdefault(name, {"type": schema.get("type", "string"), "enum": values})
        return name

    def replace(self, prop: str, schema: dict[str, Any]) -> dict[str, Any]:
        """The property schema with its enum as a reference (nullable kept beside it)."""
        if "enum" not in schema or schema.get("type", "string") != "string":
            return schema
        name = self.name(prop, schema)
        rest = {k: v for k, v in schema.items() if k not in {"enum", "type", "nullable"}}
        ref = {"$ref": f"#/components/schemas/{name}"}
        if schema.get("nullable"):
            return {**rest, "nullable": True, "allOf": [ref]}
        if rest:
            return {**rest, "allOf": [ref]}
        return ref


def _nullable_reference(schema: dict[str, Any]) -> dict[str, Any]:
    """apispec's nullable nested object (``anyOf`` of ``{type: object, nullable}`` and a
    reference) as ``nullable`` beside ``allOf`` of the reference: a generated client then has
    ``UserRef | None`` rather than a ``...Type0Type0`` class for the null branch."""
    branches = schema.get("anyOf")
    if not isinstance(branches, list) or len(branches) != 2:
        return schema
    refs = [b for b in branches if "$ref" in b]
    nulls = [b for b in branches if b == {"type": "object", "nullable": True}]
    if len(refs) != 1 or len(nulls) != 1:
        return schema
    rest = {k: v for k, v in schema.items() if k != "anyOf"}
    return {**rest, "nullable": True, "allOf": refs}


def _name_enums(spec: dict[str, Any]) -> None:
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    enums = _Enums(schemas)
    for schema in list(schemas.values()):
        for prop, value in list(schema.get("properties", {}).items()):
            value = schema["properties"][prop] = _nullable_reference(value)
            if value.get("type") == "array" and isinstance(value.get("items"), dict):
                value["items"] = enums.replace(prop, value["items"])
            else:
                schema["properties"][prop] = enums.replace(prop, value)
    for item in spec.get("paths", {}).values():
        for method in METHODS:
            for parameter in (item.get(method) or {}).get("parameters", []):
                if isinstance(parameter, dict) and "schema" in parameter:
                    parameter["schema"] = enums.replace(parameter["name"], parameter["schema"])


def finish(spec: dict[str, Any]) -> dict[str, Any]:
    """The document flask-smorest built, with every status and named enums (a copy)."""
    spec = copy.deepcopy(spec)
    _complete_responses(spec)
    _name_enums(spec)
    return spec
