"""Who is asking, from where and why (访问上下文): set once per request by the authentication
dependency, read by the unit of work (the database scope) and by the audit log."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # shared.auth sets the access: imported there, not here
    from shared.auth import Principal

# The scope a transaction runs under (PostgreSQL setting shouhu.scope, read by the RLS policies):
SYSTEM_SCOPE = "system"  # the service's own workers: consumers, pollers, relays, commands
NO_SCOPE = "none"  # an HTTP request before (or without) a verified principal: sees no protected row
REGION_SCOPE = "region:"  # followed by the principal's division-code prefix ("" for an admin: every place)
# Narrowing inside the area (PostgreSQL setting shouhu.narrow, read by a service's own narrower
# policies, e.g. visits' pairings and disclosures); "" narrows nothing (the offices, 'system').
HELPER_NARROWING = "helper:"  # followed by the helper's login (the token's subject): their paired children
AGENCY_NARROWING = "agency:"  # followed by the agency's kind ("" without one: no case): cases disclosed to it
SCHOOL_NARROWING = "school:"  # followed by the school's id (the ``school`` claim; "" without one: no child): its pupils


@dataclass(frozen=True)
class Access:
    """访问者: the verified principal, the client's address, and the purpose given (X-Purpose: a
    referral or task id)."""

    principal: "Principal | None"
    client: str | None = None
    purpose: str | None = None

    @property
    def scope(self) -> str:
        return NO_SCOPE if self.principal is None else REGION_SCOPE + self.principal.region

    @property
    def narrowing(self) -> str:
        p = self.principal
        if p is None:
            return ""  # already 'none': nothing to narrow
        if p.role == "helper":
            return HELPER_NARROWING + p.subject
        if p.role == "agency":
            return AGENCY_NARROWING + (p.agency_kind or "")
        if p.role == "school":
            return SCHOOL_NARROWING + (p.school or "")
        return ""

    @property
    def school(self) -> str | None:
        """The school a school user (班主任, 德育处) is narrowed to: its ``school`` claim, "" for a school
        token without one (it sees no child); None for every other role (not narrowed to a school)."""
        p = self.principal
        return (p.school or "") if p is not None and p.role == "school" else None


_current: ContextVar[Access | None] = ContextVar("shouhu_access", default=None)


def current_access() -> Access | None:
    """The request's access, or None outside any request (the service's own work)."""
    return _current.get()


def set_access(access: Access | None) -> None:
    _current.set(access)


@contextmanager
def accessing(access: Access | None) -> Iterator[None]:
    """``access`` for the block, then what was before (an in-process ASGI call shares its caller's context)."""
    token = _current.set(access)
    try:
        yield
    finally:
        _current.reset(token)


def db_scope() -> str:
    access = _current.get()
    return SYSTEM_SCOPE if access is None else access.scope


def current_school() -> str | None:
    """The school the current request is narrowed to (``Access.school``); None for other roles and the service's own work."""
    access = _current.get()
    return None if access is None else access.school


def school_allows(school_id: str | None) -> bool:
    """Whether the current request reaches a child enrolled at ``school_id`` (in code, as
    ``shouhu_school_allows`` in PostgreSQL): always, unless a school user's, then its own pupils only."""
    school = current_school()
    return school is None or (school != "" and school_id == school)


def db_narrowing() -> str:
    """The narrowing of the current access inside its area (``shouhu.narrow``); "" for the service's own work."""
    access = _current.get()
    return "" if access is None else access.narrowing
