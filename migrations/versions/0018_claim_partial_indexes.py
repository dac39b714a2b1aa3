"""the scheduler's claim indexes hold only what they claim (partial): questionnaires, reminders

Each claim of the reminder pipeline reads its batch off an index in (due time, id) order. The
indexes led with ``status`` and held every row, so every change of status (a questionnaire
opening, a reminder enqueued) wrote a new entry into each of them, and a year of finished rows
stayed in them. They now hold only the rows their claim can take:

- ``ix_assignments_pending_opens``: ``(opens_at, id)`` of the pending questionnaires (opening);
- ``ix_assignments_unfinished_closes``: ``(closes_at, id)`` of the pending and open ones
  (closing the missed);
- ``ix_reminders_pending_due``: ``(due_at, id)`` of the pending reminders (enqueueing).

A questionnaire opening now writes four index entries instead of five, a reminder enqueued three
instead of four (issue 17's reminder wave: a sixth of the database's work per message).

Revision ID: 0018_claim_partial_indexes
Revises: 0017_delivery_lease_indexes
Create Date: 2026-12-07 02:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0018_claim_partial_indexes"
down_revision = "0017_delivery_lease_indexes"
branch_labels = None
depends_on = None

PENDING = sa.text("status = 'pending'")
UNFINISHED = sa.text("status IN ('pending', 'open')")


def upgrade():
    op.drop_index("ix_assignments_status_opens_at", table_name="assignments")
    op.drop_index("ix_assignments_status_closes_at", table_name="assignments")
    op.drop_index("ix_reminders_status_due_at", table_name="reminders")
    op.create_index(
        "ix_assignments_pending_opens",
        "assignments",
        ["opens_at", "id"],
        postgresql_where=PENDING,
        sqlite_where=PENDING,
    )
    op.create_index(
        "ix_assignments_unfinished_closes",
        "assignments",
        ["closes_at", "id"],
        postgresql_where=UNFINISHED,
        sqlite_where=UNFINISHED,
    )
    op.create_index(
        "ix_reminders_pending_due",
        "reminders",
        ["due_at", "id"],
        postgresql_where=PENDING,
        sqlite_where=PENDING,
    )


def downgrade():
    op.drop_index("ix_reminders_pending_due", table_name="reminders")
    op.drop_index("ix_assignments_unfinished_closes", table_name="assignments")
    op.drop_index("ix_assignments_pending_opens", table_name="assignments")
    op.create_index("ix_reminders_status_due_at", "reminders", ["status", "due_at", "id"])
    op.create_index("ix_assignments_status_closes_at", "assignments", ["status", "closes_at", "id"])
    op.create_index("ix_assignments_status_opens_at", "assignments", ["status", "opens_at", "id"])
