"""The fuzzing stage's served application and its schemathesis run, shared by its test files.

Schemathesis reads the served document and sends valid and invalid requests to every
operation, as nurse Ada (Lyon), as the Lyon administrator and as Marcel's enrolled phone, against
the application served from this process on PostgreSQL (the database whose refusals caused the
500s). Each response must be: no server error, a status the document lists for that operation,
the documented content type, a body matching the documented schema, the documented headers.

The seed is fixed, so a run is repeatable. ``make test`` runs a bounded number of examples per
operation (about two minutes in all); ``make fuzz`` runs many more before a release
(``FUZZ_EXAMPLES``). Deselect locally with ``-m "not fuzz"``. The work is split over several
files (the nurse's share is most of it) so that the test workers, which keep a file together,
run the shares side by side.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from backend import create_app
from backend.alerts.models import Alert
from backend.clock import FrozenClock
from backend.extensions import db, limiter
from tests.conftest import T0, _base_config, _delete_everything, bearer, login, make_staff
from tests.factories import checkin_answers, make_patient, make_procedure, record

SEED = 20261201
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "12"))
CHECKS = ",".join(
    (
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
        "response_headers_conformance",
    )
)
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


@pytest.fixture
def served(postgresql_url: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The app on PostgreSQL, served on a local port, with three personas' headers."""
    clock = FrozenClock(T0 + timedelta(days=3))
    app = create_app(_base_config(postgresql_url, clock))
    with app.app_context():
        limiter.reset()
        try:
            ada = make_staff("ada@lyon.example", "nurse", "LYON", now=clock.now())
            admin = make_staff(
                "claire@lyon.example", "admin", "LYON", "Lyon ward keys 2026!", now=clock.now()
            )
            marcel = make_patient(ada, now=clock.now())
            procedure = make_procedure(ada, marcel, now=clock.now())
            record(marcel, clock.now(), answers=checkin_answers(call_request=True))
            alert = db.session.execute(db.select(Alert)).scalars().first()
            assert alert is not None
            client = app.test_client()
            ada_headers = bearer(login(client, ada)["access_token"])
            code = client.post(
                f"/api/v1/patients/{marcel.id}/enrollment-codes", headers=ada_headers
            ).get_json()["code"]
            phone = client.post(
                "/api/v1/enrollment/claim", json={"code": code, "device": {"platform": "ios"}}
            ).get_json()["access_token"]
            # Real ids, so requests reach the views' logic rather than a 404 (random UUIDs and
            # keys are still generated for the other parameters).
            config = tmp_path / "schemathesis.toml"
            config.write_text(
                "[parameters]\n"
                f'"path.patient_id" = "{marcel.id}"\n'
                f'"path.procedure_id" = "{procedure.id}"\n'
                f'"path.alert_id" = "{alert.id}"\n'
                f'"path.user_id" = "{ada.id}"\n'
            )
            server = make_server("127.0.0.1", 0, app, threaded=True)
            thread = threading.Thread(target=server.serve_forever, daemon=True)
            thread.start()
            try:
                yield {
                    "url": f"http://127.0.0.1:{server.server_port}/api/v1/openapi.json",
                    "nurse": ada_headers["Authorization"],
                    "admin": bearer(login(client, admin)["access_token"])["Authorization"],
                    "patient": f"Bearer {phone}",
                    "config": str(config),
                }
            finally:
                server.shutdown()
                thread.join(timeout=10)
        finally:
            db.session.remove()
            _delete_everything()
            db.engine.dispose()


def _run_schemathesis(url: str, config: str, authorization: str, report: Path, *extra: str) -> str:
    command = [
        str(SCHEMATHESIS),
        f"--config-file={config}",
        "run",
        url,
        f"--checks={CHECKS}",
        f"--seed={SEED}",
        f"--max-examples={EXAMPLES}",
        "--workers=1",
        "--phases=examples,coverage,fuzzing",
        "--suppress-health-check=all",
        "--no-color",
        f"--header=Authorization: {authorization}",
        "--report=junit",
        f"--report-junit-path={report}",
        *extra,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-20000:]
    return output


def assert_survives(served: dict[str, str], persona: str, operations: str, report: Path) -> None:
    """Schemathesis, as ``persona`` on the operations whose path matches ``operations``, finds no
    failure, and it did generate requests (a run that tested nothing must not pass)."""
    output = _run_schemathesis(
        served["url"],
        served["config"],
        served[persona],
        report,
        f"--include-path-regex={operations}",
    )
    assert "generated," in output and " 0 generated" not in output, output[-5000:]
