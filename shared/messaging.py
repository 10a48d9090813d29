"""The one way to consume a stream reliably (architecture.md, rules 2-4).

For each stream a service reads, ``ReliableConsumer`` runs:
- a main grouped subscriber on the FastStream router, reading new entries in
  batches (``>``);
- a claimer task (XAUTOCLAIM after ``claim_min_idle_ms``) that takes over
  entries left pending by a consumer that died or failed, a batch at a time
  (FastStream's own ``min_idle_time`` subscriber claims one entry per call,
  which after a crash crawls through everything queued behind a lost batch);
and it creates the group at id 0 before the broker starts, so a group that
starts late still gets the whole backlog (FastStream would create it at ``$``).

Each batch is applied in one transaction together with the inbox rows
(``event_id``) and the per-aggregate positions, then acknowledged. A
redelivered event changes nothing, even when two consumers of the group hold it
at once (the batch's aggregates are locked first). Two batches of a
subscription are applied at once in a process (``IN_FLIGHT``): a consumer
mostly waits on PostgreSQL, and the next batch is read and applied meanwhile;
the later one's events of aggregates the earlier one also holds are applied
once that one is done, so an aggregate's events still apply in stream order. A deadlock or
serialization failure between concurrent transactions is tried again, never
counted against the events. Events of one aggregate are applied in
``aggregate_version`` order: with ``Ordering.STRICT`` an event whose
predecessor is missing waits (stays pending) until the predecessor has been
applied; with ``Ordering.LATEST`` (snapshots) an older event is skipped.
An entry that cannot be parsed goes to ``<stream>.dlq`` at once (after the
subscription's ``unreadable`` hook, if any, has had its say); one whose
handler keeps failing goes there after ``max_deliveries`` deliveries. Both are
acknowledged on the main stream so the entries behind them keep flowing.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from faststream.redis import RedisRouter, StreamSub
from faststream.middlewares import AckPolicy
from pydantic import ValidationError
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy import (
    Column, DateTime, Integer, MetaData, Table, Text, bindparam, cast, func, literal, select, true, union_all,
)
from sqlalchemy.dialects.postgresql import UUID as PGUUID

from shared.contracts.envelope import EventEnvelope, parse_event
from shared import tracing
from shared.correlation import flow
from shared.db import array_param, insert_rows
from shared.failpoints import failpoint
from shared.logs import log_fields
from shared.metrics import ServiceMetrics
from shared.outbox import DATA_FIELD
from shared.settings import Settings
from shared.tasks import sleep_unless_stopped

log = logging.getLogger("shouhu.consumer")

Handler = Callable[[Any, EventEnvelope], Awaitable[None]]
BatchHandler = Callable[[Any, list[EventEnvelope]], Awaitable[None]]
# (uow, stream, entry id) of an entry that is no event envelope, before it goes to the DLQ.
UnreadableHandler = Callable[[Any, str, str], Awaitable[None]]


# Batches of one subscription being applied at once in a process: one applying while the other waits on
# PostgreSQL keeps the process busy; more would mostly queue on the same rows' locks.
IN_FLIGHT = 2
# SQLSTATEs of a transaction that lost to a concurrent one (deadlock_detected, serialization_failure):
# nothing wrong with its events, so it is run again at once, up to TRANSIENT_TRIES times in all.
_TRANSIENT = frozenset({"40P01", "40001"})
TRANSIENT_TRIES = 3


class Ordering(enum.Enum):
    STRICT = "strict"  # deltas: apply version n only after n-1
    LATEST = "latest"  # snapshots: apply when newer than what is held


def consumer_tables(metadata: MetaData) -> tuple[Table, Table]:
    inbox = Table(
        "inbox",
        metadata,
        Column("consumer", Text, primary_key=True),
        Column("event_id", PGUUID(as_uuid=True), primary_key=True),
        Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )
    positions = Table(
        "aggregate_positions",
        metadata,
        Column("stream", Text, primary_key=True),
        Column("aggregate_id", Text, primary_key=True),
        Column("version", Integer, nullable=False),
    )
    return inbox, positions


def dlq_name(stream: str) -> str:
    return f"{stream}.dlq"


@dataclass
class Subscription:
    stream: str  # logical name, without the namespace
    handlers: dict[str, Handler]
    ordering: Ordering = Ordering.STRICT
    description: str = ""
    # Handlers given a run of events of one type at once, of distinct aggregates, in stream order:
    # they can apply a whole run in a few statements instead of a few per event.
    batch_handlers: dict[str, BatchHandler] = field(default_factory=dict)
    # Run in a transaction of its own for an entry that cannot be parsed (e.g. to tell its writer why).
    unreadable: UnreadableHandler | None = None

    @property
    def event_types(self) -> list[str]:
        return sorted({*self.handlers, *self.batch_handlers})


@dataclass
class _Run:
    """Events of one type for one batch handler, at most one per aggregate (``_Runs`` places them)."""

    handler: BatchHandler | None = None
    event_type: str = ""
    events: list[EventEnvelope] = field(default_factory=list)
    aggregates: set[str] = field(default_factory=set)

    async def flush(self, uow, group: str) -> None:
        if self.events:
            if len(self.events) == 1:
                context = _flow_of(self.events[0])
            else:  # their common flow, if they share one; no single event caused what follows
                flows = {e.correlation_id for e in self.events}
                context = flow(flows.pop() if len(flows) == 1 else None)
            with context, tracing.consume_span(group, self.event_type, [e.trace_context for e in self.events]):
                await self.handler(uow, self.events)
        self.events, self.aggregates = [], set()

    def add(self, handler: BatchHandler, event: EventEnvelope) -> None:
        self.handler, self.event_type = handler, event.type
        self.events.append(event)
        self.aggregates.add(event.aggregate_id)


@dataclass
class _Runs:
    """The runs open in a batch, applied in the order they were opened. An event joins the latest run of its
    type opened after every run that holds its aggregate, or opens a new run at the end: so each aggregate's
    events apply in stream order, and a census's registrations, guardians' assignments and 无人监护 flags,
    interleaved child by child on the stream, go as a few runs, even when the batch begins in the middle of
    a child's events (flushing there instead left runs of one event for the rest of the batch)."""

    runs: list[_Run] = field(default_factory=list)

    def add(self, handler: BatchHandler, event: EventEnvelope) -> None:
        last = max((i for i, r in enumerate(self.runs) if event.aggregate_id in r.aggregates), default=-1)
        at = next((i for i in range(len(self.runs) - 1, last, -1) if self.runs[i].event_type == event.type), None)
        if at is None:
            self.runs.append(_Run())
            at = len(self.runs) - 1
        self.runs[at].add(handler, event)

    async def flush(self, uow, group: str) -> None:
        runs, self.runs = self.runs, []
        for run in runs:
            await run.flush(uow, group)


