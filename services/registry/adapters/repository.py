"""Children in PostgreSQL."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import any_, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.registry.adapters.orm import children
from services.registry.domain.model import Child

_COLUMNS = [c.name for c in children.columns if c.name not in ("created_at", "updated_at")]


class ChildRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, child: Child) -> None:
        await self.session.execute(insert(children).values({k: getattr(child, k) for k in _COLUMNS}))

    async def get(self, child_id: UUID, *, for_update: bool = False) -> Child | None:
        stmt = select(*[children.c[k] for k in _COLUMNS]).where(children.c.id == child_id)
        row = (await self.session.execute(stmt.with_for_update() if for_update else stmt)).mappings().first()
        return Child(**row) if row else None

    async def save(self, child: Child) -> None:
        values = {k: getattr(child, k) for k in _COLUMNS if k != "id"}
        await self.session.execute(
            update(children).where(children.c.id == child.id).values(**values, updated_at=func.now())
        )

    async def list(
        self, *, region: str, school_id: str | None, risk: str | None, limit: int, offset: int
    ) -> tuple[list[Child], int]:
        where = [children.c.village_code.startswith(region, autoescape=True)]
        if school_id:
            where.append(children.c.school_id == school_id)
        if risk:
            where.append(any_(children.c.risk_categories) == risk)
        total = await self.session.scalar(select(func.count()).select_from(children).where(*where))
        rows = (
            await self.session.execute(
                select(*[children.c[k] for k in _COLUMNS])
                .where(*where)
                .order_by(children.c.village_code, children.c.id)
                .limit(limit)
                .offset(offset)
            )
        ).mappings()
        return [Child(**r) for r in rows], total
