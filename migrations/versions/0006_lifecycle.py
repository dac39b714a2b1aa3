"""patient lifecycle: status history, consent records, cancellation reasons

Revision ID: 0006_lifecycle
Revises: 0005b_hardening (the lead re-chains at merge)
Create Date: 2026-12-01 21:40:00

The two consent dates of ``patients`` become rows of ``consents`` (purpose ``care``, no method:
how they were collected was never recorded), then the columns go. Downgrade puts the latest care
decisions back into the two dates.
"""

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0006_lifecycle"
down_revision = "0005b_hardening"
branch_labels = None
depends_on = None

MIGRATED_NOTE = "migrated from the patient's consent dates"


def upgrade():
    op.create_table(
        "patient_status_changes",
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("from_status", sa.String(length=16), nullable=False),
        sa.Column("to_status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("paused_until", sa.Date(), nullable=True),
        sa.Column("cause", sa.String(length=32), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changed_by_id", sa.Uuid(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.CheckConstraint(
            "cause IN ('staff', 'pause_ended', 'care_consent_withdrawn')",
            name=op.f("ck_patient_status_changes_cause_known"),
        ),
        sa.CheckConstraint(
            "to_status IN ('active', 'paused', 'readmitted', 'deceased', 'withdrawn')",
            name=op.f("ck_patient_status_changes_to_status_known"),
        ),
        sa.ForeignKeyConstraint(
            ["changed_by_id"],
            ["users.id"],
            name=op.f("fk_patient_status_changes_changed_by_id_users"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            name=op.f("fk_patient_status_changes_patient_id_patients"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patient_status_changes")),
    )
    with op.batch_alter_table("patient_status_changes", schema=None) as batch_op:
        batch_op.create_index(
            "ix_patient_status_changes_patient_id_changed_at",
            ["patient_id", "changed_at"],
            unique=False,
        )

    op.create_table(
        "consents",
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("decided_on", sa.Date(), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=True),
        sa.Column("witness", sa.String(length=200), nullable=True),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by_id", sa.Uuid(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.CheckConstraint(
            "decision IN ('given', 'withdrawn')", name=op.f("ck_consents_decision_known")
        ),
        sa.CheckConstraint(
            "method IS NULL OR method <> 'verbal_witnessed' OR witness IS NOT NULL",
            name=op.f("ck_consents_verbal_has_witness"),
        ),
        sa.CheckConstraint(
            "method IS NULL OR method IN ('paper', 'verbal_witnessed', 'in_app')",
            name=op.f("ck_consents_method_known"),
        ),
        sa.CheckConstraint(
            "purpose IN ('care', 'research')", name=op.f("ck_consents_purpose_known")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_consents_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by_id"], ["users.id"], name=op.f("fk_consents_recorded_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consents")),
    )
    with op.batch_alter_table("consents", schema=None) as batch_op:
        batch_op.create_index(
            "ix_consents_patient_id_purpose", ["patient_id", "purpose"], unique=False
        )

    # The consent dates become records, in date order (given before withdrawn on one day).
    bind = op.get_bind()
    patients = sa.table(
        "patients",
        sa.column("id", sa.Uuid()),
        sa.column("consent_given_on", sa.Date()),
        sa.column("consent_withdrawn_on", sa.Date()),
        sa.column("updated_at", sa.DateTime(timezone=True)),
    )
    consents = sa.table(
        "consents",
        sa.column("id", sa.Uuid()),
        sa.column("patient_id", sa.Uuid()),
        sa.column("purpose", sa.String()),
        sa.column("decision", sa.String()),
        sa.column("decided_on", sa.Date()),
        sa.column("note", sa.String()),
        sa.column("recorded_at", sa.DateTime(timezone=True)),
    )
    rows = bind.execute(
        sa.select(patients).where(
            sa.or_(
                patients.c.consent_given_on.isnot(None), patients.c.consent_withdrawn_on.isnot(None)
            )
        )
    ).all()
    records = []
    for row in rows:
        recorded_at = row.updated_at or datetime.now(UTC)
        for decision, on in (
            ("given", row.consent_given_on),
            ("withdrawn", row.consent_withdrawn_on),
        ):
            if on is not None:
                records.append(
                    {
                        "id": uuid.uuid4(),
                        "patient_id": row.id,
                        "purpose": "care",
                        "decision": decision,
                        "decided_on": on,
                        "note": MIGRATED_NOTE,
                        "recorded_at": recorded_at,
                    }
                )
    if records:
        op.bulk_insert(consents, records)

    # Plain ALTER TABLE, not a batch: on SQLite a batch recreates the table, and with foreign
    # keys on, dropping the old patients table fails as soon as a row refers to a patient
    # (SQLite >= 3.35 drops a column without constraints in place).
    op.add_column("patients", sa.Column("paused_until", sa.Date(), nullable=True))
    op.drop_column("patients", "consent_withdrawn_on")
    op.drop_column("patients", "consent_given_on")
    op.add_column("assignments", sa.Column("status_reason", sa.String(length=32), nullable=True))


def downgrade():
    op.drop_column("assignments", "status_reason")
    op.add_column("patients", sa.Column("consent_given_on", sa.Date(), nullable=True))
    op.add_column("patients", sa.Column("consent_withdrawn_on", sa.Date(), nullable=True))
    op.drop_column("patients", "paused_until")

    bind = op.get_bind()
    consents = sa.table(
        "consents",
        sa.column("patient_id", sa.Uuid()),
        sa.column("purpose", sa.String()),
        sa.column("decision", sa.String()),
        sa.column("decided_on", sa.Date()),
    )
    patients = sa.table(
        "patients",
        sa.column("id", sa.Uuid()),
        sa.column("consent_given_on", sa.Date()),
        sa.column("consent_withdrawn_on", sa.Date()),
    )
    for decision, column in (("given", "consent_given_on"), ("withdrawn", "consent_withdrawn_on")):
        latest = bind.execute(
            sa.select(consents.c.patient_id, sa.func.max(consents.c.decided_on))
            .where(consents.c.purpose == "care", consents.c.decision == decision)
            .group_by(consents.c.patient_id)
        ).all()
        for patient_id, on in latest:
            bind.execute(patients.update().where(patients.c.id == patient_id).values({column: on}))

    with op.batch_alter_table("consents", schema=None) as batch_op:
        batch_op.drop_index("ix_consents_patient_id_purpose")
    op.drop_table("consents")
    with op.batch_alter_table("patient_status_changes", schema=None) as batch_op:
        batch_op.drop_index("ix_patient_status_changes_patient_id_changed_at")
    op.drop_table("patient_status_changes")
