"""reminders: the ladder's last rung written when the one before it is settled

A questionnaire's opening wrote its whole reminder ladder: three rows, two of them pending (a
sixth of the database's buffers and half its foreign-key checks per reminder of a busy minute,
issue 17), and the last one most often settled later as ``skipped``/``answered`` without ever
being useful. Now the rung before the last carries the last one's planned due time
(``next_due_at``) and the reminder job writes that row when it settles this one, unless the
questionnaire no longer wants reminders.

Downgrade: the rows a pending reminder still carries are written as the old code expects them
(pending, at their planned time), then the column is dropped.

Revision ID: 0020_reminders_next_due
Revises: 0019_reminders_pending_patient
Create Date: 2026-12-07 07:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0020_reminders_next_due"
down_revision = "0019_reminders_pending_patient"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("reminders") as batch:
        batch.add_column(sa.Column("next_due_at", sa.DateTime(timezone=True), nullable=True))


def downgrade():
    # Copied in SQL, so the times keep the form they were stored in; only the id is new.
    new_id = (
        "gen_random_uuid()"
        if op.get_bind().dialect.name == "postgresql"
        else "lower(hex(randomblob(16)))"
    )
    op.execute(
        "INSERT INTO reminders (id, assignment_id, patient_id, rung, due_at, status,"
        " created_at, updated_at)"
        f" SELECT {new_id}, assignment_id, patient_id, rung + 1, next_due_at, 'pending',"
        " created_at, created_at FROM reminders"
        " WHERE status = 'pending' AND next_due_at IS NOT NULL"  # noqa: S608 - no input
    )
    with op.batch_alter_table("reminders") as batch:
        batch.drop_column("next_due_at")
