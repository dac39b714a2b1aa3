"""With the shipped limits: five wrong passwords from one address lock no one else out."""

from __future__ import annotations

from tests.web.conftest import Pages

ATTACKER, WARD = "203.0.113.66", "10.20.30.40"


def _api_login(client, email: str, password: str, address: str) -> int:
    return client.post(
        "/api/v1/auth/login",
        json={"email": email, "password": password},
        environ_base={"REMOTE_ADDR": address},
    ).status_code


def test_five_wrong_passwords_from_one_address_leave_the_nurse_free_from_another(client, nurse_ada):
    wrong = [_api_login(client, nurse_ada.email, "not-her-password", ATTACKER) for _ in range(5)]
    assert wrong == [401] * 5
    # The attacker is throttled, on the API and on the sign-in page ...
    assert _api_login(client, nurse_ada.email, "sixth-guess-here", ATTACKER) == 429
    client.environ_base["REMOTE_ADDR"] = ATTACKER
    assert Pages(client).sign_in(nurse_ada, password="seventh-guess").status_code == 429
    # ... and Ada signs in from the ward, on the page and on the API.
    client.environ_base["REMOTE_ADDR"] = WARD
    assert Pages(client).sign_in(nurse_ada).status_code == 303
    assert _api_login(client, nurse_ada.email, nurse_ada.password, WARD) == 200
