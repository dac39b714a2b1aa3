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


def test_a_client_cannot_choose_the_request_id_its_actions_are_audited_under(client, nurse_ada):
    from backend.audit.models import AuditEvent
    from backend.extensions import db

    for chosen in ("abc12345-lb", "<script>", "f" * 32, "x" * 5000):
        response = client.post(
            "/api/v1/auth/login",
            json={"email": nurse_ada.email, "password": "wrong-password-x"},
            headers={"X-Request-ID": chosen},
        )
        assert response.headers["X-Request-ID"] != chosen
        assert len(response.headers["X-Request-ID"]) == 32
    stored = {
        e.request_id
        for e in db.session.execute(db.select(AuditEvent).filter_by(action="auth.login")).scalars()
    }
    assert len(stored) == 4
    assert not stored & {"abc12345-lb", "<script>", "f" * 32}
    assert all(len(r) == 32 for r in stored)


@pytest.fixture
def behind_a_proxy(app):
    app.config["TRUSTED_PROXIES"] = 1


def test_behind_a_trusted_proxy_its_request_id_is_kept_when_it_is_one(client, behind_a_proxy):
    nginx = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
    kept = client.get("/api/v1/health", headers={"X-Request-ID": nginx})
    assert kept.headers["X-Request-ID"] == nginx
    uuid_like = "123e4567-e89b-42d3-a456-426614174000"
    assert (
        client.get("/api/v1/health", headers={"X-Request-ID": uuid_like}).headers["X-Request-ID"]
        == uuid_like
    )
    forged = client.get("/api/v1/health", headers={"X-Request-ID": "patient-42;drop"})
    assert forged.headers["X-Request-ID"] != "patient-42;drop"


def test_a_500_logs_the_route_template_and_no_request_data(app, caplog):
    import logging

    @app.post("/api/v1/boom/<uuid:patient_id>")
    def boom_patient(patient_id):
        raise ValueError(f"invalid input value 'Dupont' for patient {patient_id}")

    caplog.set_level(logging.INFO)
    patient_id = "3b7f0c2e-1111-4aaa-8bbb-123456789abc"
    response = app.test_client().post(
        f"/api/v1/boom/{patient_id}", json={"comment": "Marcel Dupont, douleur"}
    )
    assert response.status_code == 500
    (line,) = [r for r in caplog.records if r.getMessage() == "unhandled error"]
    assert line.route == "/api/v1/boom/<uuid:patient_id>" and line.error_type == "ValueError"
    assert line.frames and "boom_patient" in line.frames[-1]
    assert patient_id not in caplog.text
    assert "Dupont" not in caplog.text and "douleur" not in caplog.text
    assert line.exc_info is None  # no traceback text (it would end with the message)


def _down_app(**extra):
    from backend import create_app
    from backend.clock import FrozenClock
    from tests.conftest import T0

    return create_app(
        {
            "APP_ENV": "testing",
            "CLOCK": FrozenClock(T0),
            "DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=1",
            **extra,
        }
    )


def test_while_the_database_is_down_the_api_answers_503_with_retry_after():
    client = _down_app().test_client()
    login = client.post(
        "/api/v1/auth/login", json={"email": "ada@lyon.example", "password": "long-enough-pw"}
    )
    body = assert_problem(login, 503)
    assert int(login.headers["Retry-After"]) > 0 and "database" in body["detail"]
    token_protected = client.get("/api/v1/alerts", headers={"Authorization": "Bearer x.y.z"})
    assert token_protected.status_code == 401  # a bad token needs no database


def test_while_the_database_is_down_the_pages_answer_503_too():
    client = _down_app().test_client()
    with client.session_transaction() as session:
        session["staff_user_id"] = "3b7f0c2e-1111-4aaa-8bbb-123456789abc"
        session["auth_session_id"] = "3b7f0c2e-2222-4aaa-8bbb-123456789abc"
    page = client.get("/patients")
    assert page.status_code == 503 and page.content_type.startswith("text/html")
    assert int(page.headers["Retry-After"]) > 0


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
