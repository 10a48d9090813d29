"""Timers are data (architecture.md, rule 5).

A deadline (an agreement's expiry, an overdue visit window, an escalation's
SLA) is a row with a due time. A poller fires due rows with
``FOR UPDATE SKIP LOCKED``, so several processes share the work, a restart
loses nothing, and a deadline can be moved by updating its row. A timer's
handler runs in the same transaction that marks it fired, and emits its
events through the outbox in that transaction: it fires once.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, Column, DateTime, Index, Integer, MetaData, Table, Text, bindparam, func, select, text, update
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import among, array_param
from shared.logs import log_fields
from shared.metrics import ServiceMetrics
from shared.tasks import sleep_unless_stopped

log = logging.getLogger("shouhu.timers")

TimerHandler = Callable[[Any, "Timer"], Awaitable[None]]
# Given a batch of due timers in one transaction; returns those of them whose handling failed, by id.
BatchTimerHandler = Callable[[Any, list["Timer"]], Awaitable[dict[int, Exception]]]


def timers_table(metadata: MetaData, name: str = "timers") -> Table:
    return Table(
        name,
        metadata,
        Column("id", BigInteger, primary_key=True, autoincrement=True),
        Column("kind", Text, nullable=False),
        Column("key", Text, nullable=False),
        Column("due_at", DateTime(timezone=True), nullable=False),
        Column("payload", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
        Column("attempts", Integer, nullable=False, server_default="0"),
        Column("last_error", Text),
        Column("fired_at", DateTime(timezone=True)),
        Index(f"uq_{name}_kind_key", "kind", "key", unique=True),
        Index(f"ix_{name}_due", "due_at", postgresql_where=text("fired_at IS NULL")),
    )


class Timer:
    def __init__(self, row) -> None:
        self.id, self.kind, self.key, self.due_at, self.payload = row.id, row.kind, row.key, row.due_at, row.payload


async def schedule(session: AsyncSession, table: Table, kind: str, key: str, due_at: datetime, payload: dict | None = None) -> None:
    """Set (or move) the timer ``kind``/``key``; a fired one is armed again."""
    await schedule_many(session, table, kind, [(key, due_at, payload)])


async def schedule_many(session: AsyncSession, table: Table, kind: str, due: Sequence[tuple[str, datetime, dict | None]]) -> None:
    """``schedule`` for each (key, due time, payload) of ``kind``, in one statement (e.g. a run's new cases)."""
    if due:
        await session.execute(_set_timers(table), [
            {"kind": kind, "key": key, "due_at": due_at, "payload": payload or {}, "fired_at": None, "attempts": 0,
             "last_error": None} for key, due_at, payload in due
        ])


@functools.cache
def _set_timers(table: Table):
    """Set, or move and arm again: built once per timers table (the same statement for every call)."""
    stmt = insert(table)
    return stmt.on_conflict_do_update(index_elements=["kind", "key"], set_={
        "due_at": stmt.excluded.due_at, "payload": stmt.excluded.payload, "fired_at": None, "attempts": 0, "last_error": None,
    })


async def cancel(session: AsyncSession, table: Table, kind: str, key: str) -> None:
    await session.execute(table.delete().where(table.c.kind == kind, table.c.key == key, table.c.fired_at.is_(None)))


class TimerPoller:
    """Fires due timers with their handlers, one transaction per timer."""

    def __init__(
        self, table: Table, uow_factory: Callable[[], Any], handlers: dict[str, TimerHandler], *,
        batch_size: int = 100, poll_ms: int = 1000, now: Callable[[], datetime] = lambda: datetime.now(UTC),
        metrics: ServiceMetrics | None = None,
    ) -> None:
        self.table, self.uow_factory, self.handlers = table, uow_factory, handlers
        self.metrics = metrics or ServiceMetrics("timers")
        self.batch_size, self.poll, self.now = batch_size, poll_ms / 1000, now

    async def fire_due(self) -> int:
        """Fire what is due now; returns how many fired."""
        t, fired = self.table, 0
        if not self.handlers:
            return 0
        for _ in range(self.batch_size):
            async with self.uow_factory() as uow:
                row = (
                    await uow.session.execute(
                        select(t.c.id, t.c.kind, t.c.key, t.c.due_at, t.c.payload, t.c.attempts)
                        .where(t.c.fired_at.is_(None), t.c.due_at <= self.now(), t.c.kind.in_(self.handlers))
                        .order_by(t.c.due_at)
                        .limit(1)
                        .with_for_update(skip_locked=True)
                    )
                ).first()
                if row is None:
                    return fired
                lateness = None
                try:
                    async with uow.session.begin_nested():
                        await self.handlers[row.kind](uow, Timer(row))
                        # A handler that moved its own timer on (a case's next stage, same key) armed it
                        # again: marking that fired would lose the next deadline.
                        await uow.session.execute(update(t).where(
                            t.c.id == row.id, t.c.due_at == row.due_at, t.c.payload == row.payload,
                        ).values(fired_at=func.now()))
                    fired += 1
                    lateness = (self.now() - row.due_at).total_seconds()
                except Exception as exc:
                    await _put_back(uow.session, t, row, exc, self.now())
                await uow.commit()
                if lateness is None:
                    self.metrics.deadline_failures.labels(row.kind).inc()
                else:
                    self.metrics.deadline_lateness.labels(row.kind).observe(max(0.0, lateness))
        return fired

    async def run(self, stop) -> None:
        if not self.handlers:
            # No kinds of its own (notifications: its lanes fire its attempts), so nothing could ever be due for
            # it: it does not look at all (it looked every second, a transaction each time, for nothing).
            return
        while not stop.is_set():
            try:
                if await self.fire_due() == self.batch_size:
                    continue
            except Exception as exc:
                log.warning("timer poller failed; will retry", extra=log_fields(error=type(exc).__name__))
            await sleep_unless_stopped(stop, self.poll)


class BatchTimerPoller:
    """Fires due timers of some kinds a batch at a time: up to ``batch_size`` claimed at once
    (``SKIP LOCKED``), handled together in one transaction (a handler that does I/O can do it
    concurrently), and marked fired in one statement; those the handler reports failed are put back."""

    def __init__(
        self, table: Table, uow_factory: Callable[[], Any], kinds: Sequence[str], handler: BatchTimerHandler, *,
        batch_size: int = 100, poll_ms: int = 1000, now: Callable[[], datetime] = lambda: datetime.now(UTC),
        metrics: ServiceMetrics | None = None,
    ) -> None:
        self.table, self.uow_factory, self.kinds, self.handler = table, uow_factory, list(kinds), handler
        self.metrics = metrics or ServiceMetrics("timers")
        self.batch_size, self.poll, self.now = batch_size, poll_ms / 1000, now
        t = table
        self._claim = (
            select(t.c.id, t.c.kind, t.c.key, t.c.due_at, t.c.payload, t.c.attempts)
            .where(t.c.fired_at.is_(None), t.c.due_at <= bindparam("now"), among(t.c.kind, "kinds"))
            .order_by(t.c.due_at).limit(batch_size).with_for_update(skip_locked=True)
        )
        # As in TimerPoller: a timer its handler moved on (same key, armed again) stays armed.
        claimed = func.unnest(
            array_param("fired", t.c.id), array_param("fired_due", t.c.due_at), array_param("fired_payload", t.c.payload),
        ).table_valued("id", "due_at", "payload").render_derived()
        self._fired = update(t).where(
            t.c.id == claimed.c.id, t.c.due_at == claimed.c.due_at, t.c.payload == claimed.c.payload,
        ).values(fired_at=func.now())

    async def fire_due(self) -> int:
        """Fire batches until nothing of these kinds is due; returns how many fired."""
        fired = 0
        while True:
            async with self.uow_factory() as uow:
                now = self.now()
                rows = (await uow.session.execute(self._claim, {"now": now, "kinds": self.kinds})).all()
                if not rows:
                    return fired
                failed = await self.handler(uow, [Timer(r) for r in rows])
                done = [r for r in rows if r.id not in failed]
                if done:
                    await uow.session.execute(self._fired, {
                        "fired": [r.id for r in done], "fired_due": [r.due_at for r in done],
                        "fired_payload": [r.payload for r in done],
                    })
                for r in rows:
                    if r.id in failed:
                        await _put_back(uow.session, self.table, r, failed[r.id], now)
                await uow.commit()
            fired += len(done)
            for r in done:
                self.metrics.deadline_lateness.labels(r.kind).observe(max(0.0, (now - r.due_at).total_seconds()))
            for kind in (r.kind for r in rows if r.id in failed):
                self.metrics.deadline_failures.labels(kind).inc()

    async def run(self, stop) -> None:
        while not stop.is_set():
            try:
                await self.fire_due()
            except Exception as exc:
                log.warning("timer poller failed; will retry", extra=log_fields(error=type(exc).__name__))
            await sleep_unless_stopped(stop, self.poll)


async def _put_back(session: AsyncSession, table: Table, row, exc: Exception, now: datetime) -> None:
    """A timer whose handler failed: tried again later, backing off; the error is on the row for operators."""
    delay = timedelta(seconds=min(3600, 10 * 2 ** row.attempts))
    await session.execute(
        update(table).where(table.c.id == row.id).values(
            attempts=row.attempts + 1, due_at=now + delay, last_error=f"{type(exc).__name__}: {exc}"[:2000]
        )
    )
    log.warning("timer failed", extra=log_fields(kind=row.kind, key=row.key, error=type(exc).__name__))
