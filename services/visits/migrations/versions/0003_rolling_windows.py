"""visits: rolling windows (滚动周期): a rule's length in days, set exactly when its window is rolling.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 21:30:00
"""
from alembic import op
import sqlalchemy as sa

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('visit_rules', sa.Column('days', sa.Integer(), nullable=True))
    op.create_check_constraint(
        op.f('ck_visit_rules_rolling_days'), 'visit_rules', "(\"window\" = 'rolling') = (days IS NOT NULL)"
    )


def downgrade() -> None:
    op.drop_constraint(op.f('ck_visit_rules_rolling_days'), 'visit_rules', type_='check')
    op.drop_column('visit_rules', 'days')
