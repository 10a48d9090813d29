"""A unit of work that keeps what one registration writes, for a chunk's multi-row INSERTs.

The census import registers rows with the API's own ``register_child`` (one
definition of what a registration writes: the child and its events). Run
against ``BatchUnitOfWork``, its writes are kept in memory instead of being
executed one by one; a row's writes are kept only if it committed, and the
import then inserts a whole chunk's children and outbox rows in a few
statements of one transaction (its audit_log rows too). Reads go to the chunk's transaction.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any
from uuid import UUID

from sqlalchemy import Select, Table
from sqlalchemy.ext.asyncio import AsyncSession

from services.registry.adapters.orm import children
from services.registry.adapters.repository import ChildRepository
from services.registry.domain.model import Child
from services.registry.service_layer.unit_of_work import RegistryUnitOfWork
from shared.contracts.envelope import EventEnvelope, EventType
from shared.outbox import Outbox
from shared.security.audit import Action, audit_log, entries


class RowWrites:
    """Stands in for the session of one registration."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session  # the chunk's transaction
        self.staged: dict[Table, list[dict[str, Any]]] = defaultdict(list)
        self.committed: dict[Table, list[dict[str, Any]]] = {}

    async def execute(self, statement, *args, **kwargs):
        if not isinstance(statement, Select):
            # A write this class does not keep would escape the row's all-or-nothing: fail loudly.
            raise TypeError(f"a batched registration cannot execute {type(statement).__name__}; keep it in RowWrites")
        return await self.session.execute(statement, *args, **kwargs)

    async def scalar(self, statement, *args, **kwargs):
        return (await self.execute(statement, *args, **kwargs)).scalar()

    async def commit(self) -> None:
        self.committed = {table: list(rows) for table, rows in self.staged.items()}

    async def rollback(self) -> None:
        self.staged.clear()

    async def close(self) -> None:
        pass


class _BufferedChildren(ChildRepository):
    def __init__(self, session, open_id_numbers: dict[str, UUID]) -> None:
        super().__init__(session)
        self.open_id_numbers = open_id_numbers

    async def add(self, child: Child) -> None:
        self.session.staged[children].append({c.name: getattr(child, c.name) for c in children.columns if hasattr(child, c.name)})

    async def open_with_id_number(self, id_number_hash: str, *, other_than: UUID | None = None) -> UUID | None:
        """From the chunk's lookup (one query for all its rows), which also holds the rows registered
        before this one: a number twice in one roster is refused like a number already on file."""
        return self.open_id_numbers.get(id_number_hash)


class _BufferedOutbox(Outbox):
    async def add(self, session: RowWrites, event_type: EventType, data, **fields) -> EventEnvelope:
        envelope, row = self.row(event_type, data, **fields)
        session.staged[self.table].append(row)
        return envelope


AUDIT_ROLE = "census_import"  # audit_log.role of a census registration


class BatchUnitOfWork(RegistryUnitOfWork):
    """The registry's unit of work over a ``RowWrites``: ``uow.session.committed`` after it commits.
    ``open_id_numbers`` (keyed hash -> child) holds the ID numbers on open archives that the chunk's
    rows carry; the caller adds each registered row's."""

    def __init__(self, writes: RowWrites, outbox: Outbox, open_id_numbers: dict[str, UUID], *, actor: str, import_id: UUID) -> None:
        self.open_id_numbers = open_id_numbers
        self.actor, self.import_id = actor, import_id
        super().__init__(lambda: writes, _BufferedOutbox(outbox.table, outbox.producer, outbox.namespace))

    def bind(self, session) -> None:
        super().bind(session)
        self.children = _BufferedChildren(session, self.open_id_numbers)

    async def audit(self, action: Action, kind: str, record_ids) -> None:
        """On record like the row's other writes (kept, then one COPY a chunk, in the chunk's
        transaction): the importing user (``census_imports.actor``; role ``census_import``: the import
        keeps no role) and the import's id as purpose. A chunk may run in a worker, outside any request."""
        self.session.staged[audit_log].extend(
            entries(action, kind, record_ids, subject=self.actor, role=AUDIT_ROLE, purpose=str(self.import_id)))
