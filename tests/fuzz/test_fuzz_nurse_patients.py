"""The nurse's patient operations survive whatever the OpenAPI document allows (schemathesis).

The largest share of the fuzzing stage, in a file of its own so that it runs beside the others
(``conftest.py`` says what is checked).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fuzz.conftest import assert_survives

pytestmark = pytest.mark.fuzz


def test_no_request_the_document_allows_breaks_the_service_or_the_document_for_a_nurse_on_patients(
    served: dict[str, str], tmp_path: Path
) -> None:
    assert_survives(served, "nurse", "^/api/v1/patients", tmp_path / "junit.xml")
