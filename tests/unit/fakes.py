"""In-memory stand-ins for a service's unit of work, for handler tests without I/O.

They keep the one property the handlers rely on: what a unit of work wrote
(rows and events alike) exists only if it committed; leaving the ``async with``
without ``commit()`` rolls all of it back.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from pydantic import BaseModel

from services.registry.domain.model import Child
from shared.contracts.envelope import EventEnvelope, EventType


@dataclass
class Emitted:
    event_type: EventType
    data: BaseModel
    fields: dict[str, Any]
    envelope: EventEnvelope

    @property
    def name(self) -> str:
        return self.event_type.name


class FakeChildRepository:
    """Children by id; callers get copies, as from a database, so only ``add``/``save`` write."""

    def __init__(self) -> None:
        self.committed: dict[UUID, Child] = {}
        self.staged: dict[UUID, Child] = {}

    def _rows(self) -> dict[UUID, Child]:
        return self.committed | self.staged

    async def add(self, child: Child) -> None:
        if child.id in self._rows():
            raise ValueError(f"duplicate key {child.id}")
        self.staged[child.id] = copy.deepcopy(child)

    async def get(self, child_id: UUID, *, for_update: bool = False) -> Child | None:
        row = self._rows().get(child_id)
        return copy.deepcopy(row) if row else None

    async def save(self, child: Child) -> None:
        if child.id not in self._rows():
            raise KeyError(child.id)
        self.staged[child.id] = copy.deepcopy(child)

    async def open_with_id_number(self, id_number_hash: str, *, other_than: UUID | None = None) -> UUID | None:
        return next((c.id for c in self._rows().values()
                     if c.id_number_hash == id_number_hash and c.is_open and c.id != other_than), None)


class FakeAgreementRepository:
    """Agreements by id, committed or staged like the children."""

    def __init__(self) -> None:
        self.committed: dict[UUID, dict] = {}
        self.staged: dict[UUID, dict] = {}

    def _rows(self) -> dict[UUID, dict]:
        return self.committed | self.staged

    async def add(self, values: dict) -> None:
        self.staged[values["id"]] = dict(values)

    async def get(self, agreement_id: UUID, *, for_update: bool = False) -> dict | None:
        row = self._rows().get(agreement_id)
        return dict(row) if row else None

    async def in_force(self, child_id: UUID) -> dict | None:
        return next((dict(a) for a in self._rows().values() if a["child_id"] == child_id and a["status"] == "in_force"), None)

    async def set(self, agreement_id: UUID, **values) -> None:
        self.staged[agreement_id] = {**self._rows()[agreement_id], **values}


class FakeUnitOfWork:
    """Records emitted events as ``Emitted`` (event type, data, envelope fields) in ``events``
    once committed; the envelope is built as the outbox would, so a missing or invalid
    envelope field fails here too."""

    def __init__(self, producer: str = "registry") -> None:
        self.producer = producer
        self.children = FakeChildRepository()
        self.agreements = FakeAgreementRepository()
        self.timers: dict[tuple[str, str], Any] = {}  # (kind, key) -> due time, as committed
        self._timers: dict[tuple[str, str], Any] = {}
        self.events: list[Emitted] = []
        self.audited: list[tuple[str, str, str]] = []  # (action, kind, record id), as committed
        self.commits = 0
        self._pending: list[Emitted] = []
        self._audited: list[tuple[str, str, str]] = []

    async def __aenter__(self) -> "FakeUnitOfWork":
        return self

    async def __aexit__(self, *exc) -> None:
        self._pending.clear()
        self._audited.clear()
        self._timers = dict(self.timers)
        for repository in (self.children, self.agreements):
            repository.staged.clear()

    async def commit(self) -> None:
        for repository in (self.children, self.agreements):
            repository.committed |= repository.staged
            repository.staged.clear()
        self.timers = dict(self._timers)
        self.events += self._pending
        self._pending.clear()
        self.audited += self._audited
        self._audited.clear()
        self.commits += 1

    async def emit(self, event_type: EventType, data: BaseModel, **fields: Any) -> EventEnvelope:
        envelope = event_type.envelope(data, producer=self.producer, **fields)
        self._pending.append(Emitted(event_type, data, fields, envelope))
        return envelope

    async def audit(self, action, kind: str, record_ids) -> None:
        self._audited += [(str(action), kind, str(r)) for r in record_ids]

    async def schedule_timer(self, kind: str, key: str, due_at, payload=None) -> None:
        self._timers[kind, key] = due_at

    async def cancel_timer(self, kind: str, key: str) -> None:
        self._timers.pop((kind, key), None)

    def take_events(self) -> list[Emitted]:
        """The committed events so far, forgetting them (to look at one command's events)."""
        taken, self.events = self.events, []
        return taken
