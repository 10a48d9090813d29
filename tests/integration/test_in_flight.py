"""Two batches of a subscription in flight in one process (shared/messaging.py, IN_FLIGHT), on real Redis
and PostgreSQL: they do overlap, an aggregate's events split between them still apply in stream order (the
later batch's wait for the earlier, they are not left for the claimer), and transactions that deadlock are
tried again."""

from __future__ import annotations

import asyncio
import logging
import uuid

import pytest
from faststream.redis import RedisBroker, RedisRouter
from pydantic import BaseModel
from sqlalchemy import text

from services.reporting.adapters.orm import inbox, positions
from shared.contracts.envelope import EventEnvelope, EventType
from shared.db import make_sessionmaker
from shared.messaging import ReliableConsumer, Subscription, dlq_name
from shared.outbox import DATA_FIELD
from shared.uow import SqlUnitOfWork
from tests import probe
from tests.support import wait_until


class _Step(BaseModel):
    n: int = 0


STEP = EventType("test.inflight.step", 1, _Step, "test.inflight")


def _payload(aggregate: str, version: int) -> bytes:
    return STEP.envelope(
        _Step(n=version), producer="test", aggregate_id=aggregate, aggregate_version=version, region_code="410523",
    ).model_dump_json().encode()


class _Consumer:
    """A ReliableConsumer with one subscription (handlers given by the test) run as a service runs it: its
    FastStream subscriber and claimer, batches of ``batch`` entries, and no claim within the test's time
    (an event left waiting would stay pending)."""

    def __init__(self, settings, redis, engine, handlers: dict, batch: int) -> None:
        self.settings = settings.model_copy(update={"consumer_batch_size": batch, "claim_min_idle_ms": 600_000})
        sessions = make_sessionmaker(engine)
        self.consumer = ReliableConsumer(
            service=f"inflight-{uuid.uuid4().hex[:6]}", settings=self.settings, redis=redis,
            uow_factory=lambda: SqlUnitOfWork(sessions), inbox=inbox, positions=positions,
        )
        self.sub = Subscription(f"test.inflight.{uuid.uuid4().hex[:8]}", handlers)
        self.consumer.subscribe(self.sub)
        self.stream = self.settings.stream(self.sub.stream)
        self.redis = redis

    async def __aenter__(self) -> _Consumer:
        await self.consumer.ensure_groups()
        self.broker = RedisBroker(self.settings.redis_url, logger=logging.getLogger("test.inflight"))
        router = RedisRouter()
        self.consumer.attach(router)
        self.broker.include_router(router)
        self.stop, self.tasks = asyncio.Event(), []
        return self

    async def start(self) -> None:
        """As the service's lifespan does."""
        await self.broker.start()
        self.tasks = self.consumer.start_claimers(self.stop)

    async def __aexit__(self, *exc) -> None:
        if self.tasks:
            self.stop.set()
            await asyncio.gather(*self.tasks)
            await self.broker.stop()

    async def settled(self) -> bool:
        return (await self.redis.xpending(self.stream, self.consumer.group))["pending"] == 0 and (
            await self.redis.xinfo_groups(self.stream))[0]["lag"] == 0

    def counted(self, outcome: str) -> float:
        return self.consumer.metrics.registry.get_sample_value(
            "shouhu_events_consumed_total", {"stream": self.stream, "group": self.consumer.group, "outcome": outcome},
        ) or 0


async def test_the_next_batch_is_applied_while_one_is_still_in_its_transaction(settings, redis, engines):
    second_applied = asyncio.Event()
    applied: list[str] = []

    async def step(uow, event: EventEnvelope) -> None:
        if event.aggregate_id == "first":
            # Still inside the first batch's transaction: it ends only once the second batch has been applied.
            await asyncio.wait_for(second_applied.wait(), timeout=10)
        applied.append(event.aggregate_id)
        if event.aggregate_id == "second":
            second_applied.set()

    async with _Consumer(settings, redis, engines["reporting"], {STEP.name: step}, batch=1) as c:
        await probe.publish(redis, c.stream, [_payload("first", 1), _payload("second", 1)])
        await c.start()
        await wait_until(c.settled, what="both batches applied and acknowledged")
    assert applied == ["second", "first"]


