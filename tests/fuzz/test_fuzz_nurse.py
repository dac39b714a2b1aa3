"""The nurse's other operations survive whatever the OpenAPI document allows (schemathesis).

Everything but the patients' operations (their own file) and the staff accounts (the
administrator's): the alerts, the handover, the reports, research, and the phone's own operations,
which must refuse her (``conftest.py`` says what is checked).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fuzz.conftest import assert_survives

pytestmark = pytest.mark.fuzz


def test_no_request_the_document_allows_breaks_the_service_or_the_document_for_a_nurse(
    served: dict[str, str], tmp_path: Path
) -> None:
    assert_survives(served, "nurse", "^/api/v1/(?!users|patients)", tmp_path / "junit.xml")