@dataclass
class Outcome:
    done: list[bytes] = field(default_factory=list)  # to acknowledge
    waiting: list[bytes] = field(default_factory=list)  # predecessor missing: stay pending
    failed: list[tuple[bytes, str]] = field(default_factory=list)  # handler raised


@dataclass(eq=False)
class _Turn:
    """A batch's place behind the batch of its subscription read before it in this process (``before``), while
    both are in flight: its events of aggregates that one also holds events of are applied after it is done,
    the others at once. So an aggregate's events apply in stream order, and the two batches' transactions never
    want the same position rows."""

    before: _Turn | None = None
    aggregates: frozenset[str] = frozenset()
    parsed: asyncio.Event = field(default_factory=asyncio.Event)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    async def shared(self) -> frozenset[str]:
        """This batch's aggregates that the batch before, still in flight, holds events of."""
        if self.before is None:
            return frozenset()
        await self.before.parsed.wait()
        return frozenset() if self.before.done.is_set() else self.aggregates & self.before.aggregates

    def finish(self) -> None:
        self.parsed.set()
        self.done.set()
        self.before = None  # keep no chain of finished batches alive


class _InFlight:
    """The batches of one subscription being applied in this process, oldest first, at most ``IN_FLIGHT``."""

    def __init__(self) -> None:
        self.tasks: deque[asyncio.Task] = deque()
        self.last: _Turn | None = None
        self.closing = False

    async def admit(self, apply: Callable[[_Turn], Awaitable[Outcome]]) -> None:
        """Start applying a batch; return (so that the next one is read) once fewer than ``IN_FLIGHT`` are in
        flight. Once closing, apply it before returning: nothing new is left running."""
        turn = _Turn(before=self.last)
        self.last = turn
        if self.closing:
            await self._run(apply, turn)
            return
        self.tasks.append(asyncio.create_task(self._run(apply, turn)))
        while len(self.tasks) >= IN_FLIGHT:
            await self._oldest_done()

    async def drain(self) -> None:
        self.closing = True
        while self.tasks:
            await self._oldest_done()

    async def _oldest_done(self) -> None:
        """Wait for the oldest batch in flight (not cancelled with the caller: a stop drains it). Oldest
        first, so that the batches in flight are consecutive: each one's only elder in flight is its ``before``."""
        oldest = self.tasks[0]
        await asyncio.wait({oldest})
        if self.tasks and self.tasks[0] is oldest:  # admit and drain may both have waited for it
            self.tasks.popleft()

    @staticmethod
    async def _run(apply: Callable[[_Turn], Awaitable[Outcome]], turn: _Turn) -> None:
        try:
            await apply(turn)
        except Exception as exc:  # an outage: nothing acknowledged, the claimer delivers the batch again later
            log.warning("batch failed; its entries stay pending", extra=log_fields(error=_brief(exc)))
        finally:
            turn.finish()


