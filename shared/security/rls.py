"""Row-level security (行级安全): the second enforcement of the caller's area, in PostgreSQL.

Every transaction of a service's sessions sets ``shouhu.scope`` (SET LOCAL, from the request's
principal: ``region:<prefix>``; ``system`` for the service's own workers; ``none`` for a request
without a verified principal). The policies on the tables holding children's data let a row through
only when its place code starts with the prefix, so a query whose service-layer check was forgotten
still returns nothing outside the caller's area. Superusers and the tables' owner without FORCE
bypass RLS: the migrations FORCE it, and the services must connect as a non-superuser role."""

from __future__ import annotations

from sqlalchemy import event, text
from sqlalchemy.orm import Session

from shared.security.access import db_scope

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


@event.listens_for(ScopedSession, "after_begin")
def _set_scope(session, transaction, connection) -> None:
    connection.execute(text("SELECT set_config('shouhu.scope', :scope, true)"), {"scope": db_scope()})


def protect_sql(table: str, place: str) -> list[str]:
    """Statements putting ``table`` under the scope policy; ``place`` is an SQL expression of the
    row's place code (a column, or a lookup through the row's child)."""
    return [
        f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY",
        f"CREATE POLICY shouhu_scope ON {table} USING (shouhu_scope_allows({place})) "
        f"WITH CHECK (shouhu_scope_allows({place}))",
    ]


def unprotect_sql(table: str) -> list[str]:
    return [f"DROP POLICY IF EXISTS shouhu_scope ON {table}", f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY",
            f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY"]
