"""Batch handlers of the reliable consumer on real PostgreSQL: which events a handler is given together,
in what order, and what happens when a run fails."""

from __future__ import annotations

import asyncio
import uuid

from pydantic import BaseModel
from sqlalchemy import text

from services.reporting.adapters.orm import inbox, positions
from shared.contracts.envelope import EventEnvelope, EventType
from shared.db import make_sessionmaker
from shared.messaging import ReliableConsumer, Subscription
from shared.outbox import DATA_FIELD
from shared.uow import SqlUnitOfWork


class _Note(BaseModel):
    n: int = 0


ADDED = EventType("test.batch.added", 1, _Note, "test.batch")
CHANGED = EventType("test.batch.changed", 1, _Note, "test.batch")
IGNORED = EventType("test.batch.ignored", 1, _Note, "test.batch")  # no handler in the subscription


def _entry(i: int, event_type: EventType, aggregate: str, version: int, event_id: uuid.UUID | None = None):
    envelope = event_type.envelope(
        _Note(n=i), producer="test", aggregate_id=aggregate, aggregate_version=version, region_code="410523",
        **({"event_id": event_id} if event_id else {}),
    )
    return f"{i + 1}-0".encode(), {DATA_FIELD.encode(): envelope.model_dump_json().encode()}


class Recorder:
    """Records the calls: ("batch", [aggregate@version, ...]) or ("one", aggregate@version)."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.calls: list[tuple[str, object]] = []
        self.fail_on = fail_on

    async def batch(self, uow, events: list[EventEnvelope]) -> None:
        if any(e.aggregate_id == self.fail_on for e in events):
            raise ValueError("this aggregate's event cannot be applied")
        self.calls.append(("batch", [f"{e.aggregate_id}@{e.aggregate_version}" for e in events]))

    async def one(self, uow, event: EventEnvelope) -> None:
        self.calls.append(("one", f"{event.aggregate_id}@{event.aggregate_version}"))


async def _consumer(settings, redis, engine, recorder: Recorder) -> tuple[ReliableConsumer, Subscription]:
    sessions = make_sessionmaker(engine)
    consumer = ReliableConsumer(
        service=f"batch-{uuid.uuid4().hex[:6]}", settings=settings, redis=redis,
        uow_factory=lambda: SqlUnitOfWork(sessions), inbox=inbox, positions=positions,
    )
    # A stream of its own per test: positions are kept per stream name.
    sub = Subscription(
        f"test.batch.{uuid.uuid4().hex[:8]}", {CHANGED.name: recorder.one}, batch_handlers={ADDED.name: recorder.batch}
    )
    consumer.subscribe(sub)
    await consumer.ensure_groups()
    return consumer, sub


async def test_runs_of_one_type_go_together_and_an_aggregate_never_twice_in_a_run(settings, redis, engines):
    recorder = Recorder()
    consumer, sub = await _consumer(settings, redis, engines["reporting"], recorder)
    repeated = uuid.uuid4()
    entries = [
        _entry(0, ADDED, "a", 1, repeated),
        _entry(1, ADDED, "b", 1),
        _entry(2, CHANGED, "a", 2),  # another type: the run before it is applied first
        _entry(3, ADDED, "c", 1),
        _entry(4, ADDED, "d", 1),
        _entry(5, ADDED, "d", 2),  # d again: a new run, so d@1 is applied before d@2
        _entry(6, ADDED, "a", 1, repeated),  # the same event again: skipped
    ]
    outcome = await consumer.process(sub, entries)

    assert recorder.calls == [
        ("batch", ["a@1", "b@1"]), ("one", "a@2"), ("batch", ["c@1", "d@1"]), ("batch", ["d@2"]),
    ]
    assert sorted(outcome.done) == sorted(e for e, _ in entries) and not outcome.waiting and not outcome.failed
    async with engines["reporting"].connect() as conn:
        held = dict((await conn.execute(
            text("SELECT aggregate_id, version FROM aggregate_positions WHERE stream = :s"), {"s": sub.stream}
        )).all())
    assert held == {"a": 2, "b": 1, "c": 1, "d": 2}

    recorder.calls.clear()
    again = await consumer.process(sub, entries)  # redelivered: nothing is applied twice
    assert recorder.calls == [] and len(again.done) == len(entries)


async def test_an_event_the_subscription_ignores_does_not_end_a_run_but_moves_the_position(settings, redis, engines):
    recorder = Recorder()
    consumer, sub = await _consumer(settings, redis, engines["reporting"], recorder)
    entries = [
        _entry(0, ADDED, "a", 1), _entry(1, IGNORED, "a", 2),  # a registration and its guardian, say
        _entry(2, ADDED, "b", 1), _entry(3, IGNORED, "b", 2),
        _entry(4, CHANGED, "a", 3),  # handled one by one: the run before it is applied first
    ]
    outcome = await consumer.process(sub, entries)
    assert recorder.calls == [("batch", ["a@1", "b@1"]), ("one", "a@3")]
    assert sorted(outcome.done) == sorted(e for e, _ in entries) and not outcome.waiting
    async with engines["reporting"].connect() as conn:
        held = dict((await conn.execute(
            text("SELECT aggregate_id, version FROM aggregate_positions WHERE stream = :s"), {"s": sub.stream}
        )).all())
    assert held == {"a": 3, "b": 2}


async def test_a_failing_run_is_retried_event_by_event_so_the_others_still_apply(settings, redis, engines):
    recorder = Recorder(fail_on="bad")
    consumer, sub = await _consumer(settings, redis, engines["reporting"], recorder)
    entries = [_entry(0, ADDED, "x", 1), _entry(1, ADDED, "bad", 1), _entry(2, ADDED, "y", 1)]

    outcome = await consumer.process(sub, entries)

    assert recorder.calls == [("batch", ["x@1"]), ("batch", ["y@1"])]
    assert sorted(outcome.done) == [b"1-0", b"3-0"]
    assert [entry for entry, _ in outcome.failed] == [b"2-0"]


async def test_two_consumers_of_a_group_given_the_same_events_at_once_apply_them_once(settings, redis, engines):
    """A claimer can take over entries that a slow consumer is still applying: the two transactions
    overlap, and the per-aggregate lock must let only one of them apply each event."""
    recorder = Recorder()
    first_inside = asyncio.Event()

    async def slow_batch(uow, events):
        first_inside.set()
        await asyncio.sleep(0.5)  # still inside the transaction while the other consumer starts
        await recorder.batch(uow, events)

    one, sub = await _consumer(settings, redis, engines["reporting"], recorder)
    sub.batch_handlers[ADDED.name] = slow_batch
    other = ReliableConsumer(
        service=one.group, settings=settings, redis=redis, uow_factory=one.uow_factory, inbox=inbox,
        positions=positions,
    )
    entries = [_entry(0, ADDED, "p", 1), _entry(1, ADDED, "q", 1)]

    async def second():
        await first_inside.wait()
        return await other.process(sub, entries)

    outcomes = await asyncio.gather(one.process(sub, entries), second())

    assert recorder.calls == [("batch", ["p@1", "q@1"])]
    assert all(sorted(o.done) == [b"1-0", b"2-0"] for o in outcomes)


async def test_events_of_one_child_split_between_two_consumers_are_applied_in_order(settings, redis, engines):
    recorder = Recorder()
    one, sub = await _consumer(settings, redis, engines["reporting"], recorder)
    other = ReliableConsumer(
        service=one.group, settings=settings, redis=redis, uow_factory=one.uow_factory, inbox=inbox,
        positions=positions,
    )
    v1, v2 = _entry(0, ADDED, "r", 1), _entry(1, CHANGED, "r", 2)

    early = await one.process(sub, [v2])  # the successor arrives first, at one consumer
    assert early.waiting == [b"2-0"] and recorder.calls == []
    await other.process(sub, [v1])
    late = await one.process(sub, [v2])  # delivered again (by the claimer) after its predecessor

    assert late.done == [b"2-0"]
    assert recorder.calls == [("batch", ["r@1"]), ("one", "r@2")]
