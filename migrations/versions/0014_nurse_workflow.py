"""Nurse workflow: alert ownership, snooze, read state; handover notes

Revision ID: 0014_nurse_workflow
Revises: 0013_fhir
Create Date: 2026-12-03 09:40:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0014_nurse_workflow"
down_revision = "0013_fhir"
branch_labels = None
depends_on = None


USERS_FKS = {"owner_id": "fk_alerts_owner_id_users", "seen_by_id": "fk_alerts_seen_by_id_users"}


def upgrade():
    # Plain ALTER TABLE, not a batch: on SQLite a batch recreates the alerts table (rows refer
    # to it; its partial indexes would have to be rebuilt). SQLite adds a nullable column with
    # a named REFERENCES clause in place; PostgreSQL adds the constraint after.
    bind = op.get_bind()
    for name in ("owned_since", "snoozed_until", "seen_at"):
        op.add_column("alerts", sa.Column(name, sa.DateTime(timezone=True), nullable=True))
    op.add_column("alerts", sa.Column("snooze_reason", sa.Text(), nullable=True))
    for column, constraint in USERS_FKS.items():
        if bind.dialect.name == "sqlite":
            op.execute(
                f"ALTER TABLE alerts ADD COLUMN {column} CHAR(32) "
                f"CONSTRAINT {constraint} REFERENCES users (id)"
            )
        else:
            op.add_column("alerts", sa.Column(column, sa.Uuid(), nullable=True))
            op.create_foreign_key(constraint, "alerts", "users", [column], ["id"])

    op.create_table(
        "handover_notes",
        sa.Column("site_id", sa.Uuid(), nullable=False),
        sa.Column("author_id", sa.Uuid(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("read_by_id", sa.Uuid(), nullable=True),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_id"], ["users.id"], name=op.f("fk_handover_notes_author_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["read_by_id"], ["users.id"], name=op.f("fk_handover_notes_read_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_handover_notes_site_id_sites")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_handover_notes")),
    )
    op.create_index(
        "ix_handover_notes_site_created", "handover_notes", ["site_id", "created_at"], unique=False
    )


def downgrade():
    op.drop_index("ix_handover_notes_site_created", table_name="handover_notes")
    op.drop_table("handover_notes")
    columns = ("snooze_reason", "seen_at", "snoozed_until", "owned_since")
    if op.get_bind().dialect.name == "sqlite":
        # SQLite cannot drop a column that has a foreign key in place: the batch recreates.
        with op.batch_alter_table("alerts", recreate="always") as batch_op:
            for column in (*USERS_FKS, *columns):
                batch_op.drop_column(column)
        return
    for column, constraint in USERS_FKS.items():
        op.drop_constraint(constraint, "alerts", type_="foreignkey")
        op.drop_column("alerts", column)
    for column in columns:
        op.drop_column("alerts", column)
