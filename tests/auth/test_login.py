"""Staff sign-in: login, token expiry, refresh rotation and reuse, logout, rate limits, audit."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from backend.audit.models import AuditEvent
from backend.extensions import db
from tests.conftest import bearer, login


def audit_rows(action: str) -> list[AuditEvent]:
    return list(
        db.session.execute(
            db.select(AuditEvent).filter_by(action=action).order_by(AuditEvent.occurred_at)
        ).scalars()
    )


def test_login_returns_a_token_pair_and_the_user(client, nurse_ada):
    body = login(client, nurse_ada)
    assert body["token_type"] == "Bearer"
    assert 0 < body["expires_in"] <= 900
    assert body["user"]["email"] == "ada@lyon.example"
    assert body["user"]["role"] == "nurse"
    assert body["user"]["site"]["code"] == "LYON"
    assert body["access_token"] != body["refresh_token"]


def test_login_is_case_insensitive_on_the_email(client, nurse_ada):
    response = client.post(
        "/api/v1/auth/login", json={"email": "ADA@Lyon.Example", "password": nurse_ada.password}
    )
    assert response.status_code == 200


def test_unknown_email_and_wrong_password_get_the_same_401(client, nurse_ada):
    unknown = client.post(
        "/api/v1/auth/login", json={"email": "nobody@lyon.example", "password": nurse_ada.password}
    )
    wrong = client.post(
        "/api/v1/auth/login", json={"email": nurse_ada.email, "password": "not-her-password-at-all"}
    )
    assert unknown.status_code == wrong.status_code == 401
    strip = {"request_id"}
    assert {k: v for k, v in unknown.get_json().items() if k not in strip} == {
        k: v for k, v in wrong.get_json().items() if k not in strip
    }
    assert unknown.content_type == "application/problem+json"


def test_login_successes_and_failures_are_audited(client, nurse_ada):
    client.post("/api/v1/auth/login", json={"email": nurse_ada.email, "password": "wrong-one-x"})
    client.post("/api/v1/auth/login", json={"email": "ghost@x.example", "password": "whatever1"})
    login(client, nurse_ada)
    rows = audit_rows("auth.login")
    assert [(r.outcome, r.details.get("reason")) for r in rows] == [
        ("failure", "bad_password"),
        ("failure", "unknown_email"),
        ("success", None),
    ]
    assert rows[0].actor_id == nurse_ada.id and rows[2].actor_id == nurse_ada.id
    assert all(r.request_id and r.client_addr for r in rows)
    assert "wrong-one-x" not in str([r.details for r in rows])  # never the password itself


def test_an_access_token_stops_working_when_it_expires(client, nurse_ada, clock):
    admin_like = bearer(login(client, nurse_ada)["access_token"])
    assert client.get("/api/v1/users", headers=admin_like).status_code == 403  # valid, wrong role
    clock.advance(timedelta(seconds=901))
    response = client.get("/api/v1/users", headers=admin_like)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_tampered_access_token_is_refused(client, nurse_ada):
    token = login(client, nurse_ada)["access_token"]
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert client.get("/api/v1/users", headers=bearer(tampered)).status_code == 401


def test_refresh_rotates_the_token_and_the_old_one_stops_working(client, nurse_ada):
    first = login(client, nurse_ada)
    second = client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200
    pair = second.get_json()
    assert pair["refresh_token"] != first["refresh_token"]
    third = client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert third.status_code == 200


def test_reusing_a_rotated_refresh_token_revokes_the_whole_chain(client, nurse_ada):
    first = login(client, nurse_ada)
    rotated = client.post(
        "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}
    ).get_json()
    # An attacker replays the first token: refused, and the legitimate chain dies with it.
    replay = client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert replay.status_code == 401
    latest = client.post("/api/v1/auth/refresh", json={"refresh_token": rotated["refresh_token"]})
    assert latest.status_code == 401
    # The access token of the revoked session stops at once, not at its expiry.
    me = client.get("/api/v1/users", headers=bearer(rotated["access_token"]))
    assert me.status_code == 401
    assert audit_rows("auth.refresh")[-1].details["reason"] == "rotated_token_reused"


def test_a_refresh_token_expires(client, nurse_ada, clock):
    pair = login(client, nurse_ada)
    clock.advance(timedelta(days=15))
    response = client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert response.status_code == 401


def test_logout_revokes_the_refresh_token_and_its_access_tokens(client, nurse_ada):
    pair = login(client, nurse_ada)
    assert (
        client.post(
            "/api/v1/auth/logout", json={"refresh_token": pair["refresh_token"]}
        ).status_code
        == 204
    )
    assert (
        client.post(
            "/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}
        ).status_code
        == 401
    )
    assert client.get("/api/v1/users", headers=bearer(pair["access_token"])).status_code == 401


def test_a_deactivated_user_loses_access_at_once(client, nurse_ada):
    from backend.auth.models import User

    headers = bearer(login(client, nurse_ada)["access_token"])
    db.session.get(User, nurse_ada.id).is_active = False
    db.session.commit()
    assert client.get("/api/v1/users", headers=headers).status_code == 401


@pytest.fixture
def app_config():
    return {
        "LOGIN_LIMIT_PER_ACCOUNT_AND_ADDRESS": "3 per 15 minutes",
        "LOGIN_LIMIT_PER_ADDRESS": "5 per 15 minutes",
        "LOGIN_LIMIT_PER_ACCOUNT": "8 per day",
    }


def _from(address: str) -> dict[str, Any]:
    return {"environ_base": {"REMOTE_ADDR": address}}


def _wrong(client, staff, address: str) -> int:
    body = {"email": staff.email, "password": "wrong-password-x"}
    return client.post("/api/v1/auth/login", json=body, **_from(address)).status_code


def _right(client, staff, address: str) -> int:
    body = {"email": staff.email, "password": staff.password}
    return client.post("/api/v1/auth/login", json=body, **_from(address)).status_code


def test_failures_from_one_address_do_not_lock_the_nurse_out_from_another(client, nurse_ada):
    """An attacker at address A guessing Ada's password is stopped; Ada at B signs in."""
    assert [_wrong(client, nurse_ada, "203.0.113.7") for _ in range(3)] == [401, 401, 401]
    assert _wrong(client, nurse_ada, "203.0.113.7") == 429
    assert _right(client, nurse_ada, "203.0.113.7") == 429  # A stays throttled, even when right
    assert _right(client, nurse_ada, "10.1.2.3") == 200


