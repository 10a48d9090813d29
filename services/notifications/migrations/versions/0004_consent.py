"""consent (issue 9): the guardian's consent per child (registry.consent.changed), and the reason a
delivery to the family was suppressed while it was withdrawn (services/notifications/domain/model.py)

Revision ID: 0004_consent
Revises: 0003_audit
Create Date: 2026-12-04 18:00:00
"""
from alembic import op
import sqlalchemy as sa

revision = '0004_consent'
down_revision = '0003_audit'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'consents',
        sa.Column('child_id', sa.UUID(), nullable=False),
        sa.Column('consent', sa.Text(), nullable=False),
        sa.Column('effective_on', sa.Date(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.PrimaryKeyConstraint('child_id', name=op.f('pk_consents')),
    )
    op.add_column('deliveries', sa.Column('suppressed_reason', sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column('deliveries', 'suppressed_reason')
    op.drop_table('consents')
