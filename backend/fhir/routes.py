"""``/fhir/R4``: read-only FHIR R4 in ``application/fhir+json``, and the SMART token endpoint.

A plain Flask blueprint, not in the OpenAPI document (FHIR clients read the
CapabilityStatement at ``/fhir/R4/metadata``, which lists exactly what is served). Every error
under ``/fhir/R4`` is an OperationOutcome; the token endpoint answers OAuth 2 errors
(RFC 6749 section 5.2), as SMART Backend Services clients expect.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa
from flask import Blueprint, Response, current_app, json, request, stream_with_context, url_for
from werkzeug.exceptions import HTTPException

from backend.clock import utcnow
from backend.context import request_id
from backend.errors import Problem
from backend.extensions import db
from backend.fhir import bulk, codes, mapping, search
from backend.fhir.auth import SCOPES, OAuthError, Reader, authenticate, issue_token
from backend.fhir.errors import FHIR_JSON, FhirError, fhir_response, operation_outcome, render
from backend.fhir.models import BulkExport, BulkFileChunk
from backend.questionnaires.models import Instrument

bp = Blueprint("fhir", __name__)
PREFIX = "/fhir/R4"
NDJSON = "application/fhir+ndjson"
OUTPUT_FORMATS = {NDJSON, "application/ndjson", "ndjson"}
RETRY_AFTER_SECONDS = 10


def base_url() -> str:
    return request.url_root.rstrip("/") + PREFIX


# --- request checks ------------------------------------------------------------------------------


@bp.before_request
def _negotiate() -> None:
    """406 unless the client accepts FHIR JSON (a missing Accept accepts anything)."""
    if not request.path.startswith(PREFIX) or "/bulkfiles/" in request.path:
        return
    accept = request.accept_mimetypes
    if request.headers.get("Accept") and not (accept[FHIR_JSON] or accept["application/json"]):
        raise FhirError(406, f"Only {FHIR_JSON} is served.")


def _lenient() -> bool:
    return "handling=lenient" in request.headers.get("Prefer", "").replace(" ", "")


def _require_care(reader: Reader) -> None:
    if reader.access != "care":
        raise FhirError(
            403,
            "A research client reads through the research group's Bulk export only "
            f"(GET {PREFIX}/Group/<site>-research/$export).",
        )


# --- discovery -----------------------------------------------------------------------------------


@bp.get(f"{PREFIX}/metadata")
def metadata() -> Response:
    """The CapabilityStatement: what is served, exactly."""
    return fhir_response(capability_statement())


@bp.get(f"{PREFIX}/.well-known/smart-configuration")
def smart_configuration() -> Response:
    """SMART discovery: the token endpoint and what it accepts."""
    body = {
        "token_endpoint": url_for("fhir.token", _external=True),
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
        "grant_types_supported": ["client_credentials"],
        "scopes_supported": list(SCOPES),
        "capabilities": ["client-confidential-asymmetric"],
    }
    response = current_app.response_class(json.dumps(body), mimetype="application/json")
    return response


def capability_statement() -> dict[str, Any]:
    resources = []
    for name in search.SERVED_TYPES:
        params = sorted(search.allowed_params(name) - {"_format", "_cursor"})
        resources.append(
            {
                "type": name,
                "interaction": [{"code": "read"}, {"code": "search-type"}],
                "searchParam": [
                    {"name": p, "type": _param_type(p)} for p in params if p != "_count"
                ],
            }
        )
    resources.append(
        {
            "type": "Group",
            "operation": [
                {
                    "name": "export",
                    "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/"
                    "group-export",
                }
            ],
        }
    )
    return {
        "resourceType": "CapabilityStatement",
        "id": "ir-followup",
        "status": "active",
        "date": "2026-12-01",
        "publisher": "IR follow-up",
        "kind": "instance",
        "instantiates": ["http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data"],
        "software": {"name": "IR follow-up backend"},
        "implementation": {"description": "IR follow-up, read-only", "url": base_url()},
        "fhirVersion": "4.0.1",
        "format": [FHIR_JSON, "json"],
        "rest": [
            {
                "mode": "server",
                "documentation": "Read-only. care: identified, the caller's site; research: "
                "pseudonymised, consented patients only, by the research group's Bulk export.",
                "security": {
                    "extension": [
                        {
                            "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/"
                            "oauth-uris",
                            "extension": [
                                {"url": "token", "valueUri": url_for("fhir.token", _external=True)}
                            ],
                        }
                    ],
                    "service": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/"
                                    "restful-security-service",
                                    "code": "SMART-on-FHIR",
                                }
                            ]
                        }
                    ],
                    "description": "SMART Backend Services (private_key_jwt, RS384/ES384, "
                    "system/*.read) for systems; staff API access tokens for people.",
                },
                "resource": resources,
            }
        ],
    }


def _param_type(name: str) -> str:
    return {
        "_lastUpdated": "date",
        "patient": "reference",
        "url": "uri",
        "identifier": "token",
        "_id": "token",
        "version": "token",
    }.get(name, "string")


# --- SMART token endpoint ------------------------------------------------------------------------


@bp.post("/fhir/auth/token")
def token() -> Response:
    """Exchange a signed client assertion for a short-lived access token (RFC 7523)."""
    if request.mimetype != "application/x-www-form-urlencoded":
        return _oauth_error(
            OAuthError("invalid_request", "Send application/x-www-form-urlencoded.", 415)
        )
    try:
        body = issue_token(request.form, url_for("fhir.token", _external=True), utcnow())
    except OAuthError as error:
        return _oauth_error(error)  # an error: the unit of work keeps nothing of it
    response = current_app.response_class(json.dumps(body), mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


def _oauth_error(error: OAuthError) -> Response:
    response = current_app.response_class(
        json.dumps({"error": error.error, "error_description": error.description}),
        status=error.status,
        mimetype="application/json",
    )
    response.headers["Cache-Control"] = "no-store"
    return response


# --- read and search -----------------------------------------------------------------------------


def _bundle(name: str, presented: search.Presented, next_cursor: str | None) -> dict[str, Any]:
    base = base_url()
    args = [(k, v) for k in request.args for v in request.args.getlist(k) if k != "_cursor"]
    links = [{"relation": "self", "url": request.url}]
    if next_cursor:
        links.append(
            {
                "relation": "next",
                "url": f"{base}/{name}?{urlencode([*args, ('_cursor', next_cursor)])}",
            }
        )
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "link": links,
        "entry": [
            {
                "fullUrl": f"{base}/{resource['resourceType']}/{resource['id']}",
                "resource": resource,
                "search": {"mode": "match"},
            }
            for resource, _ in presented
        ],
    }


def _audit(reader: Reader, presented: search.Presented, now: datetime, via: str) -> None:
    for resource, patient_id in presented:
        if patient_id is None:
            continue
        reader.audit(
            "fhir.read",
            now=now,
            resource_type=resource["resourceType"],
            resource_id=resource["id"],
            patient_id=patient_id,
            details={"interaction": via},
        )


def _definitions_search(name: str, params: search.Params) -> search.Presented:
    if name == "Questionnaire":
        rows = db.session.execute(
            db.select(Instrument).order_by(Instrument.key, Instrument.version)
        ).scalars()
        resources = [mapping.questionnaire(i) for i in rows]
        if "url" in params.others:
            resources = [r for r in resources if r["url"] == params.others["url"]]
        if "version" in params.others:
            resources = [r for r in resources if r["version"] == params.others["version"]]
    else:
        resources = [
            codes.code_system_resource(n, concepts) for n, concepts in _code_systems().items()
        ]
        if "url" in params.others:
            resources = [r for r in resources if r["url"] == params.others["url"]]
    if params.ids:
        resources = [r for r in resources if r["id"] in params.ids]
    if params.updated:
        resources = [r for r in resources if _updated_matches(r, params.updated)]
    return [(r, None) for r in resources[: params.count]]


def _updated_matches(resource: dict[str, Any], conditions: list[tuple[str, datetime]]) -> bool:
    value = resource.get("meta", {}).get("lastUpdated")
    if value is None:
        return False
    when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    ops = {"gt": when.__gt__, "ge": when.__ge__, "lt": when.__lt__, "le": when.__le__}
    return all(ops[prefix](limit) for prefix, limit in conditions)


def _code_systems() -> dict[str, dict[str, str]]:
    from backend.auth.models import Site

    definitions = [i.definition for i in db.session.execute(db.select(Instrument)).scalars()]
    sites = db.session.execute(sa.select(Site.code, Site.name)).all()
    return codes.all_systems(definitions, sites)


def _type_or_404(name: str) -> str:
    if name not in search.SERVED_TYPES:
        raise FhirError(404, f"The resource type {name} is not served here (see metadata).")
    return name


def _run_search(name: str, args: Any) -> Response:
    now = utcnow()
    reader = authenticate(now)
    _require_care(reader)
    _type_or_404(name)
    params = search.parse_params(name, args, lenient=_lenient())
    if name in search.DEFINITION_TYPES:
        return fhir_response(_bundle(name, _definitions_search(name, params), None))
    typedef = search.TYPES[name]
    rows, next_cursor = search.search(typedef, reader.site_id, params)
    view = mapping.View("care", search.site_codes())
    presented = typedef.present(rows, view)
    _audit(reader, presented, now, "search")
    return fhir_response(_bundle(name, presented, next_cursor))


@bp.get(f"{PREFIX}/<string:name>")
def search_type(name: str) -> Response:
    """Search a type (``_id``, ``patient``, ``_lastUpdated``, ``_count``; keyset paging)."""
    return _run_search(name, request.args)


@bp.post(f"{PREFIX}/<string:name>/_search")
def search_type_post(name: str) -> Response:
    """Search by POST with form-encoded parameters (FHIR's ``_search``)."""
    if request.mimetype != "application/x-www-form-urlencoded":
        raise FhirError(415, "POST _search takes application/x-www-form-urlencoded.")
    return _run_search(name, request.form)


@bp.get(f"{PREFIX}/<string:name>/<string:resource_id>")
def read(name: str, resource_id: str) -> Response:
    """Read one resource of the caller's site."""
    now = utcnow()
    reader = authenticate(now)
    _require_care(reader)
    _type_or_404(name)
    if name in search.DEFINITION_TYPES:
        found = _definitions_search(name, search.Params(ids=[resource_id], count=search.MAX_COUNT))
        if not found:
            raise FhirError(404, f"{name}/{resource_id} is not known here.")
        return fhir_response(found[0][0])
    typedef = search.TYPES[name]
    row = search.read(typedef, reader.site_id, resource_id)
    presented = typedef.present([row], mapping.View("care", search.site_codes()))
    _audit(reader, presented, now, "read")
    return fhir_response(presented[0][0])


# --- Bulk Data -----------------------------------------------------------------------------------


def _system(reader: Reader) -> None:
    if reader.kind != "system":
        raise FhirError(403, "Bulk export is for registered systems (SMART Backend Services).")


@bp.get(f"{PREFIX}/Group/<string:group>/$export")
def export_kickoff(group: str) -> Response:
    """Kick off a Group export: 202 with Content-Location; the scheduler builds it."""
    now = utcnow()
    reader = authenticate(now)
    _system(reader)
    if "respond-async" not in request.headers.get("Prefer", ""):
        raise FhirError(400, "Bulk export needs the header Prefer: respond-async.")
    from backend.auth.models import Site

    site = db.session.get(Site, reader.site_id)
    assert site is not None
    if group != bulk.group_id(site.code, reader.access):
        raise FhirError(404, f"Group/{group} is not known here.")
    allowed = {"_type", "_since", "_outputFormat"}
    unknown = sorted(k for k in request.args if k not in allowed)
    if unknown and not _lenient():
        raise FhirError(
            400, f"Unsupported export parameters: {', '.join(unknown)}.", expression=unknown
        )
    output_format = request.args.get("_outputFormat", NDJSON)
    if output_format not in OUTPUT_FORMATS:
        raise FhirError(400, f"_outputFormat must be {NDJSON}.", expression=["_outputFormat"])
    offered = bulk.types_for(reader.access)
    types = list(offered)
    if request.args.get("_type"):
        types = [t.strip() for t in request.args["_type"].split(",") if t.strip()]
        bad = [t for t in types if t not in offered]
        if bad:
            raise FhirError(
                400,
                f"_type: {', '.join(bad)} not exported for this group; offered: "
                f"{', '.join(offered)}.",
                expression=["_type"],
            )
        types = [t for t in offered if t in types]
    since = (
        search.parse_instant(request.args["_since"], "_since")
        if request.args.get("_since")
        else None
    )
    if reader.access == "research" and not current_app.config.get("RESEARCH_PSEUDONYM_KEY"):
        raise FhirError(409, "RESEARCH_PSEUDONYM_KEY is not set: no research export without it.")
    job = BulkExport(
        client_id=reader.actor_id,
        site_id=reader.site_id,
        access=reader.access,
        group_id=group,
        types=types,
        since=since,
        request_url=request.url[:2000],
        status="pending",
        created_at=now,
        attempts=0,
    )
    db.session.add(job)
    db.session.flush()
    reader.audit(
        "fhir.export.requested",
        now=now,
        resource_type="fhir_bulk_export",
        resource_id=job.id,
        details={"group": group, "types": types},
    )
    return fhir_response(
        operation_outcome("Export accepted; poll Content-Location.", "informational",
                          severity="information"),
        202,
        {"Content-Location": f"{base_url()}/bulkstatus/{job.id}"},
    )  # fmt: skip


def _own_export(reader: Reader, export_id: uuid.UUID) -> BulkExport:
    job = db.session.get(BulkExport, export_id)
    if job is None or reader.kind != "system" or job.client_id != reader.actor_id:
        raise FhirError(404, "No such export.")
    return job


@bp.get(f"{PREFIX}/bulkstatus/<uuid:export_id>")
def export_status(export_id: uuid.UUID) -> Response:
    """Poll an export: 202 while it runs, 200 with the manifest when done."""
    now = utcnow()
    reader = authenticate(now)
    job = _own_export(reader, export_id)
    if job.status in {"pending", "running"}:
        response = fhir_response(
            operation_outcome(job.progress or job.status, "informational",
                              severity="information"),
            202,
            {"X-Progress": job.progress or "queued", "Retry-After": str(RETRY_AFTER_SECONDS)},
        )  # fmt: skip
        return response
    if job.status == "failed":
        return fhir_response(
            operation_outcome(f"The export failed: {job.error or 'error'}.", "exception"), 500
        )
    if job.status != "done" or (job.expires_at is not None and job.expires_at <= now):
        raise FhirError(404, "No such export (cancelled, or its files expired).")
    manifest = {
        "transactionTime": mapping.instant(job.transaction_time or job.finished_at or now),
        "request": job.request_url,
        "requiresAccessToken": True,
        "output": [
            {
                "type": name,
                "url": f"{base_url()}/bulkfiles/{job.id}/{name}.ndjson",
                "count": count,
            }
            for name, count in sorted(
                (job.counts or {}).items(), key=lambda item: list(job.types).index(item[0])
            )
        ],
        "error": [],
    }
    assert job.expires_at is not None
    expires = job.expires_at.strftime("%a, %d %b %Y %H:%M:%S GMT")
    response = current_app.response_class(json.dumps(manifest), mimetype="application/json")
    response.headers["Expires"] = expires
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.delete(f"{PREFIX}/bulkstatus/<uuid:export_id>")
def export_cancel(export_id: uuid.UUID) -> Response:
    """Cancel an export (or delete its files): 202."""
    now = utcnow()
    reader = authenticate(now)
    job = _own_export(reader, export_id)
    if job.status not in {"pending", "running", "done"}:
        raise FhirError(404, "No such export (already cancelled or expired).")
    updated = db.session.execute(
        sa.update(BulkExport)
        .where(BulkExport.id == job.id, BulkExport.status.in_(("pending", "running", "done")))
        .values(status="cancelled", finished_at=now, lease_until=None)
        .execution_options(synchronize_session=False)
    )
    if updated.rowcount == 1:  # type: ignore[attr-defined]
        db.session.execute(sa.delete(BulkFileChunk).where(BulkFileChunk.export_id == job.id))
    reader.audit(
        "fhir.export.cancelled", now=now, resource_type="fhir_bulk_export", resource_id=job.id
    )
    return fhir_response(
        operation_outcome("Export cancelled.", "informational", severity="information"), 202
    )


@bp.get(f"{PREFIX}/bulkfiles/<uuid:export_id>/<string:name>.ndjson")
def export_file(export_id: uuid.UUID, name: str) -> Response:
    """One NDJSON file of a finished export, streamed chunk by chunk."""
    now = utcnow()
    reader = authenticate(now)
    job = _own_export(reader, export_id)
    if (
        job.status != "done"
        or (job.expires_at is not None and job.expires_at <= now)
        or name not in (job.counts or {})
    ):
        raise FhirError(404, "No such file (cancelled, expired, or not in the manifest).")
    chunk_ids = list(
        db.session.execute(
            sa.select(BulkFileChunk.id)
            .where(BulkFileChunk.export_id == job.id, BulkFileChunk.resource_type == name)
            .order_by(BulkFileChunk.seq)
        ).scalars()
    )
    reader.audit(
        "fhir.export.download",
        now=now,
        resource_type="fhir_bulk_export",
        resource_id=job.id,
        details={"type": name},
    )

    def chunks() -> Iterator[str]:
        for chunk_id in chunk_ids:
            data = db.session.execute(
                sa.select(BulkFileChunk.data).where(BulkFileChunk.id == chunk_id)
            ).scalar()
            if data:
                yield data
        db.session.rollback()

    response = Response(stream_with_context(chunks()), mimetype=NDJSON)
    response.headers["Cache-Control"] = "no-store"
    return response


# --- everything else under /fhir/R4, and errors --------------------------------------------------


@bp.route(
    f"{PREFIX}/<path:rest>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"]
)  # fmt: skip
def unknown(rest: str) -> Response:
    """This server is read-only and serves what its CapabilityStatement lists."""
    if request.method != "GET":
        raise FhirError(405, "This FHIR server is read-only.", headers={"Allow": "GET"})
    raise FhirError(404, f"Nothing is served at {PREFIX}/{rest} (see metadata).")


