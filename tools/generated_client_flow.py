"""Dev check: a client generated from the served OpenAPI document runs the phone and nurse flows.

Not part of the suite (openapi-python-client is a generator, not a dependency). Run it when the
document changes shape:

    python -m venv /tmp/opc && /tmp/opc/bin/pip install openapi-python-client
    .venv/bin/python tools/generated_client_flow.py /tmp/opc/bin/openapi-python-client

It builds the app on a temporary SQLite database, serves it on a local port, generates the
client into a temporary directory, and drives it: a nurse signs in, registers a patient and the
procedure (a nullable enum left null), issues a code; the phone claims it, reads its open
questionnaire and answers it; the nurse sees the alert and acknowledges it. Each call must return
the generated model of its documented success, with readable type names.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import tempfile
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main(generator: str) -> None:
    from flask_migrate import upgrade
    from werkzeug.serving import make_server

    from backend import create_app
    from backend.auth.services import create_user, get_or_create_site
    from backend.clock import FrozenClock
    from backend.extensions import db

    work = Path(tempfile.mkdtemp(prefix="generated-client-"))
    now = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    app = create_app(
        {
            "APP_ENV": "testing",
            "DATABASE_URL": f"sqlite:///{work / 'db.sqlite3'}",
            "SECRET_KEY": "generated-client-check-secret-key-0123456789",
            "CLOCK": FrozenClock(now),
        }
    )
    with app.app_context():
        upgrade()
        site = get_or_create_site("LYON", now=now, timezone="Europe/Paris")
        create_user("ada@lyon.example", "Lyon ward keys 2026!", "nurse", site, now=now)
        db.session.commit()
        spec = app.test_client().get("/api/v1/openapi.json").get_json()
    (work / "openapi.json").write_text(json.dumps(spec))
    subprocess.run(
        [
            generator,
            "generate",
            "--path",
            str(work / "openapi.json"),
            "--meta",
            "none",
            "--output-path",
            str(work / "irclient"),
        ],
        check=True,
        capture_output=True,
    )
    sys.path.insert(0, str(work))
    models = importlib.import_module("irclient.models")
    ugly = [name for name in dir(models) if "Type0" in name or "Type1" in name]
    assert not ugly, f"unreadable generated types: {ugly}"

    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        flows(base, models)
    finally:
        server.shutdown()
    print("generated client: nurse and phone flows ran; types read well")


def flows(base: str, models) -> None:  # type: ignore[no-untyped-def]
    client_module = importlib.import_module("irclient.client")
    api = "irclient.api"
    call = lambda module, **kw: importlib.import_module(f"{api}.{module}").sync_detailed(**kw)  # noqa: E731

    anonymous = client_module.Client(base_url=base)
    login = call(
        "auth.post_api_v1_auth_login",
        client=anonymous,
        body=models.Login(email="ada@lyon.example", password="Lyon ward keys 2026!"),
    )
    assert login.status_code == 200, login.content
    nurse = client_module.AuthenticatedClient(base_url=base, token=login.parsed.access_token)

    patient = call(
        "patients.post_api_v1_patients",
        client=nurse,
        body=models.PatientCreate(
            mrn=f"MRN-{uuid.uuid4().hex[:6]}",
            given_name="Marcel",
            family_name="Dupont",
            birth_date=datetime(1940, 3, 2).date(),
            locale=models.Locale.FR,
            timezone="Europe/Paris",
        ),
    )
    assert patient.status_code == 201, patient.content
    patient_id = patient.parsed.id
    procedure = call(
        "patients.post_api_v1_patients_patient_id_procedures",
        client=nurse,
        patient_id=patient_id,
        body=models.ProcedureCreate(
            kind=models.ProcedureKind.SCREW_FIXATION,
            location=models.Location.SACROILIAC,
            etiology=models.Etiology.OSTEOPOROTIC,
            performed_on=datetime(2026, 11, 20).date(),
            discharged_on=datetime(2026, 11, 22).date(),
            baseline=models.Baseline(pain_rest=6, pain_walking=8, analgesics=None),
        ),
    )
    assert procedure.status_code == 201, procedure.content
    code = call(
        "patients.post_api_v1_patients_patient_id_enrollment_codes",
        client=nurse,
        patient_id=patient_id,
    )
    assert code.status_code == 201, code.content
    claim = call(
        "enrollment.post_api_v1_enrollment_claim",
        client=anonymous,
        body=models.Claim(
            code=code.parsed.code, device=models.Device(platform=models.Platform.IOS)
        ),
    )
    assert claim.status_code == 201, claim.content
    phone = client_module.AuthenticatedClient(base_url=base, token=claim.parsed.access_token)
    profile = call("me.get_api_v1_me", client=phone)
    assert profile.status_code == 200 and profile.parsed.given_name == "Marcel"
    answers = models.ResponseCreateAnswers.from_dict(
        {
            "pain_rest": 2,
            "pain_walking": 3,
            "analgesics": "non_opioid",
            "walking_aid": "cane",
            "fell": False,
            "symptoms": ["chest_pain"],
            "change": "much_improved",
            "call_request": False,
        }
    )
    sent = call(
        "me.post_api_v1_me_responses",
        client=phone,
        idempotency_key=str(uuid.uuid4()),  # the generated code puts it in a header as is
        body=models.ResponseCreate(
            assignment_id=None,
            instrument="checkin",
            version=1,
            answered_at=datetime(2026, 11, 23, 9, 0, tzinfo=UTC),
            source=models.PhoneSource.PATIENT,
            answers=answers,
        ),
    )
    assert sent.status_code == 201, sent.content
    alerts = call("alerts.get_api_v1_alerts", client=nurse)
    assert alerts.status_code == 200 and alerts.parsed.items, alerts.content
    first = alerts.parsed.items[0]
    assert first.acknowledged_by is None
    acknowledged = call(
        "alerts.post_api_v1_alerts_alert_id_acknowledge", client=nurse, alert_id=first.id
    )
    assert acknowledged.status_code == 200, acknowledged.content
    assert acknowledged.parsed.acknowledged_by.email == "ada@lyon.example"


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "openapi-python-client")
