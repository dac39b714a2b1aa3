"""Health, the OpenAPI document and its browsable docs."""

from __future__ import annotations

import re

from openapi_spec_validator import validate

from backend import create_app
from backend.clock import FrozenClock
from tests.conftest import T0


def test_health_is_ok_with_the_database_reachable(client):
    response = client.get("/api/v1/health")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok"}


def test_health_answers_503_problem_when_the_database_is_down(tmp_path):
    # A PostgreSQL URL where nothing listens: the app starts, the health check says why not.
    app = create_app(
        {
            "APP_ENV": "testing",
            "CLOCK": FrozenClock(T0),
            "DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=1",
        }
    )
    response = app.test_client().get("/api/v1/health")
    assert response.status_code == 503
    assert response.content_type == "application/problem+json"
    assert response.get_json()["database"] == "unreachable"


def test_the_openapi_document_validates_and_lists_each_problem_response_without_a_default(
    client,
):
    spec = client.get("/api/v1/openapi.json").get_json()
    validate(spec)
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    problem = spec["components"]["responses"]["UNAUTHORIZED"]["content"]
    assert list(problem) == ["application/problem+json"]
    outage = spec["components"]["responses"]["SERVICE_UNAVAILABLE"]
    assert list(outage["content"]) == ["application/problem+json"]
    assert outage["headers"]["Retry-After"]["schema"]["type"] == "integer"
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if method == "parameters":
                continue
            codes = set(operation["responses"])
            assert "default" not in codes, f"{method} {path} hides its problems behind default"
            assert {"414", "500", "503"} <= codes, (method, path)  # 503: the database down
            assert operation.get("summary"), f"{method} {path} has no summary"
            if operation.get("security", spec["security"]):
                assert "401" in codes, f"{method} {path} does not document its 401"
            if "requestBody" in operation:
                assert {"400", "413", "415", "422"} <= codes, f"{method} {path}: body problems"
            if "{" in path:
                assert "404" in codes, f"{method} {path} does not document its 404"


def test_nullable_enumerations_are_named_components_beside_nullable(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    schemas = spec["components"]["schemas"]
    analgesics = schemas["Baseline"]["properties"]["analgesics"]
    assert analgesics == {"nullable": True, "allOf": [{"$ref": "#/components/schemas/Analgesics"}]}
    assert schemas["Analgesics"] == {
        "type": "string",
        "enum": ["none", "non_opioid", "weak_opioid", "strong_opioid"],
    }
    # One name, one list: the patient's and the alert's statuses are two components.
    assert "active" in schemas["PatientStatus"]["enum"]
    assert "acknowledged" in schemas["AlertStatus"]["enum"]


def test_every_api_route_is_in_the_openapi_document(app, client):
    spec = client.get("/api/v1/openapi.json").get_json()
    documented = {
        (path, method.upper())
        for path, ops in spec["paths"].items()
        for method in ops
        if method != "parameters"
    }
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/") or rule.endpoint.startswith("api-docs"):
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (path, method) in documented, f"{method} {path} missing from OpenAPI"


def test_the_browsable_docs_are_served_with_their_own_assets(client):
    response = client.get("/api/v1/docs")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "/api/v1/docs/assets/swagger-ui-bundle.js" in page
    assert "cdn." not in page  # works on a hospital network without internet access
    for asset in ("swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "swagger-ui.css"):
        served = client.get(f"/api/v1/docs/assets/{asset}")
        assert served.status_code == 200 and len(served.data) > 10_000, asset
        served.close()
