"""FHIR Bulk Data export at scale (issue 13): a Group export of 10,000 patients with a year of
answers each, on PostgreSQL, as the scheduler runs it; then the download of every file.

``make bench`` runs it (``BENCH_FHIR_PATIENTS=1000`` for a quick look). One site, a template
patient through the real services (bench/dataset.py: a year of scheduled answers, unscheduled
check-ins, an alert), cloned by SQL, every clone consented to research. The care export (all
nine types, identified) and the research export (pseudonymised) are timed apart. Numbers are
printed, never asserted; ``bench/results/fhir.json`` keeps them.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from backend import create_app
from backend.clock import FrozenClock
from backend.extensions import db
from bench import dataset

URL = os.environ.get("BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
PATIENTS = int(os.environ.get("BENCH_FHIR_PATIENTS", "10000"))
SECRET = "bench-secret-key-which-is-long-enough-0123456789"
KEY = "bench-research-pseudonym-key-0123456789abcdef"
RESULTS = ROOT / "bench" / "results"


def main() -> None:
    db_url, drop_schema = dataset.new_schema(URL)
    results: dict[str, Any] = {"patients": PATIENTS}
    try:
        results |= measure(db_url)
    finally:
        drop_schema()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "fhir.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


def export(client: Any, headers: dict[str, str], group: str, now: datetime) -> dict[str, Any]:
    """Kick off through the route, run the scheduler's job, download every file."""
    from backend.fhir.bulk import run_exports

    prefer = {"Prefer": "respond-async", "Accept": "application/fhir+json"}
    kick = client.get(f"/fhir/R4/Group/{group}/$export", headers={**headers, **prefer})
    status = kick.headers["Content-Location"].split("localhost", 1)[1]
    t = time.perf_counter()
    run_exports(now)
    build = time.perf_counter() - t
    manifest = client.get(status, headers=headers).get_json()
    t = time.perf_counter()
    size = 0
    for output in manifest["output"]:
        response = client.get(output["url"].split("localhost", 1)[1], headers=headers)
        size += len(response.get_data())
    download = time.perf_counter() - t
    return {
        "build_seconds": round(build, 1),
        "download_seconds": round(download, 1),
        "megabytes": round(size / 1e6, 1),
        "resources": {o["type"]: o["count"] for o in manifest["output"]},
    }


def measure(db_url: str) -> dict[str, Any]:
    import jwt
    from cryptography.hazmat.primitives.asymmetric import ec

    from backend.fhir.models import FhirClient

    clock = FrozenClock(dataset.real_now())
    app = create_app(
        {
            "APP_ENV": "testing",
            "DATABASE_URL": db_url,
            "SECRET_KEY": SECRET,
            "LOG_LEVEL": "WARNING",
            "CLOCK": clock,
            "RESEARCH_PSEUDONYM_KEY": KEY,
        }
    )
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
        t0 = time.perf_counter()
        sites = dataset.build_sites(1, clock.now())
        template = dataset.build_template(
            sites[0], clock, extra_checkins=6, call_request=True, seed=1
        )
        dataset.clone(template, PATIENTS - 1, [sites[0].id])
        db.session.execute(
            sa.text(
                "INSERT INTO consents (id, patient_id, purpose, decision, decided_on, method,"
                " recorded_at) SELECT md5(id::text || '-research')::uuid, id, 'research', 'given',"
                " date '2020-01-01', 'paper', now() FROM patients"
            )
        )
        key = ec.generate_private_key(ec.SECP384R1())
        jwk = {**json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key())), "kid": "k"}
        for access in ("care", "research"):
            db.session.add(
                FhirClient(
                    client_id=f"bench-{access}",
                    name=access,
                    access=access,
                    site_id=sites[0].id,
                    jwks={"keys": [jwk]},
                    created_at=datetime.now(UTC),
                )
            )
        db.session.execute(sa.text("ANALYZE"))
        db.session.commit()
        counts = {
            t: db.session.execute(sa.text(f'SELECT count(*) FROM "{t}"')).scalar_one()
            for t in ("patients", "responses", "alerts")
        }
        built = time.perf_counter() - t0
        print(f"database: {counts} built in {built:.0f} s", flush=True)
        client = app.test_client()
        out: dict[str, Any] = {"rows": counts, "build_seconds": round(built, 1)}
        for access, group in (("care", sites[0].code), ("research", f"{sites[0].code}-research")):
            now = clock.now()
            assertion = jwt.encode(
                {"iss": f"bench-{access}", "sub": f"bench-{access}",
                 "aud": "http://localhost/fhir/auth/token", "exp": int(now.timestamp()) + 240,
                 "jti": uuid.uuid4().hex},
                key, algorithm="ES384", headers={"kid": "k"},
            )  # fmt: skip
            token = client.post(
                "/fhir/auth/token",
                data={
                    "grant_type": "client_credentials",
                    "scope": "system/*.read",
                    "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:"
                    "jwt-bearer",
                    "client_assertion": assertion,
                },
            ).get_json()["access_token"]
            # The job and the downloads may take minutes: the token's expiry is checked against
            # this frozen clock, as a client would fetch a new one.
            out[access] = export(client, {"Authorization": f"Bearer {token}"}, group, now)
            print(access, out[access], flush=True)
        db.session.remove()
        db.engine.dispose()
    return out


if __name__ == "__main__":
    main()
