"""A unit of work that keeps what one registration writes, for a chunk's multi-row INSERTs.

The census import registers rows with the API's own ``register_child`` (one
definition of what a registration writes: the child and its events). Run
against ``BatchUnitOfWork``, its writes are kept in memory instead of being
executed one by one; a row's writes are kept only if it committed, and the
import then inserts a whole chunk's children and outbox rows in a few
statements of one transaction (its audit_log rows too). Reads go to the chunk's transaction.

Per row it stays cheap: the events' envelopes are written as JSON directly (``BufferedOutbox``, the
same bytes as the envelope model would write), a child's columns are read in one call, and the
repositories a registration does not use are made only if asked for.
"""

from __future__ import annotations

import json
from json.encoder import encode_basestring
from collections import defaultdict
from dataclasses import fields
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any
from uuid import UUID

from sqlalchemy import Select, Table
from sqlalchemy.ext.asyncio import AsyncSession

from services.registry.adapters.ids import TimeOrderedIds
from services.registry.adapters.orm import children
from services.registry.adapters.repository import AgreementRepository, ChildRepository, absence_records, growth_records
from services.registry.domain.model import Child
from services.registry.service_layer.unit_of_work import RegistryUnitOfWork
from shared import correlation, tracing
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


# The children columns a Child carries (its fields and properties, e.g. name_key), read in one call.
_CHILD_ATTRS = {f.name for f in fields(Child)} | {n for n, v in vars(Child).items() if isinstance(v, property)}
CHILD_COLUMNS = tuple(c.name for c in children.columns if c.name in _CHILD_ATTRS)
_child_values = attrgetter(*CHILD_COLUMNS)


class _BufferedChildren(ChildRepository):
    def __init__(self, session, open_id_numbers: dict[str, UUID]) -> None:
        super().__init__(session)
        self.open_id_numbers = open_id_numbers

    async def add(self, child: Child) -> None:
        self.session.staged[children].append(dict(zip(CHILD_COLUMNS, _child_values(child))))

    async def open_with_id_number(self, id_number_hash: str, *, other_than: UUID | None = None) -> UUID | None:
        """From the chunk's lookup (one query for all its rows), which also holds the rows registered
        before this one: a number twice in one roster is refused like a number already on file."""
        return self.open_id_numbers.get(id_number_hash)


# JSON as pydantic writes it: compact, UTF-8 as is (json escapes the same characters: " \ and controls).
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_string = encode_basestring  # a str as JSON, as _dumps writes it (without its checks and dispatch)
def _json_or_null(value) -> str:
    if value is None:
        return "null"
    return _string(value) if type(value) is str else _string(str(value)) if type(value) is UUID else _dumps(value)


class _NotFast(Exception):
    """An envelope the direct writing does not cover: the envelope model makes it."""


