"""narrowing (issue 9): row-level security inside the area. A helper's login sees only the children
it is paired with (and their visit records and cases); an agency sees only the cases disclosed to its
kind while they are open past persuasion, and those cases' children, and no visit record

The narrowing comes from ``shouhu.narrow`` (shared/security/rls.py): ``helper:<login>`` or
``agency:<kind>``; '' (the offices and the service's own work) passes every row the area lets through.

- helper: a pairing of a helper registered for the login (helpers.account), in force or ended within
  the last 732 days (the reads' look-back: scores of a past term or year need the children paired
  then); a helper of role village_supervisor (the first responder) also reaches its place's children.
- agency: a disclosure of the case to the agency's kind (referral_disclosures: report, inform or
  escalation, written as the case goes out), the case not closed and not in the school's persuasion;
  an update (acknowledgement, outcome) only by a kind the case was reported to (report), not one
  merely informed. A child's row is seen through its visible cases.
  PostgreSQL holds an UPDATE's new row to the read policies too, so the agency closing its case
  would be refused: a trigger notes the case closed in the transaction (``shouhu.closing``, local
  to it), and that one case stays readable until the transaction ends.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 18:00:00
"""
from alembic import op

from shared.security.rls import NARROWING_FUNCTION, narrow, unnarrow

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

# No FROM in the bodies: the planner inlines them, and '' (most callers) costs one setting lookup a row.
FUNCTIONS = [
    NARROWING_FUNCTION,
    """
CREATE OR REPLACE FUNCTION shouhu_helper_reaches(login text, child uuid, place text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (
        SELECT 1 FROM helpers h
        WHERE h.account = login AND (
            (h.role = 'village_supervisor' AND starts_with(place, h.region_code))
            OR EXISTS (SELECT 1 FROM pairings p WHERE p.helper_id = h.id AND p.child_id = child
                       AND (p.ended_on IS NULL OR p.ended_on > current_date - 732))))
$$
""",
    """
CREATE OR REPLACE FUNCTION shouhu_case_disclosed(referral uuid, kind text, purposes text[]) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT kind <> '' AND EXISTS (
        SELECT 1 FROM referral_disclosures d WHERE d.referral_id = referral AND d.agency = kind AND d.purpose = ANY (purposes))
$$
""",
    # children and visit_records: the helper's paired children; an agency: children of its visible cases, no record.
    """
CREATE OR REPLACE FUNCTION shouhu_child_narrowed(child uuid, place text, agency_sees boolean) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN shouhu_narrowing() = '' THEN true
        WHEN starts_with(shouhu_narrowing(), 'helper:') THEN shouhu_helper_reaches(substr(shouhu_narrowing(), 8), child, place)
        WHEN starts_with(shouhu_narrowing(), 'agency:') THEN agency_sees AND EXISTS (SELECT 1 FROM referrals r WHERE r.child_id = child)
        ELSE false
    END
$$
""",
    """
CREATE OR REPLACE FUNCTION shouhu_case_narrowed(referral uuid, child uuid, place text, stage text, purposes text[])
RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN shouhu_narrowing() = '' THEN true
        WHEN starts_with(shouhu_narrowing(), 'helper:') THEN shouhu_helper_reaches(substr(shouhu_narrowing(), 8), child, place)
        WHEN starts_with(shouhu_narrowing(), 'agency:') THEN shouhu_case_disclosed(referral, substr(shouhu_narrowing(), 8), purposes)
            AND (stage NOT IN ('closed', 'persuasion')
                 OR (stage = 'closed' AND coalesce(current_setting('shouhu.closing', true), '') = referral::text))
        ELSE false
    END
$$
""",
]
CLOSING = [
    """
CREATE OR REPLACE FUNCTION shouhu_note_closing() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.stage = 'closed' AND OLD.stage <> 'closed' THEN
        PERFORM set_config('shouhu.closing', NEW.id::text, true);
    END IF;
    RETURN NEW;
END
$$
""",
    "CREATE TRIGGER shouhu_note_closing BEFORE UPDATE OF stage ON referrals FOR EACH ROW EXECUTE FUNCTION shouhu_note_closing()",
]
READ = "ARRAY['report', 'inform', 'escalation']"
NARROWED = {
    "children": ("shouhu_child_narrowed(child_id, village_code, true)", None),
    "visit_records": ("shouhu_child_narrowed(child_id, village_code, false)", None),
    "referrals": (f"shouhu_case_narrowed(id, child_id, village_code, stage, {READ})",
                  "shouhu_case_narrowed(id, child_id, village_code, stage, ARRAY['report'])"),
}
DROPPED = [
    "shouhu_case_narrowed(uuid, uuid, text, text, text[])", "shouhu_child_narrowed(uuid, text, boolean)",
    "shouhu_case_disclosed(uuid, text, text[])", "shouhu_helper_reaches(text, uuid, text)", "shouhu_narrowing()",
]


def upgrade() -> None:
    for statement in FUNCTIONS + CLOSING:
        op.execute(statement)
    for table, (allows, update) in NARROWED.items():
        narrow(op, table, allows, update=update)


def downgrade() -> None:
    for table in NARROWED:
        unnarrow(op, table)
    op.execute("DROP TRIGGER IF EXISTS shouhu_note_closing ON referrals")
    op.execute("DROP FUNCTION IF EXISTS shouhu_note_closing()")
    for function in DROPPED:
        op.execute(f"DROP FUNCTION IF EXISTS {function}")
