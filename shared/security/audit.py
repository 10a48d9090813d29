"""The record of access (访问日志): an append-only table in each service's database of who read,
created, changed, exported or disclosed which child or record, when, from where and why. Admins
query it through ``GET /api/v1/audit``; a trigger refuses every UPDATE, DELETE and TRUNCATE."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel
from sqlalchemy import BigInteger, Column, DateTime, Identity, Index, MetaData, Table, Text, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import CurrentPrincipal, Principal, Role
from shared.security.access import current_access


class Action(StrEnum):
    read = "read"
    create = "create"
    update = "update"
    export = "export"
    disclose = "disclose"


# Same shape in every service's database; each service's migration creates it (not in the
# service's metadata: nothing but this module writes it).
audit_log = Table(
    "audit_log",
    MetaData(),
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("subject", Text, nullable=False),
    Column("role", Text, nullable=False),
    Column("agency", Text),
    Column("action", Text, nullable=False),
    Column("kind", Text, nullable=False),  # child, record, referral, report...
    Column("record_id", Text, nullable=False),
    Column("client", Text),  # the caller's address
    Column("purpose", Text),  # X-Purpose: the referral or task the access serves
    Index("ix_audit_log_record_id", "record_id"),
    Index("ix_audit_log_subject_at", "subject", "at"),
)

APPEND_ONLY_SQL = [
    """CREATE OR REPLACE FUNCTION shouhu_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'audit_log is append-only (访问日志不可修改或删除): % refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END $$""",
    "CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log "
    "FOR EACH ROW EXECUTE FUNCTION shouhu_audit_append_only()",
    "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
    "FOR EACH STATEMENT EXECUTE FUNCTION shouhu_audit_append_only()",
]


def create_audit_log(op) -> None:
    """Body of each service's migration adding the audit log (``op``: alembic's)."""
    op.create_table(audit_log.name, *(c._copy() for c in audit_log.columns))
    for index in audit_log.indexes:
        op.create_index(index.name, audit_log.name, [c.name for c in index.columns])
    for statement in APPEND_ONLY_SQL:
        op.execute(statement)


def drop_audit_log(op) -> None:
    op.drop_table(audit_log.name)
    op.execute("DROP FUNCTION IF EXISTS shouhu_audit_append_only()")


def entries(action: Action, kind: str, record_ids: Iterable[object], *, subject: str, role: str,
            agency: str | None = None, client: str | None = None, purpose: str | None = None) -> list[dict]:
    """The ``audit_log`` rows of one access to ``record_ids`` (for a caller that inserts them itself,
    e.g. the census import, a chunk's rows in one COPY)."""
    return [{"subject": subject, "role": role, "agency": agency, "action": action.value, "kind": kind,
             "record_id": str(r), "client": client, "purpose": purpose} for r in record_ids]


async def audit(session: AsyncSession, action: Action, kind: str, record_ids: Iterable[object]) -> None:
    """Note an access to ``record_ids`` by the current caller, in ``session``'s transaction (a write
    and its record commit together)."""
    access = current_access()
    p = access.principal if access else None
    who = {"subject": p.subject, "role": p.role.value, "agency": p.agency} if p else {"subject": "system", "role": "system"}
    rows = entries(action, kind, record_ids, **who, client=access.client if access else None,
                   purpose=access.purpose if access else None)
    if rows:
        await session.execute(insert(audit_log), rows)


async def audit_now(request: Request, action: Action, kind: str, record_ids: Iterable[object]) -> None:
    """Note an access in a transaction of its own (reads: nothing else to commit with)."""
    async with request.app.state.runtime.sessionmaker() as session, session.begin():
        await audit(session, action, kind, record_ids)


class AuditEntry(BaseModel):
    id: int
    at: datetime
    subject: str
    role: str
    agency: str | None
    action: Action
    kind: str
    record_id: str
    client: str | None
    purpose: str | None


def _admin(principal: CurrentPrincipal) -> Principal:
    if principal.role is not Role.admin:
        raise HTTPException(403, detail={"message_zh": "仅管理员可查询访问日志", "message_en": "only an admin may read the audit log"})
    return principal


router = APIRouter(prefix="/api/v1", tags=["audit 访问日志"])


@router.get("/audit", response_model=list[AuditEntry], summary="访问日志 Who accessed what, newest first (admin)")
async def read_audit_log(
    request: Request, principal: Annotated[Principal, Depends(_admin)],
    record_id: Annotated[str | None, Query(max_length=100, description="儿童或记录编号 a child's or record's id")] = None,
    subject: Annotated[str | None, Query(max_length=200, description="用户 the user")] = None,
    action: Action | None = None,
    since: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict]:
    q = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
    for column, value in (("record_id", record_id), ("subject", subject), ("action", action and action.value)):
        if value is not None:
            q = q.where(audit_log.c[column] == value)
    if since is not None:
        q = q.where(audit_log.c.at >= since)
    async with request.app.state.runtime.sessionmaker() as session:
        return [dict(r) for r in (await session.execute(q)).mappings()]