def test_guessing_from_many_addresses_is_bounded_but_spares_the_nurses_usual_address(
    client, nurse_ada
):
    assert _right(client, nurse_ada, "10.1.2.3") == 200  # Ada's ward computer, now known
    codes = [_wrong(client, nurse_ada, f"198.51.100.{i // 2}") for i in range(10)]
    assert codes[:8] == [401] * 8 and codes[8:] == [429, 429]  # 8 per day over new addresses
    assert _right(client, nurse_ada, "192.0.2.99") == 429  # a new address waits
    assert _right(client, nurse_ada, "10.1.2.3") == 200  # her usual one never does


def test_a_nurses_failures_on_the_pages_and_the_api_share_the_pair_budget(client, nurse_ada):
    from tests.web.conftest import Pages

    assert [_wrong(client, nurse_ada, "203.0.113.8") for _ in range(2)] == [401, 401]
    client.environ_base["REMOTE_ADDR"] = "203.0.113.8"
    assert Pages(client).sign_in(nurse_ada, password="nope-nope-nope").status_code == 401
    assert _wrong(client, nurse_ada, "203.0.113.8") == 429


def test_the_limiter_logs_neither_the_address_nor_a_plain_hash_of_the_email(
    client, nurse_ada, caplog
):
    import hashlib
    import logging

    caplog.set_level(logging.DEBUG)
    for _ in range(5):
        _wrong(client, nurse_ada, "203.0.113.9")
    assert "exceeded" in caplog.text  # the limiter did log its refusals
    plain = hashlib.sha256(nurse_ada.email.encode()).hexdigest()
    assert "203.0.113.9" not in caplog.text
    assert plain[:16] not in caplog.text
    assert nurse_ada.email not in caplog.text


def test_repeated_failures_on_one_account_are_rate_limited_with_retry_after(client, nurse_ada):
    for _ in range(3):
        bad = client.post(
            "/api/v1/auth/login", json={"email": nurse_ada.email, "password": "wrong-password-x"}
        )
        assert bad.status_code == 401
    limited = client.post(
        "/api/v1/auth/login", json={"email": nurse_ada.email, "password": nurse_ada.password}
    )
    assert limited.status_code == 429
    assert limited.content_type == "application/problem+json"
    assert int(limited.headers["Retry-After"]) > 0
    # Another account from the same address is not locked by Ada's failures.
    other = client.post(
        "/api/v1/auth/login", json={"email": "someone@else.example", "password": "whatever-pass"}
    )
    assert other.status_code == 401


def test_failures_from_one_address_across_accounts_are_rate_limited(client, nurse_ada):
    for i in range(5):
        client.post(
            "/api/v1/auth/login",
            json={"email": f"guess{i}@lyon.example", "password": "wrong-password-x"},
        )
    limited = client.post(
        "/api/v1/auth/login", json={"email": nurse_ada.email, "password": nurse_ada.password}
    )
    assert limited.status_code == 429


def test_successful_logins_do_not_count_towards_the_limit(client, nurse_ada):
    for _ in range(6):
        login(client, nurse_ada)


def _redis_reachable() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url("redis://127.0.0.1:6379/15", socket_timeout=1).ping())
    except redis.RedisError:
        return False


def test_with_redis_the_login_limit_holds_across_workers(database_url, clock):
    """Two app instances (two gunicorn workers) share one Redis: failures add up."""
    import redis

    from backend import create_app
    from backend.extensions import limiter
    from tests.conftest import _base_config, _delete_everything

    if not _redis_reachable():
        pytest.skip("Redis is not reachable at 127.0.0.1:6379")
    redis.Redis.from_url("redis://127.0.0.1:6379/15").flushdb()
    config = _base_config(
        database_url,
        clock,
        REDIS_URL="redis://127.0.0.1:6379/15",
        LOGIN_LIMIT_PER_ACCOUNT_AND_ADDRESS="3 per 15 minutes",
    )
    workers = [create_app(config), create_app(config)]
    try:
        body = {"email": "ghost@lyon.example", "password": "wrong-password-x"}
        codes = [
            workers[i % 2].test_client().post("/api/v1/auth/login", json=body).status_code
            for i in range(4)
        ]
        assert codes == [401, 401, 401, 429]
        # The counters live in Redis, where every worker process (and host) reads them; the
        # e-mail itself is not there, only its hash.
        store = redis.Redis.from_url("redis://127.0.0.1:6379/15")
        keys = [k.decode() for k in store.scan_iter()]
        assert any("login-account" in key for key in keys)
        assert not any("ghost" in key or "127.0.0.1" in key for key in keys)
    finally:
        with workers[0].app_context():
            limiter.reset()
            _delete_everything()  # these apps commit: leave nothing for the next tests
        for worker in workers:
            with worker.app_context():
                db.engine.dispose()
