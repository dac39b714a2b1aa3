"""Every error under /api is an RFC 9457 problem; a 500 shows no internals."""

from __future__ import annotations

import pytest
from werkzeug.exceptions import HTTPException

from tests.conftest import bearer, login, make_staff

PROBLEM = "application/problem+json"


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.content_type == PROBLEM
    body = response.get_json()
    assert body["status"] == status
    assert body["title"] and body["type"]
    assert body["request_id"] == response.headers["X-Request-ID"]
    return body


def test_400_for_a_body_that_is_not_valid_json(client):
    response = client.post("/api/v1/auth/login", data="{not json", content_type="application/json")
    assert "not valid JSON" in assert_problem(response, 400)["detail"]


def test_401_without_a_token(client):
    assert_problem(client.get("/api/v1/users"), 401)


def test_403_for_a_role_that_may_not(client, ada_headers):
    assert_problem(client.get("/api/v1/users", headers=ada_headers), 403)


def test_404_for_an_unknown_path(client):
    assert_problem(client.get("/api/v1/no-such-thing"), 404)


def test_405_names_the_allowed_methods(client):
    response = client.delete("/api/v1/health")
    assert_problem(response, 405)
    assert "GET" in response.headers["Allow"]


def test_409_for_a_duplicate_email(client, app):
    admin = make_staff("iris@lyon.example", "admin", "LYON")
    headers = bearer(login(client, admin)["access_token"])
    body = {"email": "iris@lyon.example", "password": "a-long-enough-password", "role": "nurse"}
    assert_problem(client.post("/api/v1/users", json=body, headers=headers), 409)


def test_415_for_a_body_that_is_not_json(client):
    response = client.post(
        "/api/v1/auth/login",
        data="email=a&password=b",
        content_type="application/x-www-form-urlencoded",
    )
    assert_problem(response, 415)


def test_422_lists_every_bad_field_with_a_pointer_and_refuses_unknown_fields(client):
    response = client.post(
        "/api/v1/auth/login", json={"email": "x", "role": "admin", "site": "LYON"}
    )
    body = assert_problem(response, 422)
    pointers = {e["pointer"] for e in body["errors"]}
    assert pointers == {"/email", "/password", "/role", "/site"}
    assert all(e["detail"] for e in body["errors"])


def test_422_names_a_bad_query_parameter_as_a_parameter(app):
    from backend.errors import webargs_errors

    errors = webargs_errors(
        {
            "query": {"limit": ["Must be at most 200."]},
            "json": {"answers": {"pain_walking": ["Too high."]}},
        }
    )
    assert errors == [
        {"parameter": "limit", "detail": "Must be at most 200."},
        {"pointer": "/answers/pain_walking", "detail": "Too high."},
    ]


def test_500_shows_no_internals_and_a_request_id_to_quote(app):
    @app.get("/api/v1/boom")
    def boom():
        raise RuntimeError("secret internals: SELECT * FROM patients")

    response = app.test_client().get("/api/v1/boom")
    body = assert_problem(response, 500)
    text = response.get_data(as_text=True)
    assert "secret internals" not in text and "Traceback" not in text
    assert len(body["request_id"]) >= 8


def test_a_client_request_id_is_echoed_and_a_bad_one_replaced(client):
    good = client.get("/api/v1/health", headers={"X-Request-ID": "abc12345-lb"})
    assert good.headers["X-Request-ID"] == "abc12345-lb"
    bad = client.get("/api/v1/health", headers={"X-Request-ID": "<script>"})
    assert bad.headers["X-Request-ID"] != "<script>"


def test_pages_outside_the_api_get_html_errors(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert response.content_type.startswith("text/html")


@pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 409, 415, 422, 429, 500, 503])
def test_every_documented_error_status_renders_as_a_problem(app, status):
    from backend.errors import Problem

    @app.get(f"/api/v1/raise/{status}")
    def raiser():
        raise Problem("said", status=status, title=HTTPException.__name__)

    assert_problem(app.test_client().get(f"/api/v1/raise/{status}"), status)
