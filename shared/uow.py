"""Unit of work (cosmicpython): one transaction, the repositories bound to it,
and the outbox, so a change and its events commit together or not at all."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import ClassVar, Self

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared import timers as timer_rows
from shared.contracts.envelope import EventEnvelope, EventType
from shared.outbox import Outbox
from shared.security.audit import Action, audit


class SqlUnitOfWork:
    """Base for each service's unit of work; subclasses add repositories in ``bind``, and name
    their timers table when they have deadlines."""

    timers: ClassVar[Table | None] = None

    def __init__(self, sessionmaker: async_sessionmaker, outbox: Outbox | None = None) -> None:
        self._sessionmaker, self._outbox = sessionmaker, outbox

    def bind(self, session: AsyncSession) -> None:
        """Create the repositories on ``session``."""

    async def __aenter__(self) -> Self:
        self.session = self._sessionmaker()
        self._events: list[dict] = []
        self.bind(self.session)
        return self

    async def __aexit__(self, *exc) -> None:
        await self.session.rollback()  # a no-op after commit
        await self.session.close()

    async def commit(self) -> None:
        if self._events:
            rows, self._events = self._events, []
            await self.session.execute(self._outbox.table.insert(), rows)  # ids in the order they were emitted
            self._outbox.wake_after_commit(self.session)
        await self.session.commit()

    async def emit(self, event_type: EventType, data, **envelope_fields) -> EventEnvelope:
        """An event of this transaction. Its outbox row is held and written at the commit with the
        transaction's others, in one statement (a batch may emit hundreds); nothing reads the outbox before."""
        if self._outbox is None:
            raise RuntimeError("this unit of work has no outbox: the service publishes nothing")
        envelope, row = self._outbox.row(event_type, data, **envelope_fields)
        self._events.append(row)
        return envelope

    async def audit(self, action: Action, kind: str, record_ids: Iterable[object]) -> None:
        """Note the current caller's access to ``record_ids`` in this transaction (the audit log):
        a write and its record of access commit together or not at all."""
        await audit(self.session, action, kind, record_ids)

    async def schedule_timer(self, kind: str, key: str, due_at: datetime, payload: dict | None = None) -> None:
        """Set (or move) a deadline in this transaction (timers are data: shared/timers.py)."""
        await timer_rows.schedule(self.session, self.timers, kind, key, due_at, payload)

    async def schedule_timers(self, kind: str, due: list[tuple[str, datetime, dict]]) -> None:
        """``schedule_timer`` for each (key, due time, payload), in one statement."""
        await timer_rows.schedule_many(self.session, self.timers, kind, due)

    async def cancel_timer(self, kind: str, key: str) -> None:
        await timer_rows.cancel(self.session, self.timers, kind, key)
