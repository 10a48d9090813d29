"""a school's narrowing (issue 9): a school user (班主任, 德育处; ``shouhu.narrow`` 'school:<id>', from
the token's ``school`` claim) reaches only the children enrolled at its school (children.school_id),
and their agreements, absences and growth notes; 'school:' without an id reaches no child

Restrictive policies beside the area's (shared.security.rls.narrow, named shouhu_school_*): a child a
school registers must carry its school; a transfer (转移) to another school stays possible, as a move
out of the area is (0008): a trigger notes the child whose school an update changes in shouhu.moving,
and the read policy lets exactly that row through to the end of the transaction.

Revision ID: 0009_school
Revises: 0008_transfers
Create Date: 2026-12-04 18:30:00
"""
from alembic import op

from shared.security.rls import MOVED, NARROWING_FUNCTION, SCHOOL_FUNCTION, narrow, note_moves, unnarrow

revision = '0009_school'
down_revision = '0008_transfers'
branch_labels = None
depends_on = None

_OF_CHILD = "shouhu_school_allows((SELECT c.school_id FROM children c WHERE c.id = child_id))"
THROUGH_CHILD = ["agreements", "absences", "growth_notes"]


def upgrade() -> None:
    op.execute(NARROWING_FUNCTION)
    op.execute(SCHOOL_FUNCTION)
    note_moves(op, "children", "school_id")
    narrow(op, "children", "shouhu_school_allows(school_id)", read=f"(shouhu_school_allows(school_id) OR {MOVED})",
           name="shouhu_school")
    for table in THROUGH_CHILD:
        narrow(op, table, _OF_CHILD, name="shouhu_school")


def downgrade() -> None:
    for table in ["children", *THROUGH_CHILD]:
        unnarrow(op, table, name="shouhu_school")
    op.execute("DROP TRIGGER IF EXISTS shouhu_note_moving_school_id ON children")
    op.execute("DROP FUNCTION IF EXISTS shouhu_school_allows(text)")
    op.execute("DROP FUNCTION IF EXISTS shouhu_narrowing()")
