"""children: the ID number sealed at rest, the guardian's consent, the day a closed archive was de-identified

Revision ID: 0005_protection
Revises: 0004_consumer
Create Date: 2026-12-03 10:00:00
"""
from alembic import op
import sqlalchemy as sa

revision = '0005_protection'
down_revision = '0004_consumer'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('children', sa.Column('id_number_sealed', sa.Text(), nullable=True))
    op.add_column('children', sa.Column('consent', sa.Text(), nullable=True))
    op.add_column('children', sa.Column('consent_on', sa.Date(), nullable=True))
    op.add_column('children', sa.Column('deidentified_on', sa.Date(), nullable=True))


def downgrade() -> None:
    for column in ('deidentified_on', 'consent_on', 'consent', 'id_number_sealed'):
        op.drop_column('children', column)
