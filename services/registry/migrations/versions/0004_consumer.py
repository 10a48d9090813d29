"""the registry consumes visits.events (the enrolment status follows a dropout case): inbox and positions

Revision ID: 0004_consumer
Revises: 0003_archive
Create Date: 2026-12-01 21:35:00
"""
from alembic import op
import sqlalchemy as sa

revision = '0004_consumer'
down_revision = '0003_archive'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('aggregate_positions',
    sa.Column('stream', sa.Text(), nullable=False),
    sa.Column('aggregate_id', sa.Text(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('stream', 'aggregate_id', name=op.f('pk_aggregate_positions'))
    )
    op.create_table('inbox',
    sa.Column('consumer', sa.Text(), nullable=False),
    sa.Column('event_id', sa.UUID(), nullable=False),
    sa.Column('processed_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('consumer', 'event_id', name=op.f('pk_inbox'))
    )


def downgrade() -> None:
    op.drop_table('inbox')
    op.drop_table('aggregate_positions')
