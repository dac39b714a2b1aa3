"""The administrator's and the phone's operations survive whatever the OpenAPI document allows
(schemathesis; ``conftest.py`` says what is checked)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fuzz.conftest import assert_survives

pytestmark = pytest.mark.fuzz


@pytest.mark.parametrize(
    ("persona", "operations"),
    [
        # The administrator: staff accounts, and the reports.
        ("admin", "^/api/v1/(users|reports)"),
        # Marcel's phone: his own endpoints, the instruments, enrollment and sign-in.
        ("patient", "^/api/v1/(me|instruments|enrollment|auth|health)"),
    ],
)
def test_no_request_the_document_allows_breaks_the_service_or_the_document(
    served: dict[str, str], persona: str, operations: str, tmp_path: Path
) -> None:
    assert_survives(served, persona, operations, tmp_path / "junit.xml")
