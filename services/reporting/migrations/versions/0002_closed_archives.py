"""closed (结档) or merged archives are kept in child_facts but counted nowhere

Revision ID: 0002_closed
Revises: 0001
Create Date: 2026-12-01 22:30:00
"""
from alembic import op
import sqlalchemy as sa

revision = '0002_closed'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('child_facts', sa.Column('closed', sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    op.drop_column('child_facts', 'closed')
