"""Unit of work (cosmicpython): one transaction, the repositories bound to it,
and the outbox, so a change and its events commit together or not at all."""

from __future__ import annotations

from typing import Self

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.contracts.envelope import EventEnvelope, EventType
from shared.outbox import Outbox


class SqlUnitOfWork:
    """Base for each service's unit of work; subclasses add repositories in ``bind``."""

    def __init__(self, sessionmaker: async_sessionmaker, outbox: Outbox | None = None) -> None:
        self._sessionmaker, self._outbox = sessionmaker, outbox

    def bind(self, session: AsyncSession) -> None:
        """Create the repositories on ``session``."""

    async def __aenter__(self) -> Self:
        self.session = self._sessionmaker()
        self.bind(self.session)
        return self

    async def __aexit__(self, *exc) -> None:
        await self.session.rollback()  # a no-op after commit
        await self.session.close()

    async def commit(self) -> None:
        await self.session.commit()

    async def emit(self, event_type: EventType, data, **envelope_fields) -> EventEnvelope:
        """Write an event to the outbox in this transaction."""
        if self._outbox is None:
            raise RuntimeError("this unit of work has no outbox: the service publishes nothing")
        return await self._outbox.add(self.session, event_type, data, **envelope_fields)
