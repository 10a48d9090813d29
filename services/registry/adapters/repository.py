"""The archive in PostgreSQL: children, their agreements, absences and growth notes."""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

from sqlalchemy import and_, any_, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.registry.adapters.orm import absences, agreements, census_keys, children, growth_notes
from services.registry.domain.model import OUTSIDE_THE_AREA, Child, name_key
from shared.security.rls import hidden_by_the_scope, school_filter

_READ = [c.name for c in children.columns if c.name not in ("created_at", "updated_at", "name_key")]
_WRITE = [*_READ, "name_key"]


class ChildRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, child: Child) -> None:
        await self.session.execute(insert(children).values({k: getattr(child, k) for k in _WRITE}))

    async def get(self, child_id: UUID, *, for_update: bool = False) -> Child | None:
        # A school user's reach (its pupils) is applied here, for every read of a child by id and in
        # list and duplicate_groups: the one place the registry narrows a school (RLS does it again).
        stmt = select(*[children.c[k] for k in _READ]).where(children.c.id == child_id, *school_filter(children.c.school_id))
        row = (await self.session.execute(stmt.with_for_update() if for_update else stmt)).mappings().first()
        return Child(**row) if row else None

    async def save(self, child: Child) -> None:
        values = {k: getattr(child, k) for k in _WRITE if k != "id"}
        await self.session.execute(
            update(children).where(children.c.id == child.id).values(**values, updated_at=func.now())
        )

    async def open_with_id_number(self, id_number_hash: str, *, other_than: UUID | None = None) -> UUID | None:
        """The open archive that holds this ID number, if any (OUTSIDE_THE_AREA: one the caller cannot see)."""
        where = [children.c.id_number_hash == id_number_hash, children.c.archive_status == "open"]
        if other_than is not None:
            where.append(children.c.id != other_than)
        found = await self.session.scalar(select(children.c.id).where(*where).limit(1))
        if found is None and await hidden_by_the_scope(self.session, select(children.c.id).where(*where).limit(1)):
            return OUTSIDE_THE_AREA
        return found

    async def closed_until(self, day: date, *, limit: int) -> list[UUID]:
        """Closed archives, closed on ``day`` or before and not yet de-identified (locked, skipping others' locks)."""
        c = children.c
        stmt = (select(c.id).where(c.archive_status == "closed", c.closed_on <= day, c.deidentified_on.is_(None))
                .order_by(c.closed_on, c.id).limit(limit).with_for_update(skip_locked=True))
        return list(await self.session.scalars(stmt))

    async def sealed_with_other_keys(self, current_key: str, *, limit: int, region: str = "") -> list[UUID]:
        """Archives of ``region`` whose ID number is sealed with a key other than ``current_key`` (locked,
        skipping others' locks)."""
        c = children.c
        stmt = (select(c.id).where(c.id_number_sealed.is_not(None), ~c.id_number_sealed.startswith(f"{current_key}:"),
                                   c.village_code.startswith(region, autoescape=True))
                .order_by(c.id).limit(limit).with_for_update(skip_locked=True))
        return list(await self.session.scalars(stmt))

    async def forget_personal_records(self, child_id: UUID, placeholder: str) -> None:
        """去标识化 of what hangs off the archive: growth notes' text, agreements' guardian names, census keys."""
        await self.session.execute(update(growth_notes).where(growth_notes.c.child_id == child_id).values(text=placeholder))
        await self.session.execute(
            update(agreements).where(agreements.c.child_id == child_id).values(guardian_name=placeholder, updated_at=func.now())
        )
        await self.session.execute(delete(census_keys).where(census_keys.c.child_id == child_id))

    async def possible_duplicates(self, child: Child) -> list[UUID]:
        """Open archives with the same normalised name, birth date and township where either has no
        ID number (two different ID numbers are two children)."""
        c = children.c
        where = [
            c.birth_date == child.birth_date, c.name_key == child.name_key, c.archive_status == "open",
            c.village_code.startswith(child.village_code[:9], autoescape=True), c.id != child.id,
        ]
        if child.id_number_hash:
            where.append(c.id_number_hash.is_(None))
        return list(await self.session.scalars(select(c.id).where(*where).order_by(c.id)))

    async def duplicate_groups(self, *, region: str, limit: int) -> list[dict[str, Any]]:
        """Groups of open archives in ``region`` that may be one child registered twice."""
        c = children.c
        township = func.substr(c.village_code, 1, 9)
        groups = (
            select(
                c.name_key, c.birth_date, township.label("township_code"),
                func.array_agg(c.id, order_by=(c.created_at, c.id)).label("child_ids"),
            )
            .where(c.archive_status == "open", c.village_code.startswith(region, autoescape=True), *school_filter(c.school_id))
            .group_by(c.name_key, c.birth_date, township)
            # Several archives, and at least one without an ID number to tell them apart.
            .having(and_(func.count() > 1, func.count() > func.count(c.id_number_hash.distinct())))
            .order_by(township, c.birth_date)
            .limit(limit)
        )
        return [dict(r) for r in (await self.session.execute(groups)).mappings()]

    async def list(
        self, *, region: str, school_id: str | None, risk: str | None, name: str | None, id_number_hash: str | None,
        include_closed: bool, limit: int, offset: int,
    ) -> tuple[list[Child], int]:
        c = children.c
        where = [c.village_code.startswith(region, autoescape=True), *school_filter(c.school_id)]
        if not include_closed:
            where.append(c.archive_status == "open")
        if school_id:
            where.append(c.school_id == school_id)
        if risk:
            where.append(any_(c.risk_categories) == risk)
        if name:
            where.append(c.name_key.contains(name_key(name), autoescape=True))
        if id_number_hash:
            where.append(c.id_number_hash == id_number_hash)
        total = await self.session.scalar(select(func.count()).select_from(children).where(*where))
        rows = (
            await self.session.execute(
                select(*[c[k] for k in _READ]).where(*where).order_by(c.village_code, c.id).limit(limit).offset(offset)
            )
        ).mappings()
        return [Child(**r) for r in rows], total