class BufferedOutbox(Outbox):
    """The outbox of a chunk's registrations: each event's row kept with the row's other writes
    (``RowWrites``), its envelope written as JSON directly. The same bytes as
    ``EventType.envelope(...).model_dump_json()`` (the envelope's fields in its order and formats;
    tests/unit/registry_census compares them) without building the envelope as a model: the data,
    already a model of its type, is serialised by pydantic, the envelope's few fields here."""

    def __init__(self, table, producer: str, stream_namespace: str = "") -> None:
        super().__init__(table, producer, stream_namespace)
        self._heads: dict[EventType, str] = {}
        self._producer = _dumps(producer)
        self.event_id = TimeOrderedIds().text  # time-ordered: the consumers' inboxes take them at their right end

    def _head(self, event_type: EventType) -> str:
        head = self._heads.get(event_type)
        if head is None:
            if not (isinstance(event_type.version, int) and event_type.version >= 1):
                raise _NotFast
            head = self._heads[event_type] = (
                f',"type":{_dumps(event_type.name)},"schema_version":{event_type.version},"occurred_at":"'
            )
        return head

    def payload(self, event_type: EventType, data, *, aggregate_id: str, aggregate_version: int, region_code: str,
                actor: str | None = None, correlation_id: UUID | None = None, causation_id: UUID | None = None,
                trace_context: dict[str, str] | None = None) -> str:
        """The envelope's JSON; raises _NotFast for what the envelope model would convert or refuse."""
        if (type(data) is not event_type.model or type(aggregate_version) is not int or aggregate_version < 1
                or type(aggregate_id) is not str or type(region_code) is not str or not (actor is None or type(actor) is str)
                or not (correlation_id is None or type(correlation_id) is UUID)
                or not (causation_id is None or type(causation_id) is UUID)
                or not (trace_context is None or type(trace_context) is dict
                        and all(type(k) is str and type(v) is str for k, v in trace_context.items()))):
            raise _NotFast
        head = self._head(event_type)
        return "".join((
            '{"event_id":"', self.event_id(), '"', head, datetime.now(UTC).isoformat()[:-6], 'Z","producer":', self._producer,
            ',"aggregate_id":', _string(aggregate_id), ',"aggregate_version":', str(aggregate_version),
            ',"correlation_id":', _json_or_null(correlation_id), ',"causation_id":', _json_or_null(causation_id),
            ',"actor":', _json_or_null(actor), ',"region_code":', _string(region_code),
            ',"trace_context":', _json_or_null(trace_context),
            ',"data":', data.__pydantic_serializer__.to_json(data).decode(), "}",
        ))

    async def add(self, session: RowWrites, event_type: EventType, data, **fields) -> EventEnvelope | None:
        """The event's outbox row, kept with the row's other writes. Returns no envelope (a
        registration does not use it) unless the envelope model made it."""
        given = {k: v for k, v in fields.items() if v is not None}
        if trace_context := tracing.carrier():
            given.setdefault("trace_context", trace_context)
        given = correlation.current() | given
        try:
            payload = self.payload(event_type, data, **given)
        except (_NotFast, TypeError):  # e.g. data given as a dict, or a field the envelope does not have
            envelope, row = self.row(event_type, data, **fields)
            session.staged[self.table].append(row)
            return envelope
        session.staged[self.table].append({
            "stream": self.namespace + event_type.stream, "event_type": event_type.name,
            "aggregate_id": given["aggregate_id"], "payload": payload,
        })
        return None


AUDIT_ROLE = "census_import"  # audit_log.role of a census registration


class BatchUnitOfWork(RegistryUnitOfWork):
    """The registry's unit of work over a ``RowWrites``: ``uow.session.committed`` after it commits.
    ``open_id_numbers`` (keyed hash -> child) holds the ID numbers on open archives that the chunk's
    rows carry; the caller adds each registered row's. ``outbox``: the chunk's ``BufferedOutbox``
    (one for all its rows), or an ``Outbox`` to wrap."""

    def __init__(self, writes: RowWrites, outbox: Outbox, open_id_numbers: dict[str, UUID], *, actor: str, import_id: UUID) -> None:
        self.open_id_numbers = open_id_numbers
        self.actor, self._purpose = actor, str(import_id)
        if not isinstance(outbox, BufferedOutbox):
            outbox = BufferedOutbox(outbox.table, outbox.producer, outbox.namespace)
        super().__init__(lambda: writes, outbox)

    def bind(self, session) -> None:
        # Only the children: a registration uses no other repository (made below if one is asked for).
        self.children = _BufferedChildren(session, self.open_id_numbers)

    def __getattr__(self, name: str):
        makers = {"agreements": AgreementRepository, "absences": absence_records, "growth_notes": growth_records}
        if name in makers and "session" in self.__dict__:
            value = makers[name](self.session)
            setattr(self, name, value)
            return value
        raise AttributeError(name)

    async def emit(self, event_type: EventType, data, **fields) -> EventEnvelope | None:
        """Kept with the row's other writes (``RowWrites``), not held for the commit: the chunk inserts them."""
        return await self._outbox.add(self.session, event_type, data, **fields)

    async def audit(self, action: Action, kind: str, record_ids) -> None:
        """On record like the row's other writes (kept, then one COPY a chunk, in the chunk's
        transaction): the importing user (``census_imports.actor``; role ``census_import``: the import
        keeps no role) and the import's id as purpose. A chunk may run in a worker, outside any request."""
        self.session.staged[audit_log].extend(
            entries(action, kind, record_ids, subject=self.actor, role=AUDIT_ROLE, purpose=self._purpose))
