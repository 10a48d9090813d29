"""Row-level security (行级安全): the second enforcement of the caller's area, in PostgreSQL.

Every transaction of a service's sessions sets ``shouhu.scope`` (SET LOCAL, from the request's
principal: ``region:<prefix>``; ``system`` for the service's own workers, whose connections open
with it, so their transactions need not; ``none`` for a request without a verified principal).
The policies on the tables holding children's data let a row through only when its place code
starts with the prefix, so a query whose service-layer check was forgotten
still returns nothing outside the caller's area. Beside it, ``shouhu.narrow`` names a narrower
reach inside the area (``helper:<login>``, ``agency:<kind>``, ``school:<id>``, "" for everyone else), which a service
enforces with restrictive policies of its own (``narrow``: visits' pairings and disclosures).
Superusers and the tables' owner without FORCE bypass RLS: the migrations FORCE it, and the
services must connect as a non-superuser role."""

from __future__ import annotations

from sqlalchemy import event, false, text
from sqlalchemy.orm import Session

from shared.security.access import REGION_SCOPE, SYSTEM_SCOPE, current_school, db_narrowing, db_scope

SCOPE_FUNCTION = """
CREATE OR REPLACE FUNCTION shouhu_scope_allows(place text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN s = 'system' THEN true
        WHEN s LIKE 'region:%' THEN starts_with(place, substr(s, 8))
        ELSE false  -- unset, 'none' or anything else: no row
    END
    FROM (SELECT coalesce(current_setting('shouhu.scope', true), '') AS s) AS scope
$$
"""


class ScopedSession(Session):
    """A session whose every transaction runs under the current access's scope."""


# The workers' connections (shared/db.py make_engine(worker=True)) start under the system scope: the
# settings are sent when the connection opens and nothing sets them for a session after (a transaction's
# set_config is local to it), so every transaction on such a connection begins under them.
WORKER_SCOPE = {"shouhu.scope": SYSTEM_SCOPE, "shouhu.narrow": ""}
_STARTED_UNDER = "shouhu_started_under"  # engine execution option: the (scope, narrowing) its connections open with


def started_under(settings: dict[str, str]) -> dict[str, tuple[str, str]]:
    """The execution options of an engine whose connections open with ``settings`` (``WORKER_SCOPE``)."""
    return {_STARTED_UNDER: (settings["shouhu.scope"], settings["shouhu.narrow"])}


_AS = text("SELECT set_config('shouhu.scope', :scope, true), set_config('shouhu.narrow', :narrow, true)")


@event.listens_for(ScopedSession, "after_begin")
def _set_scope(session, transaction, connection) -> None:
    scope, narrow = db_scope(), db_narrowing()
    # A transaction under the scope its connection opened with skips the round trip (a consumer's batch).
    if connection.get_execution_options().get(_STARTED_UNDER) != (scope, narrow):
        connection.execute(_AS, {"scope": scope, "narrow": narrow})


def protect(op, table: str, place: str) -> None:
    """Put ``table`` under the scope policies (in a migration; ``op``: alembic's). ``place`` is an SQL
    expression of the row's place code: a column, or a lookup through the row's child (itself
    under its policy, so an unseen child's rows are unseen too). An update may move a row out of
    the caller's area (a transfer to another township): the old row must be in it, the new one need not."""
    allows = f"shouhu_scope_allows({place})"
    for statement in (
        f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY",
        f"CREATE POLICY shouhu_scope_read ON {table} FOR SELECT USING ({allows})",
        f"CREATE POLICY shouhu_scope_insert ON {table} FOR INSERT WITH CHECK ({allows})",
        f"CREATE POLICY shouhu_scope_update ON {table} FOR UPDATE USING ({allows}) WITH CHECK (true)",
        f"CREATE POLICY shouhu_scope_delete ON {table} FOR DELETE USING ({allows})",
    ):
        op.execute(statement)


NARROWING_FUNCTION = """
CREATE OR REPLACE FUNCTION shouhu_narrowing() RETURNS text
LANGUAGE sql STABLE AS $$ SELECT coalesce(current_setting('shouhu.narrow', true), '') $$
"""


def narrow(op, table: str, allows: str, *, update: str | None = None, read: str | None = None,
           name: str = "shouhu_narrow") -> None:
    """Restrictive policies on ``table`` beside its area policies (a row must pass both): ``allows``
    an SQL expression of the row, true when ``shouhu_narrowing()`` is '' (the offices, 'system').
    ``update``: what an update's old row must pass, when it differs; the new row need not (a case closed).
    ``read``: what a row must pass to be read, when it differs (a row moving out, ``MOVED``).
    ``name``: the policies' prefix, for a second set on the same table (``shouhu_school``)."""
    for statement in (
        f"CREATE POLICY {name}_read ON {table} AS RESTRICTIVE FOR SELECT USING ({read or allows})",
        f"CREATE POLICY {name}_insert ON {table} AS RESTRICTIVE FOR INSERT WITH CHECK ({allows})",
        f"CREATE POLICY {name}_update ON {table} AS RESTRICTIVE FOR UPDATE USING ({update or allows}) WITH CHECK (true)",
        f"CREATE POLICY {name}_delete ON {table} AS RESTRICTIVE FOR DELETE USING ({allows})",
    ):
        op.execute(statement)


