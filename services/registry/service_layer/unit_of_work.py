from sqlalchemy.ext.asyncio import AsyncSession

from services.registry.adapters.orm import timers
from services.registry.adapters.repository import (
    AgreementRepository,
    ChildRepository,
    DatedRecords,
    absence_records,
    growth_records,
)
from shared.uow import SqlUnitOfWork


class RegistryUnitOfWork(SqlUnitOfWork):
    timers = timers
    children: ChildRepository
    agreements: AgreementRepository
    absences: DatedRecords
    growth_notes: DatedRecords

    def bind(self, session: AsyncSession) -> None:
        self.children = ChildRepository(session)
        self.agreements = AgreementRepository(session)
        self.absences = absence_records(session)
        self.growth_notes = growth_records(session)