@pytest.mark.parametrize("first_batch_fails", [False, True])
async def test_an_aggregates_events_split_between_batches_in_flight_apply_in_order(
    first_batch_fails, settings, redis, engines,
):
    """x@2 is read in the second batch while x@1 is still being applied by the first: it is applied once the first
    batch is done (y@1, of the same batch, at once), also when that batch fails as a whole and goes event by
    event; it is not left pending for the claimer (which would not come within this test). The failing event
    stays pending (its redeliveries, and the DLQ, would come from the claimer)."""
    db = engines["reporting"]
    await probe.create_probe_tables(db)
    prefix = f"split{uuid.uuid4().hex[:8]}"
    x, bad, y = (f"{prefix}-{name}" for name in ("x", "bad", "y"))

    async def step(uow, event: EventEnvelope) -> None:
        if event.aggregate_id == x and event.aggregate_version == 1:
            await asyncio.sleep(0.3)  # the second batch is read meanwhile
        if event.aggregate_id == bad and first_batch_fails:
            raise ValueError("this event cannot be applied")
        await probe.bump(uow, event)

    async with _Consumer(settings, redis, db, {"probe.bumped": step}, batch=2) as c:
        await probe.publish(redis, c.stream, [
            probe.probe_event(x, 1)[1], probe.probe_event(bad, 1)[1], probe.probe_event(x, 2)[1], probe.probe_event(y, 1)[1],
        ])
        await c.start()

        async def applied() -> list[tuple]:
            async with db.connect() as conn:
                return (await conn.execute(text(
                    "SELECT aggregate_id, version, n FROM probe_applied WHERE aggregate_id LIKE :p ORDER BY seq"
                ), {"p": f"{prefix}-%"})).all()

        async def settled() -> bool:
            return len(await applied()) == (3 if first_batch_fails else 4)

        await wait_until(settled, what="every event that can be applied applied")
        pending = (await redis.xpending(c.stream, c.consumer.group))["pending"]
    rows = await applied()
    assert [(a, v) for a, v, _ in rows if a == x] == [(x, 1), (x, 2)] and {n for *_, n in rows} == {1}
    assert ((bad, 1, 1) in rows) is not first_batch_fails
    assert pending == (1 if first_batch_fails else 0) and c.counted("waiting") == 0


async def test_batches_that_deadlock_are_tried_again_not_failed(settings, redis, engines):
    """Two batches lock two rows in opposite orders: PostgreSQL aborts one with a deadlock; that batch is run
    again as it was (both its events in one transaction), nothing fails and nothing reaches the DLQ."""
    db = engines["reporting"]
    rows = [f"dl-{uuid.uuid4().hex[:8]}-{i}" for i in range(2)]
    async with db.begin() as conn:
        await conn.execute(text("CREATE TABLE IF NOT EXISTS test_inflight_rows (k text PRIMARY KEY, n int NOT NULL)"))
        await conn.execute(text("INSERT INTO test_inflight_rows VALUES (:a, 0), (:b, 0)"), {"a": rows[0], "b": rows[1]})
    both_hold_one = asyncio.Barrier(2)
    runs: list[list[str]] = []
    attempts = 0

    async def bump(uow, k: str) -> None:
        await uow.session.execute(text("UPDATE test_inflight_rows SET n = n + 1 WHERE k = :k"), {"k": k})

    async def steps(uow, events: list[EventEnvelope]) -> None:
        nonlocal attempts
        attempts += 1
        first, second = (rows[0], rows[1]) if events[0].aggregate_id.startswith("p") else (rows[1], rows[0])
        await bump(uow, first)
        if attempts <= 2:  # the two batches' first attempts meet here, each holding its first row
            await asyncio.wait_for(both_hold_one.wait(), timeout=10)
        await bump(uow, second)
        runs.append([f"{e.aggregate_id}@{e.aggregate_version}" for e in events])

    async with _Consumer(settings, redis, db, {}, batch=2) as c:
        c.sub.batch_handlers[STEP.name] = steps
        entries = {name: [(f"{i + 1}-0".encode(), {DATA_FIELD.encode(): _payload(f"{name}{i}", 1)}) for i in range(2)]
                   for name in ("p", "q")}
        outcomes = await asyncio.gather(*(c.consumer.process(c.sub, e) for e in entries.values()))

    assert attempts == 3  # one of them lost the deadlock and was run again
    assert sorted(map(sorted, runs)) == [["p0@1", "p1@1"], ["q0@1", "q1@1"]]  # each batch applied once, whole
    assert all(not o.failed and not o.waiting and len(o.done) == 2 for o in outcomes)
    async with db.connect() as conn:
        counts = (await conn.execute(text("SELECT n FROM test_inflight_rows WHERE k = ANY(:ks)"), {"ks": rows})).scalars()
        assert list(counts) == [2, 2]
    assert await redis.xlen(dlq_name(c.stream)) == 0

