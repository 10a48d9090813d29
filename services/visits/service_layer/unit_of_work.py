from sqlalchemy.ext.asyncio import AsyncSession

from services.visits.adapters.orm import timers
from services.visits.adapters.referral_repository import ReferralRepository
from services.visits.adapters.repository import (
    ChildRepository, ComplianceRepository, HelperRepository, PairingRepository, RecordRepository, RuleRepository, ScheduleRepository,
)
from shared.uow import SqlUnitOfWork


class VisitsUnitOfWork(SqlUnitOfWork):
    timers = timers
    children: ChildRepository
    helpers: HelperRepository
    pairings: PairingRepository
    rules: RuleRepository
    records: RecordRepository
    schedule: ScheduleRepository
    compliance: ComplianceRepository
    referrals: ReferralRepository

    def bind(self, session: AsyncSession) -> None:
        self.children = ChildRepository(session)
        self.helpers = HelperRepository(session)
        self.pairings = PairingRepository(session)
        self.rules = RuleRepository(session)
        self.records = RecordRepository(session)
        self.schedule = ScheduleRepository(session)
        self.compliance = ComplianceRepository(session)
        self.referrals = ReferralRepository(session)

    async def commit(self) -> None:
        await self.referrals.flush()  # the cases' appended rows (timeline, requests, disclosures) go with the rest
        await super().commit()
