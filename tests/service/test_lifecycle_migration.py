"""Migration 0006_lifecycle turns the two consent dates of a patient into care consent records,
and its downgrade puts them back (SQLite and PostgreSQL, each in a database of its own)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa
from flask_migrate import downgrade, upgrade

from backend import create_app
from backend.clock import FrozenClock
from backend.extensions import db
from tests.conftest import _PG_PROBLEM, PG_URL, T0, _base_config


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrate.sqlite3'}"
        return
    if _PG_PROBLEM:
        pytest.skip(f"PostgreSQL unreachable at {PG_URL}: {_PG_PROBLEM}")
    schema = f"mig_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    url = sa.make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    yield url.render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
    admin.dispose()


def test_the_consent_dates_become_care_records_and_come_back_on_downgrade(empty_url):
    app = create_app(_base_config(empty_url, FrozenClock(T0)))
    with app.app_context():
        upgrade(revision="0004")
        site_id, josette, marcel = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        now = datetime(2026, 11, 1, 12, tzinfo=UTC)
        sites = sa.table(
            "sites",
            *(sa.column(c) for c in ("code", "name", "timezone", "locale")),
            sa.column("id", sa.Uuid()),
            sa.column("created_at", sa.DateTime(timezone=True)),
        )
        patients = sa.table(
            "patients",
            *(
                sa.column(c)
                for c in ("mrn", "given_name", "family_name", "locale", "timezone", "status")
            ),
            sa.column("id", sa.Uuid()),
            sa.column("site_id", sa.Uuid()),
            sa.column("birth_date", sa.Date()),
            sa.column("contact_channels", sa.JSON()),
            sa.column("caregiver_answers", sa.Boolean()),
            *(
                sa.column(c, sa.DateTime(timezone=True))
                for c in ("status_changed_at", "created_at", "updated_at")
            ),
            sa.column("consent_given_on", sa.Date()),
            sa.column("consent_withdrawn_on", sa.Date()),
        )
        with db.engine.begin() as conn:
            conn.execute(
                sites.insert().values(
                    id=site_id,
                    code="LYON",
                    name="Lyon",
                    timezone="Europe/Paris",
                    locale="fr",
                    created_at=now,
                )
            )
            for pid, mrn, given, withdrawn in (
                (josette, "LY-1", date(2026, 10, 2), date(2026, 10, 20)),
                (marcel, "LY-2", date(2026, 10, 5), None),
            ):
                conn.execute(
                    patients.insert().values(
                        id=pid,
                        site_id=site_id,
                        mrn=mrn,
                        given_name="A",
                        family_name="B",
                        birth_date=date(1940, 1, 1),
                        locale="fr",
                        timezone="Europe/Paris",
                        contact_channels=[],
                        caregiver_answers=False,
                        status="active",
                        status_changed_at=now,
                        created_at=now,
                        updated_at=now,
                        consent_given_on=given,
                        consent_withdrawn_on=withdrawn,
                    )
                )
        upgrade(revision="0006_lifecycle")
        with db.engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT patient_id, purpose, decision, decided_on, method FROM consents "
                    "ORDER BY decided_on"
                )
            ).all()
        records = [(uuid.UUID(str(r[0])), r[1], r[2], str(r[3]), r[4]) for r in rows]
        assert records == [
            (josette, "care", "given", "2026-10-02", None),
            (marcel, "care", "given", "2026-10-05", None),
            (josette, "care", "withdrawn", "2026-10-20", None),
        ]
        downgrade(revision="0004")
        with db.engine.connect() as conn:
            back = dict(
                (uuid.UUID(str(r[0])), (str(r[1]), r[2] and str(r[2])))
                for r in conn.execute(
                    sa.text("SELECT id, consent_given_on, consent_withdrawn_on FROM patients")
                )
            )
        assert back == {josette: ("2026-10-02", "2026-10-20"), marcel: ("2026-10-05", None)}
        db.engine.dispose()
