"""rule versions per site (with history) and shadow signals of candidate versions (issue 15)

Revision ID: 0008_rule_versions
Revises: 0006_lifecycle (brief: 0004; re-chained onto main's head at rebase)
Create Date: 2026-12-01 22:30:00

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = '0008_rule_versions'
down_revision = "0007_attribution"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade():
    op.create_table('site_rule_versions',
    sa.Column('site_id', sa.Uuid(), nullable=False),
    sa.Column('active_version', sa.Integer(), nullable=False),
    sa.Column('candidate_version', sa.Integer(), nullable=True),
    sa.Column('set_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('set_by_id', sa.Uuid(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['set_by_id'], ['users.id'], name=op.f('fk_site_rule_versions_set_by_id_users')),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_site_rule_versions_site_id_sites')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_site_rule_versions'))
    )
    with op.batch_alter_table('site_rule_versions', schema=None) as batch_op:
        batch_op.create_index('ix_site_rule_versions_site_set_at', ['site_id', 'set_at'], unique=False)

    op.create_table('shadow_signals',
    sa.Column('site_id', sa.Uuid(), nullable=False),
    sa.Column('patient_id', sa.Uuid(), nullable=False),
    sa.Column('procedure_id', sa.Uuid(), nullable=False),
    sa.Column('rule_version', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('severity', sa.String(length=8), nullable=False),
    sa.Column('signal_key', sa.String(length=80), nullable=False),
    sa.Column('response_id', sa.Uuid(), nullable=True),
    sa.Column('answered_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reasons', JSON, nullable=False),
    sa.Column('summary', JSON, nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_shadow_signals_patient_id_patients')),
    sa.ForeignKeyConstraint(['procedure_id'], ['procedures.id'], name=op.f('fk_shadow_signals_procedure_id_procedures')),
    sa.ForeignKeyConstraint(['response_id'], ['responses.id'], name=op.f('fk_shadow_signals_response_id_responses')),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_shadow_signals_site_id_sites')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_shadow_signals')),
    sa.UniqueConstraint('procedure_id', 'rule_version', 'signal_key', name='uq_shadow_signals_signal')
    )
    with op.batch_alter_table('shadow_signals', schema=None) as batch_op:
        batch_op.create_index('ix_shadow_signals_site_version', ['site_id', 'rule_version'], unique=False)


def downgrade():
    with op.batch_alter_table('shadow_signals', schema=None) as batch_op:
        batch_op.drop_index('ix_shadow_signals_site_version')
    op.drop_table('shadow_signals')
    with op.batch_alter_table('site_rule_versions', schema=None) as batch_op:
        batch_op.drop_index('ix_site_rule_versions_site_set_at')
    op.drop_table('site_rule_versions')
