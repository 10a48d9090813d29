from sqlalchemy.ext.asyncio import AsyncSession

from services.visits.adapters.orm import timers
from services.visits.adapters.referral_repository import ReferralRepository
from services.visits.adapters.repository import (
    ChildRepository, ComplianceRepository, HelperRepository, PairingRepository, RecordRepository, RuleRepository, ScheduleRepository,
)
from shared.contracts.envelope import EventEnvelope, EventType
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
        self._events: list[dict] = []

    async def emit(self, event_type: EventType, data, **envelope_fields) -> EventEnvelope:
        """The event's outbox row is held and written with the transaction's others at the commit, in one
        statement (a census run opens a case per unguarded child, three events each); nothing here reads
        the outbox before then."""
        if self._outbox is None:
            raise RuntimeError("this unit of work has no outbox: the service publishes nothing")
        envelope, row = self._outbox.row(event_type, data, **envelope_fields)
        self._events.append(row)
        return envelope

    async def commit(self) -> None:
        await self.referrals.flush()  # the cases' appended rows (timeline, requests, disclosures) go with the rest
        if self._events:
            events, self._events = self._events, []
            await self.session.execute(self._outbox.table.insert(), events)  # in the order they were emitted
            self._outbox.wake_after_commit(self.session)
        await super().commit()
