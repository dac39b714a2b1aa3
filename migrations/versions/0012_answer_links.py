"""answer links: a reminder's web link (hashed, single use) and each response's channel

Revision ID: 0012_answer_links
Revises: 0011_outbox_seams
Create Date: 2026-12-02 15:00:00

Additive: a new table and a nullable column with its check. Rows older than the column get
their channel from their source (a nurse's after a phone call, the others from the app).
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_answer_links"
down_revision = "0011_outbox_seams"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "answer_links",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("assignment_id", sa.Uuid(), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("failed_checks", sa.Integer(), nullable=False),
        sa.Column("locked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("session_hash", sa.String(length=64), nullable=True),
        sa.Column("session_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("response_id", sa.Uuid(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.CheckConstraint(
            "channel IN ('sms', 'email')", name=op.f("ck_answer_links_channel_known")
        ),
        sa.CheckConstraint(
            "failed_checks >= 0", name=op.f("ck_answer_links_failed_checks_positive")
        ),
        sa.ForeignKeyConstraint(
            ["assignment_id"],
            ["assignments.id"],
            name=op.f("fk_answer_links_assignment_id_assignments"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_answer_links_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["response_id"], ["responses.id"], name=op.f("fk_answer_links_response_id_responses")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_answer_links")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_answer_links_token_hash")),
    )
    with op.batch_alter_table("answer_links", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_answer_links_assignment_id"), ["assignment_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_answer_links_patient_id"), ["patient_id"], unique=False
        )

    with op.batch_alter_table("responses", schema=None) as batch_op:
        batch_op.add_column(sa.Column("channel", sa.String(length=8), nullable=True))
        batch_op.create_check_constraint(
            "channel_known", "channel IS NULL OR channel IN ('app', 'sms', 'email', 'phone')"
        )
    op.execute(
        "UPDATE responses SET channel = CASE WHEN source = 'nurse' THEN 'phone' ELSE 'app' END"
    )


def downgrade():
    with op.batch_alter_table("responses", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_responses_channel_known"), type_="check")
        batch_op.drop_column("channel")
    with op.batch_alter_table("answer_links", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_answer_links_patient_id"))
        batch_op.drop_index(batch_op.f("ix_answer_links_assignment_id"))
    op.drop_table("answer_links")