class AgreementRepository:
    """委托监护责任确认书"""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, values: dict[str, Any]) -> None:
        await self.session.execute(insert(agreements).values(**values))

    async def get(self, agreement_id: UUID, *, for_update: bool = False) -> dict[str, Any] | None:
        stmt = select(agreements).where(agreements.c.id == agreement_id)
        row = (await self.session.execute(stmt.with_for_update() if for_update else stmt)).mappings().first()
        return dict(row) if row else None

    async def in_force(self, child_id: UUID) -> dict[str, Any] | None:
        stmt = select(agreements).where(agreements.c.child_id == child_id, agreements.c.status == "in_force")
        row = (await self.session.execute(stmt)).mappings().first()
        return dict(row) if row else None

    async def set(self, agreement_id: UUID, **values) -> None:
        await self.session.execute(
            update(agreements).where(agreements.c.id == agreement_id).values(**values, updated_at=func.now())
        )

    async def of_child(self, child_id: UUID) -> list[dict[str, Any]]:
        stmt = select(agreements).where(agreements.c.child_id == child_id).order_by(agreements.c.signed_on, agreements.c.created_at)
        return [dict(r) for r in (await self.session.execute(stmt)).mappings()]


class DatedRecords:
    """Rows of a child's dated records (absences, growth notes), in time order."""

    def __init__(self, session: AsyncSession, table, date_column: str) -> None:
        self.session, self.table, self.on = session, table, table.c[date_column]

    async def add(self, values: dict[str, Any]) -> None:
        await self.session.execute(insert(self.table).values(**values))

    async def of_child(self, child_id: UUID) -> list[dict[str, Any]]:
        stmt = select(self.table).where(self.table.c.child_id == child_id).order_by(self.on, self.table.c.created_at)
        return [dict(r) for r in (await self.session.execute(stmt)).mappings()]

    async def overlapping(self, child_id: UUID, start: date, end: date) -> dict[str, Any] | None:
        """An absence of the child that shares a day with ``start``..``end``."""
        t = self.table
        stmt = select(t).where(t.c.child_id == child_id, t.c.from_date <= end, t.c.to_date >= start).limit(1)
        row = (await self.session.execute(stmt)).mappings().first()
        return dict(row) if row else None


def absence_records(session: AsyncSession) -> DatedRecords:
    return DatedRecords(session, absences, "from_date")


def growth_records(session: AsyncSession) -> DatedRecords:
    return DatedRecords(session, growth_notes, "noted_on")
