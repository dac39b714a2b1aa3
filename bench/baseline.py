"""The ingest benchmark's baseline: a bare Flask route doing one INSERT and commit on the same
stack as the service (Flask, Flask-SQLAlchemy, psycopg 3, the same PostgreSQL), so the ratio of
the two throughputs says what the service's own work costs. ``gunicorn bench.baseline:app``."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from flask import Flask, request
from flask_sqlalchemy import SQLAlchemy

app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = os.environ.get("DATABASE_URL", "sqlite://")
db = SQLAlchemy(app)
table = sa.Table(
    "bench_baseline",
    db.metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("received_at", sa.DateTime(timezone=True)),
    sa.Column("body", sa.JSON),
)
# The bench creates the table before gunicorn starts (three workers racing to create it would
# collide): see ``create_table``.


def create_table() -> None:
    with app.app_context():
        table.create(db.engine, checkfirst=True)
        db.engine.dispose()


@app.post("/")
def insert() -> tuple[dict[str, str], int]:
    row_id = uuid.uuid4()
    db.session.execute(
        table.insert().values(id=row_id, received_at=datetime.now(UTC), body=request.get_json())
    )
    db.session.commit()
    return {"id": str(row_id)}, 201
