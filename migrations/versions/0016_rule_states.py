"""Rule states: the alert rules' state per procedure, for incremental evaluation

Revision ID: 0016_rule_states
Revises: 0015_queue_covering_index
Create Date: 2026-12-06 23:00:00

"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0016_rule_states"
down_revision = "0015_queue_covering_index"
branch_labels = None
depends_on = None


def upgrade():
    # No backfill: a procedure without a state is evaluated whole at its next answer, which
    # writes it.
    json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
    op.create_table(
        "rule_states",
        sa.Column("procedure_id", sa.Uuid(), nullable=False),
        sa.Column("engine", sa.String(length=32), nullable=False),
        sa.Column("rule_version", sa.Integer(), nullable=False),
        sa.Column("facts", json, nullable=False),
        sa.Column("responses", sa.Integer(), nullable=False),
        # JSON text: read whole, never queried inside; the parts that change rarely apart.
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("signals", sa.JSON(), nullable=False),
        sa.Column("requests", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["procedure_id"],
            ["procedures.id"],
            name=op.f("fk_rule_states_procedure_id_procedures"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("procedure_id", name=op.f("pk_rule_states")),
    )


def downgrade():
    op.drop_table("rule_states")
