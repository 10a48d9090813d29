"""transfers under row-level security: a township's transfer (转移) of a child to another township
moves the archive out of the caller's area, which the read policies refused to the new row under a
non-superuser role; the moved archive stays readable to the end of its transaction

Revision ID: 0008_transfers
Revises: 0007_sealed_rosters
Create Date: 2026-12-04 18:10:00
"""
from alembic import op

from shared.security.rls import keep_moves_in, let_move_out

revision = '0008_transfers'
down_revision = '0007_sealed_rosters'
branch_labels = None
depends_on = None


def upgrade() -> None:
    let_move_out(op, "children", "village_code")


def downgrade() -> None:
    keep_moves_in(op, "children")
    op.execute("DROP FUNCTION IF EXISTS shouhu_note_moving()")
