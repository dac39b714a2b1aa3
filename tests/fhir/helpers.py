"""Reading FHIR as a client would: follow paging links, run an export to its files, validate
with fhir.resources (R4B) and check our codes against our CodeSystems."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from tests.fhir.conftest import FHIR

PREFER = {"Prefer": "respond-async", "Accept": "application/fhir+json"}


def validate(resource: dict[str, Any]) -> None:
    """Raise unless ``resource`` validates as its type against the R4B structure definitions."""
    from fhir.resources.R4B import get_fhir_model_class

    get_fhir_model_class(resource["resourceType"]).model_validate(resource)


def shape(node: Any, prefix: str = "") -> frozenset[str]:
    """The JSON paths (keys, not indices) of a resource: resources of one shape validate alike."""
    paths: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            paths.add(f"{prefix}/{key}")
            paths |= shape(value, f"{prefix}/{key}")
    elif isinstance(node, list):
        for value in node:
            paths |= shape(value, prefix)
    return frozenset(paths)


def validate_all(resources: list[dict[str, Any]]) -> int:
    """Validate one resource of every distinct shape (thousands alike would take a minute for
    nothing more); the number validated."""
    seen: set[frozenset[str]] = set()
    for resource in resources:
        key = shape(resource) | {resource["resourceType"]}
        if key not in seen:
            seen.add(key)
            validate(resource)
    return len(seen)


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def search_all(client: Any, headers: dict[str, str], query: str) -> list[dict[str, Any]]:
    """Every resource of a search, following the Bundle's next links."""
    out: list[dict[str, Any]] = []
    url: str | None = f"{FHIR}/{query}"
    while url:
        response = client.get(url, headers=headers)
        assert response.status_code == 200, response.get_json()
        bundle = response.get_json()
        validate({**bundle, "entry": bundle.get("entry", [])[:1]})
        out += [entry["resource"] for entry in bundle.get("entry", [])]
        nxt = [link["url"] for link in bundle["link"] if link["relation"] == "next"]
        url = path_of(nxt[0]) if nxt else None
    validate_all(out)
    return out


def codings(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if "system" in node and "code" in node:
            yield node
        for value in node.values():
            yield from codings(value)
    elif isinstance(node, list):
        for value in node:
            yield from codings(value)


def our_code_systems(client: Any, headers: dict[str, str]) -> dict[str, set[str]]:
    systems = search_all(client, headers, "CodeSystem")
    return {cs["url"]: {c["code"] for c in cs["concept"]} for cs in systems}


EXTERNAL = {
    "http://loinc.org": {"72514-3", "59284-0"},
    "http://terminology.hl7.org/CodeSystem/consentscope": {"research", "treatment"},
    "http://terminology.hl7.org/CodeSystem/v3-ObservationValue": {"PSEUDED"},
    "http://terminology.hl7.org/CodeSystem/v2-0203": {"MR"},
    "urn:ietf:bcp:47": {"fr", "en"},
}


def unknown_codes(resources: list[dict[str, Any]], systems: dict[str, set[str]]) -> list[Any]:
    """Codings whose system is neither one of ours nor a verified external one, or whose code
    is not in its system."""
    allowed = {**systems, **EXTERNAL}
    bad = []
    for resource in resources:
        for c in codings(resource):
            if c["system"] not in allowed or c["code"] not in allowed[c["system"]]:
                bad.append((resource["resourceType"], c["system"], c["code"]))
    return bad


def run_export(
    client: Any, headers: dict[str, str], group: str, now: Any, query: str = ""
) -> dict[str, list[dict[str, Any]]]:
    """Kick off, poll (202), run the scheduler's job, poll (200), download every file."""
    from backend.fhir.bulk import run_exports

    kick = client.get(f"{FHIR}/Group/{group}/$export{query}", headers={**headers, **PREFER})
    assert kick.status_code == 202, kick.get_json()
    status_url = path_of(kick.headers["Content-Location"])
    poll = client.get(status_url, headers=headers)
    assert poll.status_code == 202 and poll.headers["X-Progress"] and poll.headers["Retry-After"]
    assert run_exports(now) == 1
    done = client.get(status_url, headers=headers)
    assert done.status_code == 200, done.get_data(as_text=True)
    manifest = done.get_json()
    assert manifest["requiresAccessToken"] is True and manifest["error"] == []
    assert manifest["transactionTime"] and manifest["request"].endswith(f"$export{query}")
    files: dict[str, list[dict[str, Any]]] = {}
    for output in manifest["output"]:
        response = client.get(path_of(output["url"]), headers=headers)
        assert response.status_code == 200
        assert response.mimetype == "application/fhir+ndjson"
        lines = response.get_data(as_text=True).splitlines()
        assert len(lines) == output["count"]
        assert output["type"] not in files, "one file per type"
        files[output["type"]] = [json.loads(line) for line in lines]
        assert {r["resourceType"] for r in files[output["type"]]} == {output["type"]}
        validate_all(files[output["type"]])
    files["_status_url"] = status_url  # type: ignore[assignment]
    return files
