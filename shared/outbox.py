"""Transactional outbox (eShop's integration-event pattern).

A service writes its events as rows in the same transaction as the change;
the relay publishes them to Redis Streams and marks them sent. A crash after
the commit and before XADD loses nothing: the row is still unsent and is
published after restart. A crash after XADD and before the mark publishes the
event twice; consumers' inboxes make that harmless.
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from collections.abc import Callable

from redis.asyncio import Redis
from sqlalchemy import BigInteger, Column, DateTime, Index, MetaData, Table, Text, event, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from shared import correlation, tracing
from shared.contracts.envelope import EventEnvelope, EventType
from shared.failpoints import failpoint
from shared.logs import log_fields
from shared.tasks import sleep_unless_stopped

log = logging.getLogger("shouhu.outbox")

DATA_FIELD = "__data__"  # the field FastStream's stream parser reads the body from
_WAKE_ARMED = "shouhu.outbox.wake_armed"  # session.info: this session's next commit wakes the relay


def outbox_table(metadata: MetaData) -> Table:
    return Table(
        "outbox",
        metadata,
        Column("id", BigInteger, primary_key=True, autoincrement=True),
        Column("stream", Text, nullable=False),
        Column("event_type", Text, nullable=False),
        Column("aggregate_id", Text, nullable=False),
        Column("payload", Text, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("published_at", DateTime(timezone=True)),
        Index("ix_outbox_unpublished", "id", postgresql_where=text("published_at IS NULL")),
    )


# Every outbox's storage options (migrations registry 0010, visits 0009, notifications 0005). Each event's row
# is written once and marked published once, so an outbox is mostly dead rows, whose index entries a look
# from the start walks until a vacuum removes them (the relay's looks mostly start at its floor instead, see
# OutboxRelay). Autovacuum's default waits for 20% of the table and pauses as it goes: this one vacuums at
# 10,000 dead rows whatever the size, without pauses.
OUTBOX_VACUUM = ("ALTER TABLE outbox SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 10000, "
                 "autovacuum_vacuum_cost_delay = 0)")
OUTBOX_VACUUM_RESET = ("ALTER TABLE outbox RESET (autovacuum_vacuum_scale_factor, autovacuum_vacuum_threshold, "
                       "autovacuum_vacuum_cost_delay)")


class Outbox:
    """The outbox rows of events, written in the caller's transaction (SqlUnitOfWork.commit). ``wake`` (the
    relay's) is called once that transaction has committed, so its rows are published at once, not at the
    relay's next poll."""

    def __init__(self, table: Table, producer: str, stream_namespace: str = "", *,
                 wake: Callable[[], None] | None = None) -> None:
        self.table, self.producer, self.namespace, self.wake = table, producer, stream_namespace, wake

    def row(
        self, event_type: EventType, data, *, aggregate_id: str, aggregate_version: int, region_code: str,
        **envelope_fields,
    ) -> tuple[EventEnvelope, dict]:
        """The envelope of an event and the outbox row that carries it (in the current flow unless
        the caller names its correlation and causation)."""
        given = {k: v for k, v in envelope_fields.items() if v is not None}
        if trace_context := tracing.carrier():
            given.setdefault("trace_context", trace_context)
        envelope = event_type.envelope(
            data, producer=self.producer, aggregate_id=aggregate_id, aggregate_version=aggregate_version,
            region_code=region_code, **(correlation.current() | given),
        )
        return envelope, {
            "stream": self.namespace + event_type.stream, "event_type": event_type.name, "aggregate_id": aggregate_id,
            "payload": envelope.model_dump_json(),
        }

    def wake_after_commit(self, session: AsyncSession) -> None:
        """Wake the relay when ``session``'s transaction commits (once, however many rows it wrote;
        a rollback wakes nothing, or the session's next commit: a look at an empty outbox)."""
        if self.wake is None or session.info.get(_WAKE_ARMED):
            return
        session.info[_WAKE_ARMED] = True
        wake = self.wake

        def committed(sync_session) -> None:
            sync_session.info.pop(_WAKE_ARMED, None)
            wake()

        event.listen(session.sync_session, "after_commit", committed, once=True)


class OutboxRelay:
    """Publishes unsent outbox rows in id order, then marks them sent.

    One relay per database publishes at a time (a transaction-scoped advisory
    lock), which keeps per-aggregate order when several processes of a
    service run; the others stand by.

    Each look starts ``LOOKBACK`` ids below the highest id published, not at the outbox's first row: every
    published row leaves a dead entry in the unpublished index until a vacuum, and a look from the start
    walks all of them (55 ms instead of 0.5 ms with 935,500, on a server whose autovacuum is off or behind).
    A row can commit after rows with higher ids were published (ids are drawn before commit): within
    ``LOOKBACK`` ids it is found by the next look; further down (a transaction open that long), by the
    full look every ``FULL_LOOK_S`` and whenever this relay takes the lock anew.
    """

    LOOKBACK = 10_000
    FULL_LOOK_S = 30.0

    def __init__(
        self, engine: AsyncEngine, redis: Redis, table: Table, *, service: str, batch_size: int = 500,
        poll_ms: int = 50,
    ) -> None:
        self.engine, self.redis, self.table = engine, redis, table
        self.batch_size, self.poll = batch_size, poll_ms / 1000
        self.lock_key = zlib.crc32(f"shouhu.outbox.{service}".encode())
        # Set by a commit in this process that wrote outbox rows (Outbox(wake=relay.wake)); the poll
        # stays for rows committed by other processes and for a relay that stood by (the lock).
        self._woken = asyncio.Event()
        self._floor = 0  # the highest id published; 0: the next look is a full one
        self._full_look_at = 0.0

    def wake(self) -> None:
        """Publish now: rows were committed (called from the committing session's after_commit)."""
        self._woken.set()

    async def publish_batch(self) -> int:
        t = self.table
        async with self.engine.begin() as conn:
            if not await conn.scalar(select(func.pg_try_advisory_xact_lock(self.lock_key))):
                self._floor = 0  # another process publishes meanwhile: our floor says nothing of its rows
                return 0
            now = time.monotonic()
            if now >= self._full_look_at:
                self._floor, self._full_look_at = 0, now + self.FULL_LOOK_S
            rows = (
                await conn.execute(
                    select(t.c.id, t.c.stream, t.c.payload)
                    .where(t.c.published_at.is_(None), t.c.id > self._floor - self.LOOKBACK)
                    .order_by(t.c.id)
                    .limit(self.batch_size)
                )
            ).all()
            if not rows:
                return 0
            failpoint("outbox.before_xadd")
            async with self.redis.pipeline(transaction=False) as pipe:
                for row in rows:
                    pipe.xadd(row.stream, {DATA_FIELD: row.payload})
                with tracing.publishing([(r.stream, r.payload) for r in rows]):
                    await pipe.execute()
            failpoint("outbox.after_xadd")
            await conn.execute(
                update(t).where(t.c.id.in_([r.id for r in rows])).values(published_at=func.now())
            )
        self._floor = max(self._floor, rows[-1].id)  # once committed: a rollback publishes them again
        return len(rows)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self._woken.clear()  # before looking: a commit while we publish makes the pause below end at once
            try:
                if await self.publish_batch() == self.batch_size:
                    continue  # more waiting: no pause
            except Exception as exc:  # Redis or PostgreSQL away: rows stay unsent, retry (from the start)
                self._floor = 0
                log.warning("outbox relay failed; will retry", extra=log_fields(error=type(exc).__name__))
                await sleep_unless_stopped(stop, 1.0)
                continue
            await sleep_unless_stopped(stop, self.poll, self._woken)
