"""reminders by patient: only the pending ones are indexed (partial)

``ix_reminders_patient_id`` held every reminder. Its one reader (an ended follow-up skips the
patient's pending reminders) asks for the pending ones only, and patients are never deleted
(no foreign-key check scans reminders by patient). As ``ix_reminders_pending_patient``
(``patient_id`` where ``status = 'pending'``), the rung enqueued as its questionnaire opens, and
every rung when it is settled, write no entry in it: one index entry fewer per reminder of a
busy minute (issue 17), and a year of settled reminders leaves it.

Revision ID: 0019_reminders_pending_patient
Revises: 0018_claim_partial_indexes
Create Date: 2026-12-07 04:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0019_reminders_pending_patient"
down_revision = "0018_claim_partial_indexes"
branch_labels = None
depends_on = None

PENDING = sa.text("status = 'pending'")


def upgrade():
    op.drop_index("ix_reminders_patient_id", table_name="reminders")
    op.create_index(
        "ix_reminders_pending_patient",
        "reminders",
        ["patient_id"],
        postgresql_where=PENDING,
        sqlite_where=PENDING,
    )


def downgrade():
    op.drop_index("ix_reminders_pending_patient", table_name="reminders")
    op.create_index("ix_reminders_patient_id", "reminders", ["patient_id"])
