"""notifications by staff member: only the staff's are indexed (partial)

``ix_notifications_user_id`` held an entry for every notification, a NULL for each of the
patients' (nearly all of them: every reminder). Its only reader is the foreign-key check of a
change to ``users`` (``user_id = $1``, which the partial index answers). As
``ix_notifications_staff_user`` (``user_id`` where ``user_id IS NOT NULL``), a patient's
notification writes no entry in it: one index entry fewer per reminder of a busy minute
(issue 17).

Revision ID: 0021_notifications_staff_index
Revises: 0020_reminders_next_due
Create Date: 2026-12-07 07:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0021_notifications_staff_index"
down_revision = "0020_reminders_next_due"
branch_labels = None
depends_on = None

STAFF = sa.text("user_id IS NOT NULL")


def upgrade():
    op.drop_index("ix_notifications_user_id", table_name="notifications")
    op.create_index(
        "ix_notifications_staff_user",
        "notifications",
        ["user_id"],
        postgresql_where=STAFF,
        sqlite_where=STAFF,
    )


def downgrade():
    op.drop_index("ix_notifications_staff_user", table_name="notifications")
    op.create_index("ix_notifications_user_id", "notifications", ["user_id"])
