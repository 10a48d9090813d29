"""census_imports.content sealed at rest: the key that sealed each roster (NULL: a roster stored in
clear before this revision; `shouhu registry rotate-keys` seals those under the newest key)

Revision ID: 0007_sealed_rosters
Revises: 0006_access
Create Date: 2026-12-04 18:00:00
"""
from alembic import op
import sqlalchemy as sa

revision = '0007_sealed_rosters'
down_revision = '0006_access'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # No sealing here: the migration may run where the key ring is not configured (a migration job),
    # and a roster sealed under a key the service lacks would be lost.
    op.add_column('census_imports', sa.Column('content_key', sa.Text(), nullable=True))


def downgrade() -> None:
    # Rosters sealed since cannot be read by the older code: downgrading needs them gone or unsealed first.
    op.drop_column('census_imports', 'content_key')
