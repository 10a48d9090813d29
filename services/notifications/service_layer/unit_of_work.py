from collections.abc import Callable
from typing import Self

from sqlalchemy import event

from services.notifications.adapters.orm import outbox
from shared.contracts.envelope import EventEnvelope, EventType
from shared.db import columns_of, insert_rows
from shared.uow import SqlUnitOfWork

# The outbox rows of a transaction's events in one statement, in the order they were emitted (their ids).
_outbox_rows = insert_rows(outbox, ("stream", "event_type", "aggregate_id", "payload"))


class NotificationsUnitOfWork(SqlUnitOfWork):
    """A batch of attempts or of requests emits an event per delivery (a failure, an agency's message):
    they are written at commit, all of the transaction's in one INSERT, not a round trip each."""

    async def __aenter__(self) -> Self:
        self._events: list[dict] = []
        return await super().__aenter__()

    async def emit(self, event_type: EventType, data, **envelope_fields) -> EventEnvelope:
        if self._outbox is None:
            raise RuntimeError("this unit of work has no outbox: the service publishes nothing")
        envelope, row = self._outbox.row(event_type, data, **envelope_fields)
        self._events.append(row)
        return envelope

    async def commit(self) -> None:
        if self._events:
            rows, self._events = self._events, []
            await self.session.execute(_outbox_rows, columns_of(rows))
            self._outbox.wake_after_commit(self.session)
        await super().commit()

    def sibling(self) -> Self:
        """A second, independent transaction: for what must commit although the current one rolls back."""
        return type(self)(self._sessionmaker, self._outbox)

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once this transaction has committed (never if it rolls back)."""
        event.listen(self.session.sync_session, "after_commit", lambda _session: callback(), once=True)

