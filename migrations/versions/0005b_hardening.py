"""hardening: the audit log refuses TRUNCATE too

Revision ID: 0005b_hardening
Revises: 0004
Create Date: 2026-12-01 21:40:00

The row trigger of 0001 refuses UPDATE and DELETE; TRUNCATE fires statement triggers only, so it
needs its own. The table's owner (the migrations' role) could still drop either trigger: in
production the app connects as a role that is not the owner (``flask db grant-app-role``,
README "Running in production"), and that role can neither truncate nor alter the table.
"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '0005b_hardening'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events "
            "FOR EACH STATEMENT EXECUTE FUNCTION refuse_audit_change()"
        )


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_truncate ON audit_events")
