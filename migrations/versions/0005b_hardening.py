"""hardening: the audit log refuses TRUNCATE too; enrollment sheets kept server-side

Revision ID: 0005b_hardening
Revises: 0004
Create Date: 2026-12-01 21:40:00

The row trigger of 0001 refuses UPDATE and DELETE; TRUNCATE fires statement triggers only, so it
needs its own. The table's owner (the migrations' role) could still drop either trigger: in
production the app connects as a role that is not the owner (``flask db grant-app-role``,
README "Running in production"), and that role can neither truncate nor alter the table.
"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = '0005b_hardening'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('enrollment_sheets',
    sa.Column('patient_id', sa.Uuid(), nullable=False),
    sa.Column('auth_session_id', sa.Uuid(), nullable=False),
    sa.Column('masked_code', sa.String(length=64), nullable=False),
    sa.Column('code_expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['auth_session_id'], ['auth_sessions.id'], name=op.f('fk_enrollment_sheets_auth_session_id_auth_sessions'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_enrollment_sheets_patient_id_patients'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_enrollment_sheets'))
    )
    with op.batch_alter_table('enrollment_sheets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_enrollment_sheets_expires_at'), ['expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_enrollment_sheets_patient_id'), ['patient_id'], unique=False)

    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events "
            "FOR EACH STATEMENT EXECUTE FUNCTION refuse_audit_change()"
        )


def downgrade():
    with op.batch_alter_table('enrollment_sheets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_enrollment_sheets_patient_id'))
        batch_op.drop_index(batch_op.f('ix_enrollment_sheets_expires_at'))
    op.drop_table('enrollment_sheets')
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_truncate ON audit_events")
