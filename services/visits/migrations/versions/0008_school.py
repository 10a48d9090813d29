"""a school's narrowing (issue 9): a school user (``shouhu.narrow`` 'school:<id>', from the token's
``school`` claim) reaches only the children enrolled at its school (children.school_id, kept from the
registry's events), their visit records and their cases; 'school:' without an id reaches no child

0007's narrowing functions knew 'helper:' and 'agency:' only (anything else: no row). They gain the
row's school as an argument (children: its column; visit records and cases: their child's, looked up,
so that the children's policy does not read its own table) and a 'school:' branch
(shouhu_school_allows, as in the registry); the policies are made again with them.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 18:30:00
"""
from alembic import op

from shared.security.rls import SCHOOL_FUNCTION, narrow, unnarrow

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

FUNCTIONS = [
    SCHOOL_FUNCTION,
    """
CREATE OR REPLACE FUNCTION shouhu_child_narrowed(child uuid, place text, agency_sees boolean, school text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN shouhu_narrowing() = '' THEN true
        WHEN starts_with(shouhu_narrowing(), 'school:') THEN shouhu_school_allows(school)
        ELSE shouhu_child_narrowed(child, place, agency_sees)
    END
$$
""",
    """
CREATE OR REPLACE FUNCTION shouhu_case_narrowed(referral uuid, child uuid, place text, stage text, purposes text[], school text)
RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN shouhu_narrowing() = '' THEN true
        WHEN starts_with(shouhu_narrowing(), 'school:') THEN shouhu_school_allows(school)
        ELSE shouhu_case_narrowed(referral, child, place, stage, purposes)
    END
$$
""",
]
_SCHOOL_OF_CHILD = "(SELECT c.school_id FROM children c WHERE c.child_id = {0}.child_id)"
READ = "ARRAY['report', 'inform', 'escalation']"
NARROWED = {
    "children": ("shouhu_child_narrowed(child_id, village_code, true, school_id)", None),
    "visit_records": (f"shouhu_child_narrowed(child_id, village_code, false, {_SCHOOL_OF_CHILD.format('visit_records')})", None),
    "referrals": (f"shouhu_case_narrowed(id, child_id, village_code, stage, {READ}, {_SCHOOL_OF_CHILD.format('referrals')})",
                  f"shouhu_case_narrowed(id, child_id, village_code, stage, ARRAY['report'], {_SCHOOL_OF_CHILD.format('referrals')})"),
}
# 0007's policies, made again on downgrade.
BEFORE = {
    "children": ("shouhu_child_narrowed(child_id, village_code, true)", None),
    "visit_records": ("shouhu_child_narrowed(child_id, village_code, false)", None),
    "referrals": (f"shouhu_case_narrowed(id, child_id, village_code, stage, {READ})",
                  "shouhu_case_narrowed(id, child_id, village_code, stage, ARRAY['report'])"),
}


def _policies(made: dict) -> None:
    for table, (allows, update) in made.items():
        unnarrow(op, table)
        narrow(op, table, allows, update=update)


def upgrade() -> None:
    for statement in FUNCTIONS:
        op.execute(statement)
    _policies(NARROWED)


def downgrade() -> None:
    _policies(BEFORE)
    op.execute("DROP FUNCTION IF EXISTS shouhu_case_narrowed(uuid, uuid, text, text, text[], text)")
    op.execute("DROP FUNCTION IF EXISTS shouhu_child_narrowed(uuid, text, boolean, text)")
    op.execute("DROP FUNCTION IF EXISTS shouhu_school_allows(text)")
