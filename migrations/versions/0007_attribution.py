"""staff language: users.locale (the API's texts follow it, then Accept-Language, then the site)

Revision ID: 0007_attribution
Revises: 0004
Create Date: 2026-12-01 21:40:00

Additive only (a nullable column and its check): the code already deployed keeps working.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_attribution"
down_revision = "0006_lifecycle"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("locale", sa.String(length=2), nullable=True))
        batch_op.create_check_constraint(
            "locale_known", "locale IS NULL OR locale IN ('fr', 'en')"
        )


def downgrade():
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_users_locale_known"), type_="check")
        batch_op.drop_column("locale")
