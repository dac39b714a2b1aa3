"""Signing in to the pages: the cookie, the session behind it, CSRF, rate limits, the audit."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from backend import create_app
from backend.audit.models import AuditEvent
from backend.auth.models import AuthSession, User
from backend.extensions import db
from tests.conftest import Staff, login
from tests.web.conftest import Pages


@pytest.fixture
def app_config() -> dict[str, Any]:
    return {
        "LOGIN_LIMIT_PER_ACCOUNT_AND_ADDRESS": "2 per 15 minutes",
        "LOGIN_LIMIT_PER_ADDRESS": "4 per 15 minutes",
    }


def audit(action: str) -> list[AuditEvent]:
    return list(
        db.session.execute(
            db.select(AuditEvent).filter_by(action=action).order_by(AuditEvent.occurred_at)
        ).scalars()
    )


def test_pages_send_an_anonymous_visitor_to_the_sign_in_page_and_back(pages, nurse_ada):
    response = pages.get("/patients")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=/patients")
    signed_in = pages.post(
        "/login",
        {"email": nurse_ada.email, "password": nurse_ada.password, "next": "/patients"},
    )
    assert (signed_in.status_code, signed_in.headers["Location"]) == (303, "/patients")


def test_a_nurse_signs_in_with_her_staff_account_and_lands_on_the_queue(pages, nurse_ada):
    response = pages.sign_in(nurse_ada)
    assert (response.status_code, response.headers["Location"]) == (303, "/")
    queue = pages.get("/")
    assert queue.status_code == 200 and "Alert queue" in pages.text(queue)
    [success] = [e for e in audit("auth.login") if e.outcome == "success"]
    assert success.actor_id == nurse_ada.id


def test_the_cookie_holds_an_auth_session_of_the_database(pages, nurse_ada):
    pages.sign_in(nurse_ada)
    [auth_session] = db.session.execute(
        db.select(AuthSession).filter_by(user_id=nurse_ada.id)
    ).scalars()
    with pages.client.session_transaction() as cookie:
        assert cookie["auth_session_id"] == str(auth_session.id)
        assert cookie["staff_user_id"] == str(nurse_ada.id)


def test_the_session_cookie_is_httponly_and_samesite(pages, nurse_ada):
    cookie = pages.sign_in(nurse_ada).headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # tests and development run on plain http://127.0.0.1


def test_the_session_cookie_is_secure_in_production(sqlite_url):
    app = create_app(
        {
            "APP_ENV": "production",
            "DATABASE_URL": sqlite_url,
            "SECRET_KEY": "p" * 48,
            "REDIS_URL": "redis://127.0.0.1:6379/15",
        }
    )
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"


def test_a_wrong_password_is_refused_and_audited(pages, nurse_ada):
    response = pages.sign_in(nurse_ada, password="not-the-password")
    assert response.status_code == 401
    assert "Wrong e-mail or password." in pages.text(response)
    assert pages.get("/").status_code == 302  # still signed out
    [failure] = [e for e in audit("auth.login") if e.outcome == "failure"]
    assert failure.details == {"reason": "bad_password"}


def test_failed_sign_ins_are_rate_limited_like_the_api(pages, nurse_ada):
    for _ in range(2):
        assert pages.sign_in(nurse_ada, password="wrong-password").status_code == 401
    refused = pages.sign_in(nurse_ada)  # even the right password: the account is paused
    assert refused.status_code == 429
    assert "Retry-After" in refused.headers
    assert "Too many failed sign-ins" in pages.text(refused)


def test_the_api_and_the_pages_draw_on_one_budget_of_failures(pages, client, nurse_ada):
    wrong = {"email": nurse_ada.email, "password": "wrong-password"}
    assert client.post("/api/v1/auth/login", json=wrong).status_code == 401
    assert pages.sign_in(nurse_ada, password="wrong-password").status_code == 401
    assert client.post("/api/v1/auth/login", json=wrong).status_code == 429
    assert pages.sign_in(nurse_ada).status_code == 429


def test_a_form_posted_without_its_csrf_token_is_refused(pages, nurse_ada):
    response = pages.client.post(
        "/login", data={"email": nurse_ada.email, "password": nurse_ada.password}
    )
    assert response.status_code == 400
    assert "The form was refused" in pages.text(response)
    assert response.mimetype == "text/html"


def test_a_csrf_token_of_another_session_is_refused(client, any_app: Flask, nurse_ada):
    stranger = Pages(any_app.test_client())
    token = stranger.token()
    response = client.post(
        "/login",
        data={"email": nurse_ada.email, "password": nurse_ada.password, "csrf_token": token},
    )
    assert response.status_code == 400


def test_the_api_takes_no_csrf_token(client, nurse_ada):
    assert login(client, nurse_ada)["access_token"]


def test_signing_out_revokes_the_session_in_the_database(pages, nurse_ada):
    pages.sign_in(nurse_ada)
    with pages.client.session_transaction() as cookie:
        stolen = dict(cookie)
    response = pages.post("/logout")
    assert (response.status_code, response.headers["Location"]) == (303, "/login?signed_out=1")
    [auth_session] = db.session.execute(
        db.select(AuthSession).filter_by(user_id=nurse_ada.id)
    ).scalars()
    assert auth_session.revoked_at is not None and auth_session.revoked_reason == "logout"
    assert [e.actor_id for e in audit("auth.logout")] == [nurse_ada.id]
    # A copy of the cookie taken before signing out opens nothing any more.
    with pages.client.session_transaction() as cookie:
        cookie.update(stolen)
    assert pages.get("/").status_code == 302


def test_a_deactivated_nurse_is_out_at_her_next_click(ada_pages, nurse_ada):
    assert ada_pages.get("/").status_code == 200
    user = db.session.get(User, nurse_ada.id)
    user.is_active = False
    db.session.commit()
    response = ada_pages.get("/")
    assert response.status_code == 302 and "ended=1" in response.headers["Location"]


def test_an_ended_session_answers_the_queue_refresh_with_401(ada_pages, nurse_ada):
    ada_pages.post("/logout")
    response = ada_pages.get("/queue/items", headers={"X-Requested-With": "fetch"})
    assert response.status_code == 401


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/", "/\\evil.example", "javascript:x"]
)
def test_after_sign_in_the_page_never_sends_the_nurse_to_another_site(pages, nurse_ada, target):
    response = pages.post(
        "/login", {"email": nurse_ada.email, "password": nurse_ada.password, "next": target}
    )
    assert response.headers["Location"] == "/"


def test_the_language_switch_works_before_signing_in(pages):
    pages.post("/language", {"language": "fr", "next": "/login"})
    assert "Se connecter" in pages.text(pages.get("/login", headers={"Accept-Language": "en"}))


def test_other_staff_roles_use_the_pages_too(pages, physician_leon: Staff):
    pages.sign_in(physician_leon)
    assert pages.get("/").status_code == 200
