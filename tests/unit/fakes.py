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

    async def list(
        self, *, region: str, school_id: str | None, risk: str | None, limit: int, offset: int
    ) -> tuple[list[Child], int]:
        found = sorted(
            (
                c for c in self._rows().values()
                if c.village_code.startswith(region)
                and (school_id is None or c.school_id == school_id)
                and (risk is None or risk in c.risk_categories)
            ),
            key=lambda c: (c.village_code, str(c.id)),
        )
        return [copy.deepcopy(c) for c in found[offset:offset + limit]], len(found)


class FakeUnitOfWork:
    """Records emitted events as ``Emitted`` (event type, data, envelope fields) in ``events``
    once committed; the envelope is built as the outbox would, so a missing or invalid
    envelope field fails here too."""

    def __init__(self, producer: str = "registry") -> None:
        self.producer = producer
        self.children = FakeChildRepository()
        self.events: list[Emitted] = []
        self.commits = 0
        self._pending: list[Emitted] = []

    async def __aenter__(self) -> "FakeUnitOfWork":
        return self

    async def __aexit__(self, *exc) -> None:
        self._pending.clear()
        self.children.staged.clear()

    async def commit(self) -> None:
        self.children.committed |= self.children.staged
        self.children.staged.clear()
        self.events += self._pending
        self._pending.clear()
        self.commits += 1

    async def emit(self, event_type: EventType, data: BaseModel, **fields: Any) -> EventEnvelope:
        envelope = event_type.envelope(data, producer=self.producer, **fields)
        self._pending.append(Emitted(event_type, data, fields, envelope))
        return envelope

    def take_events(self) -> list[Emitted]:
        """The committed events so far, forgetting them (to look at one command's events)."""
        taken, self.events = self.events, []
        return taken