@bp.route(PREFIX, methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def root() -> Response:
    if request.method != "GET":
        raise FhirError(405, "This FHIR server is read-only (no batch or transaction).")
    raise FhirError(404, f"See {PREFIX}/metadata.")


@bp.errorhandler(FhirError)
def _fhir_error(error: FhirError) -> Response:
    db.session.rollback()
    return render(error)


@bp.errorhandler(Problem)
def _problem(problem: Problem) -> Response:
    db.session.rollback()
    return render(FhirError(problem.status, problem.detail or problem.title,
                            headers=problem.headers))  # fmt: skip


@bp.errorhandler(HTTPException)
def _http_error(error: HTTPException) -> Response:
    db.session.rollback()
    status = error.code or 500
    return render(FhirError(status, error.description or error.name))


@bp.errorhandler(Exception)
def _unexpected(error: Exception) -> Response:
    db.session.rollback()
    if isinstance(error, sa.exc.OperationalError | sa.exc.InterfaceError | sa.exc.TimeoutError):
        return render(
            FhirError(503, "The database is unreachable; retry.", headers={"Retry-After": "30"})
        )
    current_app.log_exception((type(error), error, error.__traceback__))  # type: ignore[arg-type]
    return render(
        FhirError(500, f"An unexpected error occurred. Request id: {request_id() or '-'}.")
    )