# A school's reach (shouhu.narrow 'school:<id>'): its pupils; true for every other narrowing.
SCHOOL_FUNCTION = """
CREATE OR REPLACE FUNCTION shouhu_school_allows(school text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT NOT starts_with(shouhu_narrowing(), 'school:')
        OR (substr(shouhu_narrowing(), 8) <> '' AND school = substr(shouhu_narrowing(), 8))
$$
"""


def school_filter(school_column) -> list:
    """The service layer's school narrowing for a query (the same rule as ``shouhu_school_allows``):
    nothing for other roles and the service's own work; a school user's pupils; no row for a school
    token without a ``school`` claim."""
    school = current_school()
    if school is None:
        return []
    return [school_column == school] if school else [false()]


MOVING_FUNCTION = """
CREATE OR REPLACE FUNCTION shouhu_note_moving() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('shouhu.moving', coalesce(current_setting('shouhu.moving', true), '') || ',' || NEW.id::text, true);
    RETURN NEW;
END
$$
"""


def let_move_out(op, table: str, place_column: str) -> None:
    """Let an update move a row of ``table`` (keyed by ``id``) out of the caller's area: a transfer
    (转移) from one township to another is recorded by the sending side. PostgreSQL holds an
    UPDATE's new row to the read policies as well, so without this it refuses the move. A trigger
    notes the moved rows (only rows the caller could update reach it) in ``shouhu.moving``, local to
    the transaction, and a permissive read policy lets those rows through until it ends."""
    op.execute(MOVING_FUNCTION)
    note_moves(op, table, place_column, trigger="shouhu_note_moving")
    op.execute(f"CREATE POLICY shouhu_scope_moving ON {table} FOR SELECT USING ({MOVED})")


# The rows an update of this transaction moved (``shouhu.moving``, noted by ``note_moves``).
MOVED = "id::text = ANY (string_to_array(current_setting('shouhu.moving', true), ','))"


def note_moves(op, table: str, column: str, *, trigger: str | None = None) -> None:
    """A trigger noting in ``shouhu.moving`` the rows of ``table`` whose ``column`` an update changes
    (``let_move_out``'s: the place; also a school, for a transfer to another school)."""
    op.execute(f"CREATE TRIGGER {trigger or 'shouhu_note_moving_' + column} BEFORE UPDATE OF {column} ON {table} "
               f"FOR EACH ROW WHEN (OLD.{column} IS DISTINCT FROM NEW.{column}) EXECUTE FUNCTION shouhu_note_moving()")


def keep_moves_in(op, table: str) -> None:
    op.execute(f"DROP POLICY IF EXISTS shouhu_scope_moving ON {table}")
    op.execute(f"DROP TRIGGER IF EXISTS shouhu_note_moving ON {table}")


def unnarrow(op, table: str, *, name: str = "shouhu_narrow") -> None:
    for kind in ("read", "insert", "update", "delete"):
        op.execute(f"DROP POLICY IF EXISTS {name}_{kind} ON {table}")


def unprotect(op, table: str) -> None:
    for kind in ("read", "insert", "update", "delete"):
        op.execute(f"DROP POLICY IF EXISTS shouhu_scope_{kind} ON {table}")
    op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")


def upgrade_access(op, protected: list[tuple[str, str]]) -> None:
    """A service's access migration: the scope function, its ``(table, place)`` pairs protected, the audit log."""
    from shared.security.audit import create_audit_log

    op.execute(SCOPE_FUNCTION)
    for table, place in protected:
        protect(op, table, place)
    create_audit_log(op)


def downgrade_access(op, protected: list[tuple[str, str]]) -> None:
    from shared.security.audit import drop_audit_log

    drop_audit_log(op)
    for table, _ in protected:
        unprotect(op, table)
    op.execute("DROP FUNCTION shouhu_scope_allows(text)")


async def hidden_by_the_scope(session, statement) -> list:
    """The rows of ``statement`` (asked for what the caller's own query did not find) that the caller's scope
    hides, for a rule that holds beyond the area (an ID number is one child's in the whole province): run under
    the system's scope for this statement alone, then the caller's again (a statement that fails aborts the
    transaction, scope and all); [] at once when the scope hides nothing. The caller must not show them."""
    if db_scope() in (SYSTEM_SCOPE, REGION_SCOPE) and not db_narrowing():  # the system's, or the whole province
        return []
    await session.execute(_AS, {"scope": SYSTEM_SCOPE, "narrow": ""})
    rows = (await session.execute(statement)).all()
    await session.execute(_AS, {"scope": db_scope(), "narrow": db_narrowing()})
    return rows
