from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.registry.adapters.orm import timers
from services.registry.adapters.repository import (
    AgreementRepository,
    ChildRepository,
    DatedRecords,
    absence_records,
    growth_records,
)
from shared import timers as timer_rows
from shared.uow import SqlUnitOfWork


class RegistryUnitOfWork(SqlUnitOfWork):
    children: ChildRepository
    agreements: AgreementRepository
    absences: DatedRecords
    growth_notes: DatedRecords

    def bind(self, session: AsyncSession) -> None:
        self.children = ChildRepository(session)
        self.agreements = AgreementRepository(session)
        self.absences = absence_records(session)
        self.growth_notes = growth_records(session)

    async def schedule_timer(self, kind: str, key: str, due_at: datetime) -> None:
        await timer_rows.schedule(self.session, timers, kind, key, due_at)

    async def cancel_timer(self, kind: str, key: str) -> None:
        await timer_rows.cancel(self.session, timers, kind, key)
