"""outbox seams: the enqueuing domain's wanted_key replaces notifications.assignment_id; the
scheduler's claim indexes end with id (they give the claim order)

Revision ID: 0011_outbox_seams
Revises: 0010_queue_index
Create Date: 2026-12-02 15:10:00.000000

"""

from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = "0011_outbox_seams"
down_revision = "0010_queue_index"
branch_labels = None
depends_on = None

# (table, index, columns before): after, the same columns then id.
CLAIM_INDEXES = (
    ("assignments", "ix_assignments_status_opens_at", ["status", "opens_at"]),
    ("assignments", "ix_assignments_status_closes_at", ["status", "closes_at"]),
    ("reminders", "ix_reminders_status_due_at", ["status", "due_at"]),
    ("deliveries", "ix_deliveries_status_next_attempt_at", ["status", "next_attempt_at"]),
    ("deliveries", "ix_deliveries_status_claimed_until", ["status", "claimed_until"]),
)


def _hex(column: str) -> str:
    # schedule.services.wanted_key: the assignment id as 32 hex digits (SQLite stores it so).
    if op.get_bind().dialect.name == "postgresql":
        return f"replace(CAST({column} AS TEXT), '-', '')"
    return column


def upgrade():
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("wanted_key", sa.String(length=100), nullable=True))
    op.execute(
        "UPDATE notifications SET wanted_key = 'questionnaire:' || "
        f"{_hex('assignment_id')} WHERE assignment_id IS NOT NULL"
    )
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notifications_assignment_id"))
        batch_op.drop_constraint(
            batch_op.f("fk_notifications_assignment_id_assignments"), type_="foreignkey"
        )
        batch_op.drop_column("assignment_id")
    for table, name, columns in CLAIM_INDEXES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(name)
            batch_op.create_index(name, [*columns, "id"], unique=False)


def downgrade():
    for table, name, columns in CLAIM_INDEXES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(name)
            batch_op.create_index(name, columns, unique=False)
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("assignment_id", sa.Uuid(), nullable=True))
    key = "substr(wanted_key, 15)"
    value = f"CAST({key} AS UUID)" if op.get_bind().dialect.name == "postgresql" else key
    op.execute(
        f"UPDATE notifications SET assignment_id = {value} WHERE wanted_key LIKE 'questionnaire:%'"
    )
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.create_foreign_key(
            batch_op.f("fk_notifications_assignment_id_assignments"),
            "assignments",
            ["assignment_id"],
            ["id"],
        )
        batch_op.create_index(
            batch_op.f("ix_notifications_assignment_id"), ["assignment_id"], unique=False
        )
        batch_op.drop_column("wanted_key")