class ReliableConsumer:
    def __init__(
        self, *, service: str, settings: Settings, redis: Redis, uow_factory: Callable[[], Any],
        inbox: Table, positions: Table, metrics: ServiceMetrics | None = None,
    ) -> None:
        self.group, self.settings, self.redis = service, settings, redis
        self.metrics = metrics or ServiceMetrics(service)
        self.uow_factory, self.inbox, self.positions = uow_factory, inbox, positions
        self.consumer_name = settings.consumer(service)
        self.subscriptions: list[Subscription] = []
        # Built once: the same statements for every batch (compiled and prepared once).
        # Lock the batch's aggregates and read the versions held, creating the position rows not there yet
        # (version 0), then the batch's events already in the inbox: one statement. Two consumers of the
        # group given the same event (a claimer taking over from a slow one) queue on the lock; PostgreSQL's
        # ON CONFLICT DO UPDATE acts on (and RETURNING gives) the latest committed row even where the
        # statement's snapshot predates it, so the second sees the first's position. The inbox part reads
        # that older snapshot: an event it misses for that reason is at or below the position returned.
        # It looks each event up in the inbox's key, a scalar subquery per event id (PostgreSQL keeps it a
        # subplan, never a join): "event_id = ANY(ids)" was planned as a scan of all the group's rows,
        # stats or not, 2.5 ms a batch at 20,000 rows and growing with the inbox; the lookups take 0.4 ms.
        ensured = insert_rows(positions, ("stream", "aggregate_id", "version"))
        locked = ensured.on_conflict_do_update(
            index_elements=["stream", "aggregate_id"], set_={"version": positions.c.version}
        ).returning(positions.c.aggregate_id, positions.c.version).cte("locked")
        ids = func.unnest(array_param("event_ids", inbox.c.event_id)).table_valued("event_id").render_derived()
        applied = select(true()).where(
            inbox.c.consumer == bindparam("group"), inbox.c.event_id == ids.c.event_id
        ).scalar_subquery()
        self._lock_and_look = union_all(
            select(locked.c.aggregate_id, locked.c.version),
            select(cast(ids.c.event_id, Text), literal(None, Integer)).where(applied),
        )
        self._in_flight: dict[str, _InFlight] = {}
        self._record_inbox = insert_rows(inbox, ("consumer", "event_id")).on_conflict_do_nothing()
        moved = insert_rows(positions, ("stream", "aggregate_id", "version"))
        self._record_both = moved.on_conflict_do_update(
            index_elements=["stream", "aggregate_id"], set_={"version": moved.excluded.version}
        ).add_cte(self._record_inbox.cte("inboxed"))

    def subscribe(self, subscription: Subscription) -> None:
        self.subscriptions.append(subscription)

    # --- wiring -----------------------------------------------------------------

    def attach(self, router: RedisRouter) -> None:
        s = self.settings
        for sub in self.subscriptions:
            stream = s.stream(sub.stream)
            handle = self._faststream_handler(sub)
            main = StreamSub(
                stream, group=self.group, consumer=self.consumer_name, batch=True,
                max_records=s.consumer_batch_size, polling_interval=s.consumer_block_ms,
            )
            doc = sub.description or f"Handles: {', '.join(sub.event_types)}"
            router.subscriber(
                stream=main, parser=_keep_raw_entries, decoder=_entries, ack_policy=AckPolicy.MANUAL,
                title=f"{stream}:{self.group}", description=doc,
            )(handle)

    def start_claimers(self, stop: asyncio.Event) -> list[asyncio.Task]:
        """The claimers, and a task that, once ``stop`` is set, lets the batches in flight finish (and the
        ones read after it run to their end before the next read), so that none outlives the broker."""
        return [
            *(asyncio.create_task(self._claim_loop(sub, stop), name=f"claimer:{sub.stream}")
              for sub in self.subscriptions),
            asyncio.create_task(self._drain_at(stop), name=f"drain:{self.group}"),
        ]

    async def _drain_at(self, stop: asyncio.Event) -> None:
        await stop.wait()
        await asyncio.gather(*(lane.drain() for lane in self._in_flight.values()))

    async def _claim_loop(self, sub: Subscription, stop: asyncio.Event) -> None:
        s = self.settings
        stream, start = s.stream(sub.stream), b"0-0"
        while not stop.is_set():
            try:
                start, claimed, *_ = await self.redis.xautoclaim(
                    stream, self.group, self.consumer_name, min_idle_time=s.claim_min_idle_ms,
                    start_id=start, count=s.consumer_batch_size,
                )
                if claimed:
                    await self.process(sub, claimed)
                    continue
            except Exception as exc:  # outage or failure: the entries stay pending for the next round
                log.warning("claimer failed; will retry", extra=log_fields(stream=stream, error=_brief(exc)))
            if start == b"0-0":
                await sleep_unless_stopped(stop, s.claim_interval_ms / 1000)

    async def ensure_groups(self) -> None:
        """Create every group at id 0 (with the stream) before the broker starts."""
        for sub in self.subscriptions:
            try:
                await self.redis.xgroup_create(self.settings.stream(sub.stream), self.group, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    def _faststream_handler(self, sub: Subscription):
        lane = self._in_flight.setdefault(sub.stream, _InFlight())

        async def handle(entries) -> None:
            await lane.admit(lambda turn: self.process(sub, entries, turn))

        handle.__name__ = f"consume_{sub.stream.replace('.', '_')}"
        return handle

    # --- processing -------------------------------------------------------------

    async def process(
        self, sub: Subscription, entries: Sequence[tuple[bytes, dict[bytes, bytes]]], turn: _Turn | None = None,
    ) -> Outcome:
        """Apply a batch of entries and acknowledge what is done. ``turn``: its place behind the batch read
        before it, when both are in flight at once."""
        stream = self.settings.stream(sub.stream)
        turn = turn or _Turn()
        with self.metrics.batch_seconds.labels(stream, self.group).time():
            outcome = await self._process(sub, stream, entries, turn)
        for name, ids in (("done", outcome.done), ("waiting", outcome.waiting), ("failed", outcome.failed)):
            if ids:
                self.metrics.consumed.labels(stream, self.group, name).inc(len(ids))
        return outcome

    async def _process(self, sub: Subscription, stream: str, entries, turn: _Turn) -> Outcome:
        events: list[tuple[bytes, EventEnvelope]] = []
        wanted = {*sub.handlers, *sub.batch_handlers}  # the others' data is not validated: they only move a position
        for entry_id, fields in entries:
            try:
                events.append((entry_id, parse_event(fields[DATA_FIELD.encode()], wanted)))
            except (KeyError, ValueError, ValidationError) as exc:
                await self._unreadable(sub, stream, entry_id)
                await self._to_dlq(stream, entry_id, fields, f"unreadable event: {_brief(exc)}", permanent=True)
        turn.aggregates = frozenset(e.aggregate_id for _, e in events)
        turn.parsed.set()
        shared = await turn.shared()
        outcome = await self._apply_isolating(sub, [e for e in events if e[1].aggregate_id not in shared])
        if shared:
            await turn.before.done.wait()
            after = await self._apply_isolating(sub, [e for e in events if e[1].aggregate_id in shared])
            outcome.done += after.done
            outcome.waiting += after.waiting
            outcome.failed += after.failed
        if outcome.done:
            await self.redis.xack(stream, self.group, *outcome.done)
        by_id = dict(entries)
        for entry_id, error in outcome.failed:
            log.warning("event failed", extra=log_fields(stream=stream, entry=entry_id.decode(), error=error))
            await self._to_dlq(stream, entry_id, by_id[entry_id], error, permanent=False)
        return outcome

    async def _apply_isolating(self, sub: Subscription, events: list[tuple[bytes, EventEnvelope]]) -> Outcome:
        """The events in one transaction; if that fails, one per transaction, so the good ones still apply."""
        if not events:
            return Outcome()
        try:
            return await self._apply_retrying(sub, events)
        except Exception as exc:
            if _is_outage(exc):
                raise  # nothing acknowledged: the claimer delivers the batch again later
        outcome = Outcome()
        for one in events:
            try:
                part = await self._apply_retrying(sub, [one])
            except Exception as exc:
                if _is_outage(exc):
                    raise
                part = Outcome(failed=[(one[0], _brief(exc))])
            outcome.done += part.done
            outcome.waiting += part.waiting
            outcome.failed += part.failed
        return outcome

    async def _apply_retrying(self, sub: Subscription, events: list[tuple[bytes, EventEnvelope]]) -> Outcome:
        """``_apply``, run again when it lost a deadlock or a serialization conflict to a concurrent
        transaction; still losing after ``TRANSIENT_TRIES``, it is an outage (the entries stay pending)."""
        attempt = 1
        while True:
            try:
                return await self._apply(sub, events)
            except DBAPIError as exc:
                if _sqlstate(exc) not in _TRANSIENT:
                    raise
                if attempt == TRANSIENT_TRIES:
                    raise _Contended(_brief(exc)) from exc
                log.info("transaction lost to a concurrent one; trying again",
                         extra=log_fields(attempt=attempt, error=_brief(exc)))
                attempt += 1

    async def _apply(self, sub: Subscription, events: list[tuple[bytes, EventEnvelope]]) -> Outcome:
        outcome = Outcome()
        async with self.uow_factory() as uow:
            session = uow.session
            seen, held = await self._seen_and_held(session, sub.stream, events)
            moved: dict[str, int] = {}
            runs = _Runs()
            for entry_id, event in events:
                agg, version = event.aggregate_id, event.aggregate_version
                current = held.get(agg, 0)
                if event.event_id in seen or version <= current:
                    outcome.done.append(entry_id)  # repeated or stale
                elif sub.ordering is Ordering.STRICT and version > current + 1:
                    outcome.waiting.append(entry_id)
                    continue
                else:
                    batch_handler, handler = sub.batch_handlers.get(event.type), sub.handlers.get(event.type)
                    # An event this subscription ignores only moves the position: it does not end a run
                    # (a child's registration and its guardian's assignment alternate on the stream).
                    if batch_handler is not None:
                        runs.add(batch_handler, event)
                    elif handler is not None:
                        await runs.flush(uow, self.group)
                        with _flow_of(event), tracing.consume_span(self.group, event.type, [event.trace_context]):
                            await handler(uow, event)
                    held[agg] = moved[agg] = version
                    outcome.done.append(entry_id)
                seen.add(event.event_id)
            await runs.flush(uow, self.group)
            done = set(outcome.done)
            await self._record(session, sub.stream, [e.event_id for i, e in events if i in done], moved)
            failpoint("consumer.before_commit")
            await uow.commit()
        failpoint("consumer.after_commit")
        return outcome

    async def _unreadable(self, sub: Subscription, stream: str, entry_id: bytes) -> None:
        if sub.unreadable is None:
            return
        try:
            async with self.uow_factory() as uow:
                await sub.unreadable(uow, stream, entry_id.decode())
                await uow.commit()
        except Exception as exc:
            if _is_outage(exc):
                raise  # nothing acknowledged: delivered again later, and handled then
            # The hook is a courtesy; the entry must still leave the stream.
            log.warning("unreadable-entry hook failed", extra=log_fields(stream=stream, error=_brief(exc)))

    async def _seen_and_held(self, session, stream: str, events) -> tuple[set[UUID], dict[str, int]]:
        """Which events this group applied already, and the version it holds of each aggregate, with
        the aggregates locked until commit (one statement: see ``_lock_and_look``)."""
        aggregates = sorted({e.aggregate_id for _, e in events})  # one order for all: no deadlocks
        rows = await session.execute(self._lock_and_look, {
            "stream": [stream] * len(aggregates), "aggregate_id": aggregates, "version": [0] * len(aggregates),
            "group": self.group, "event_ids": [e.event_id for _, e in events],
        })
        seen, versions = set(), {}
        for key, version in rows:
            if version is None:
                seen.add(UUID(key))
            else:
                versions[key] = version
        return seen, versions

    async def _record(self, session, stream: str, event_ids: list[UUID], moved: dict[str, int]) -> None:
        """The inbox rows of the events done and the new positions of the aggregates moved, in one statement."""
        if event_ids:
            inboxed = {"consumer": [self.group] * len(event_ids), "event_id": event_ids}
            if moved:
                aggregates = sorted(moved)
                await session.execute(self._record_both, inboxed | {
                    "stream": [stream] * len(aggregates), "aggregate_id": aggregates,
                    "version": [moved[a] for a in aggregates],
                })
            else:
                await session.execute(self._record_inbox, inboxed)

    async def _to_dlq(self, stream: str, entry_id: bytes, fields: dict[bytes, bytes], error: str, *, permanent: bool) -> None:
        deliveries = await self._deliveries(stream, entry_id)
        if not permanent and deliveries < self.settings.max_deliveries:
            return  # stays pending; the claimer delivers it again after the idle time
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xadd(
                dlq_name(stream),
                {
                    DATA_FIELD: fields.get(DATA_FIELD.encode(), b""),
                    "source_id": entry_id,
                    "group": self.group,
                    "error": error[:2000],
                    "deliveries": deliveries,
                    "failed_at": datetime.now(UTC).isoformat(),
                },
            )
            pipe.xack(stream, self.group, entry_id)
            await pipe.execute()
        self.metrics.dead_lettered.labels(stream, self.group).inc()
        log.error("event moved to the DLQ", extra=log_fields(stream=stream, entry=entry_id.decode(), deliveries=deliveries))

    async def _deliveries(self, stream: str, entry_id: bytes) -> int:
        pending = await self.redis.xpending_range(stream, self.group, min=entry_id, max=entry_id, count=1)
        return int(pending[0]["times_delivered"]) if pending else 1


async def _keep_raw_entries(message: dict, original_parser):
    """Parse nothing ourselves: FastStream's batch parser fails on a whole batch
    when one entry is not UTF-8 JSON, and a poison entry must not stop the others.
    The raw entries travel on to ``process``; FastStream sees an empty body."""
    return await original_parser({**message, "data": [], "entries": message["data"]})


async def _entries(message, original_decoder) -> list[tuple[bytes, dict[bytes, bytes]]]:
    """The batch's (entry id, fields) pairs: the handler's argument. Taking the message from FastStream's
    context instead (``RedisBatchStreamMessage``) had fast_depends resolve it in a worker thread, a thread
    hop for every batch before it could start (issue 10)."""
    raw = message.raw_message
    return list(zip(raw["message_ids"], raw["entries"], strict=True))


def _flow_of(event: EventEnvelope):
    """Handling ``event`` continues its flow (or starts one named after it), caused by it."""
    return flow(event.correlation_id or event.event_id, event.event_id)


class _Contended(Exception):
    """A batch that kept losing deadlocks or serialization conflicts: left pending, like an outage."""


def _sqlstate(exc: DBAPIError) -> str | None:
    return getattr(exc.orig, "sqlstate", None)


def _is_outage(exc: BaseException) -> bool:
    """PostgreSQL or Redis unreachable, or a batch that kept losing to concurrent ones: not the event's
    fault, so it must not count towards the DLQ."""
    return isinstance(exc, (OSError, RedisConnectionError, OperationalError, InterfaceError, _Contended)) or bool(
        getattr(exc, "connection_invalidated", False)
    )


def _brief(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:2000]


# --- operators: the dead-letter queue -------------------------------------------------


async def dlq_list(redis: Redis, stream: str, count: int = 100) -> list[dict[str, str]]:
    out = []
    for entry_id, fields in await redis.xrange(dlq_name(stream), count=count):
        item = {k.decode(): v.decode(errors="replace") for k, v in fields.items() if k != DATA_FIELD.encode()}
        item["id"] = entry_id.decode()
        try:
            event = parse_event(fields.get(DATA_FIELD.encode(), b""))
            item.update(event_id=str(event.event_id), type=event.type, aggregate_id=event.aggregate_id)
        except (ValueError, ValidationError):
            item["type"] = "(unreadable)"
        out.append(item)
    return out


async def dlq_replay(redis: Redis, stream: str, entry_ids: Sequence[str] | None = None) -> int:
    """Put DLQ entries back on their stream (all of them when no ids are given).

    Groups that already applied the event skip it through their inbox."""
    entries = await redis.xrange(dlq_name(stream))
    chosen = [(i, f) for i, f in entries if entry_ids is None or i.decode() in entry_ids]
    for entry_id, fields in chosen:
        async with redis.pipeline(transaction=True) as pipe:
            pipe.xadd(stream, {DATA_FIELD: fields[DATA_FIELD.encode()]})
            pipe.xdel(dlq_name(stream), entry_id)
            await pipe.execute()
    return len(chosen)
