"""the triage queue's index: a site's unresolved alerts by severity and age (issue 17)

The queue reads each segment (a severity, overdue or not) in age order along this index, which
holds only unresolved alerts, so it stays small however many alerts were resolved.

Revision ID: 0010_queue_index
Revises: 0009_research
Create Date: 2026-12-02 14:40:00

"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = '0010_queue_index'
down_revision = '0009_research'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index(
        'ix_alerts_unresolved_queue',
        'alerts',
        ['site_id', 'severity_rank', 'created_at', 'id'],
        unique=False,
        postgresql_where=sa.text("status <> 'resolved'"),
        sqlite_where=sa.text("status <> 'resolved'"),
    )


def downgrade():
    op.drop_index('ix_alerts_unresolved_queue', table_name='alerts')
