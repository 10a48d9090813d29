"""consent (issue 9): the guardian's consent in visits' children read model (registry.consent.changed);
while withdrawn, paired helpers' visits stop and statutory work goes on (services/visits/domain/consent.py)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 17:50:00
"""
from alembic import op
import sqlalchemy as sa

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The last withdrawal (撤回同意): from consent_withdrawn_on until consent_given_on (NULL: still withdrawn).
    # Both NULL: consent never withdrawn.
    op.add_column('children', sa.Column('consent_withdrawn_on', sa.Date(), nullable=True))
    op.add_column('children', sa.Column('consent_given_on', sa.Date(), nullable=True))


def downgrade() -> None:
    op.drop_column('children', 'consent_given_on')
    op.drop_column('children', 'consent_withdrawn_on')
