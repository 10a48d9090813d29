"""the outbox vacuumed at 10,000 dead rows, without pauses (issue 10; why: shared/outbox.py, OUTBOX_VACUUM).
Autovacuum must run for it to act: the CI machines' PostgreSQL has it off (conf.d/90-ci.conf).

Revision ID: 0009
Revises: 0008
"""
from alembic import op

from shared.outbox import OUTBOX_VACUUM, OUTBOX_VACUUM_RESET

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(OUTBOX_VACUUM)


def downgrade() -> None:
    op.execute(OUTBOX_VACUUM_RESET)
