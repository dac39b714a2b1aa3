"""Research at scale (issue 12): the outcome report and the export over 10,000 patients with a
year of answers each, on PostgreSQL; and what the research dependencies cost.

``make bench`` runs it (``BENCH_RESEARCH_PATIENTS=1000`` for a quick look). One site, a
template patient through the real services (bench/dataset.py: a year of scheduled answers and
unscheduled check-ins), cloned by SQL; every clone consented, half of them cement alone and
half cement plus screws so the report has its two arms. Numbers are printed, never asserted;
``bench/results/research.json`` keeps them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
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
PATIENTS = int(os.environ.get("BENCH_RESEARCH_PATIENTS", "10000"))
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
    results["dependencies"] = dependency_costs()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "research.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


def measure(db_url: str) -> dict[str, Any]:
    from backend.auth.principal import Principal
    from backend.research import export, services

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
            sites[0], clock, extra_checkins=6, call_request=False, seed=1
        )
        dataset.clone(template, PATIENTS - 1, [sites[0].id])
        db.session.execute(
            sa.text(
                "UPDATE procedures SET kind = CASE WHEN get_byte(decode(md5(id::text), 'hex'), 0)"
                " < 128 THEN 'cementoplasty' ELSE 'screw_fixation_cementoplasty' END"
            )
        )
        db.session.execute(
            sa.text(
                "INSERT INTO consents (id, patient_id, purpose, decision, decided_on, method,"
                " recorded_at) SELECT md5(id::text || '-research')::uuid, id, 'research', 'given',"
                " date '2020-01-01', 'paper', now() FROM patients"
            )
        )
        db.session.execute(sa.text("ANALYZE"))
        db.session.commit()
        counts = {
            t: db.session.execute(sa.text(f'SELECT count(*) FROM "{t}"')).scalar_one()
            for t in ("patients", "responses", "alerts")
        }
        built = time.perf_counter() - t0
        print(f"database: {counts} built in {built:.0f} s")
        principal = Principal(
            kind="staff",
            id=uuid.uuid4(),
            site_id=sites[0].id,
            session_id=uuid.uuid4(),
            role="physician",
        )
        timings = []
        for _ in range(3):
            t = time.perf_counter()
            services.outcome_report(
                principal, group="kind", filters={}, outcome="pain_walking", now=clock.now()
            )
            timings.append(time.perf_counter() - t)
            db.session.rollback()
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            manifest = export.write_files(
                Path(tmp) / "export", sites[0].id, KEY, now=clock.now(), requested_by_role="bench"
            )
            export_seconds = time.perf_counter() - t
            size = sum(p.stat().st_size for p in (Path(tmp) / "export").iterdir())
        db.session.remove()
        db.engine.dispose()
    return {
        "rows": counts,
        "build_seconds": round(built, 1),
        "outcome_report_seconds": [round(x, 2) for x in timings],
        "export_seconds": round(export_seconds, 2),
        "export_rows": manifest["row_counts"],
        "export_megabytes": round(size / 1e6, 1),
    }


PROBE = """
import sys, time
sys.path.insert(0, {root!r})
def rss():
    for line in open('/proc/self/status'):
        if line.startswith('VmRSS:'):
            return int(line.split()[1])
from backend import create_app
create_app({{'APP_ENV': 'testing', 'SECRET_KEY': 'x' * 40, 'DATABASE_URL': 'sqlite://'}})
base = rss()
t = time.perf_counter()
import {module}
{extra}
print(round(time.perf_counter() - t, 3), rss() - base)
"""


def dependency_costs() -> dict[str, Any]:
    """Install size on disk, import time and resident memory added by each research library,
    measured in a fresh interpreter that has already built the app (an API worker)."""
    import importlib.util

    out: dict[str, Any] = {}
    for module, extra, dists in (
        (
            "backend.research.stats",
            "backend.research.stats.mean_ci([1.0, 2.0]);"
            " backend.research.stats.kaplan_meier([1, 2, 3], [True, False, True], [1]);"
            " import backend.research.plots, backend.research.export, pyarrow.parquet;"
            " backend.research.plots._svg(backend.research.plots._figure())",
            (),
        ),
        ("scipy.stats", "", ("scipy", "scipy.libs")),
        ("lifelines", "", ("lifelines", "autograd", "autograd_gamma", "formulaic", "pandas")),
        ("matplotlib.figure", "", ("matplotlib", "PIL", "fontTools", "kiwisolver")),
        ("pyarrow.parquet", "", ("pyarrow",)),
        ("numpy", "", ("numpy", "numpy.libs")),
    ):
        proc = subprocess.run(
            [sys.executable, "-c", PROBE.format(root=str(ROOT), module=module, extra=extra)],
            capture_output=True,
            text=True,
            check=True,
        )
        seconds, kib = proc.stdout.split()
        size = 0
        for dist in dists:
            spec = importlib.util.find_spec(dist.split(".")[0])
            base = Path(spec.origin).parent if spec and spec.origin else None
            path = base if base else None
            if dist.endswith(".libs") and spec and spec.origin:
                path = Path(spec.origin).parent.parent / dist
            if path and path.exists():
                size += sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
        out[module] = {
            "import_seconds": float(seconds),
            "resident_mib_added": round(int(kib) / 1024, 1),
            "install_mib": round(size / 2**20, 1),
            "packages": list(dists),
        }
    return out


if __name__ == "__main__":
    main()
