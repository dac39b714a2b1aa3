"""`flask users create`, the admin's staff endpoints and site scoping."""

from __future__ import annotations

import uuid

from backend.auth.models import Site, User
from backend.extensions import db
from tests.conftest import bearer, login, make_staff


def test_users_create_reads_the_password_from_stdin_and_creates_the_site(runner):
    result = runner.invoke(
        args=["users", "create", "Claire@Lyon.example", "--role", "nurse", "--site", "LYON2"],
        input="a-good-long-passphrase\n",
    )
    assert result.exit_code == 0, result.output
    user = db.session.execute(db.select(User).filter_by(email="claire@lyon.example")).scalar_one()
    assert user.role == "nurse" and user.site.code == "LYON2"
    assert user.password_hash.startswith("$argon2id$")
    assert "a-good-long-passphrase" not in result.output


def test_users_create_refuses_a_weak_password_with_the_reason(runner):
    result = runner.invoke(
        args=["users", "create", "bob@lyon.example", "--role", "nurse", "--site", "LYON"],
        input="short\n",
    )
    assert result.exit_code != 0
    assert "at least 12 characters" in result.output
    assert db.session.execute(db.select(User).filter_by(email="bob@lyon.example")).first() is None


def test_users_create_refuses_a_password_containing_the_email(runner):
    result = runner.invoke(
        args=[
            "users",
            "create",
            "marguerite@lyon.example",
            "--role",
            "physician",
            "--site",
            "LYON",
        ],
        input="marguerite-2026-ok\n",
    )
    assert result.exit_code != 0 and "e-mail" in result.output


def test_an_admin_sees_only_the_staff_of_their_own_site(client, app):
    iris = make_staff("iris@lyon.example", "admin", "LYON")
    ada = make_staff("ada@lyon.example", "nurse", "LYON")
    noe = make_staff("noe@nantes.example", "nurse", "NANTES")
    headers = bearer(login(client, iris)["access_token"])
    emails = [u["email"] for u in client.get("/api/v1/users", headers=headers).get_json()["items"]]
    assert emails == ["ada@lyon.example", "iris@lyon.example"]
    assert client.get(f"/api/v1/users/{ada.id}", headers=headers).status_code == 200
    # Another site's user answers exactly like an id that does not exist.
    other = client.get(f"/api/v1/users/{noe.id}", headers=headers)
    missing = client.get(f"/api/v1/users/{uuid.uuid4()}", headers=headers)
    assert other.status_code == missing.status_code == 404
    assert other.get_json()["detail"] == missing.get_json()["detail"]


def test_an_admin_creates_staff_at_their_own_site_only(client, app):
    iris = make_staff("iris@lyon.example", "admin", "LYON")
    headers = bearer(login(client, iris)["access_token"])
    response = client.post(
        "/api/v1/users",
        headers=headers,
        json={"email": "new@lyon.example", "password": "a-long-enough-password", "role": "nurse"},
    )
    assert response.status_code == 201
    assert response.get_json()["site"]["code"] == "LYON"
    # A site in the body is an unknown field, not a way to reach another site.
    sneaky = client.post(
        "/api/v1/users",
        headers=headers,
        json={
            "email": "x@lyon.example",
            "password": "a-long-enough-password",
            "role": "nurse",
            "site": "NANTES",
        },
    )
    assert sneaky.status_code == 422
    assert db.session.execute(db.select(User).filter_by(email="x@lyon.example")).first() is None
    assert db.session.execute(db.select(Site).filter_by(code="NANTES")).first() is None
