"""Timers are data: due rows fire once, across pollers, with back-off on failure."""

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import MetaData, select, text

from shared.db import make_sessionmaker
from shared.metrics import ServiceMetrics
from shared.timers import BatchTimerPoller, TimerPoller, schedule, timers_table
from shared.uow import SqlUnitOfWork

_metadata = MetaData()
timers = timers_table(_metadata, "test_timers")  # beside, never instead of, a service's own timers


async def _setup(engine) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("DROP TABLE IF EXISTS test_timers"))
        await conn.run_sync(_metadata.create_all)
        await conn.execute(text("CREATE TABLE IF NOT EXISTS timer_effects (key text, n int)"))
        await conn.execute(text("TRUNCATE timer_effects"))


async def test_due_timers_fire_once_even_with_two_pollers_and_failures_back_off(engines):
    engine = engines["visits"]
    await _setup(engine)
    sessions = make_sessionmaker(engine)

    async def effect(uow, timer) -> None:
        if timer.payload.get("fail"):
            raise RuntimeError("handler broke")
        await uow.session.execute(text("INSERT INTO timer_effects VALUES (:k, 1)"), {"k": timer.key})

    past, future = datetime.now(UTC) - timedelta(minutes=1), datetime.now(UTC) + timedelta(days=1)
    async with sessions.begin() as s:
        for i in range(40):
            await schedule(s, timers, "effect", f"k{i}", past)
        await schedule(s, timers, "effect", "later", future)
        await schedule(s, timers, "effect", "broken", past, {"fail": True})

    metrics = ServiceMetrics("visits")
    pollers = [TimerPoller(timers, lambda: SqlUnitOfWork(sessions), {"effect": effect}, metrics=metrics) for _ in range(2)]
    fired = await asyncio.gather(*(p.fire_due() for p in pollers))
    assert sum(fired) == 40
    # Fired about a minute after they were due: counted, and in the lateness buckets from 60 s up only.
    sample = metrics.registry.get_sample_value
    assert sample("shouhu_deadline_lateness_seconds_count", {"kind": "effect"}) == 40
    assert sample("shouhu_deadline_lateness_seconds_bucket", {"kind": "effect", "le": "15.0"}) == 0
    assert sample("shouhu_deadline_lateness_seconds_bucket", {"kind": "effect", "le": "300.0"}) == 40
    assert sample("shouhu_deadline_failures_total", {"kind": "effect"}) == 1
    assert await pollers[0].fire_due() == 0  # nothing is due twice

    async with engine.connect() as conn:
        counts = dict((await conn.execute(text("SELECT key, count(*) FROM timer_effects GROUP BY key"))).all())
        broken = (await conn.execute(select(timers).where(timers.c.key == "broken"))).one()
    assert counts == {f"k{i}": 1 for i in range(40)}
    assert broken.fired_at is None and broken.attempts == 1 and "handler broke" in broken.last_error
    assert broken.due_at > datetime.now(UTC)  # backed off, not retried in a hot loop

    # Moving a timer is an update of its row: the future one, brought forward, fires.
    async with sessions.begin() as s:
        await schedule(s, timers, "effect", "later", past)
    assert await pollers[1].fire_due() == 1


async def test_a_handler_that_moves_its_own_timer_on_arms_it_again(engines):
    """E.g. a dropout case's persuasion deadline passing reports the case and sets, on the same timer,
    the bureau's acknowledgement deadline: that one must fire too."""
    engine = engines["visits"]
    await _setup(engine)
    sessions = make_sessionmaker(engine)
    past = datetime.now(UTC) - timedelta(minutes=1)

    async def next_stage(uow, timer) -> None:
        await uow.session.execute(text("INSERT INTO timer_effects VALUES (:k, :n)"), {"k": timer.key, "n": timer.payload["stage"]})
        if timer.payload["stage"] == 1:
            await schedule(uow.session, timers, "stage", timer.key, past + timedelta(seconds=1), {"stage": 2})

    async with sessions.begin() as s:
        await schedule(s, timers, "stage", "case", past, {"stage": 1})
    poller = TimerPoller(timers, lambda: SqlUnitOfWork(sessions), {"stage": next_stage})
    assert await poller.fire_due() == 2  # the first stage's deadline, then the second's, once each
    assert await poller.fire_due() == 0
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT n FROM timer_effects ORDER BY n"))).scalars().all() == [1, 2]
        assert (await conn.execute(select(timers.c.fired_at))).scalar_one() is not None


async def test_a_batch_poller_fires_due_timers_once_puts_failures_back_and_keeps_a_timer_moved_on(engines):
    engine = engines["visits"]
    await _setup(engine)
    sessions = make_sessionmaker(engine)
    past = datetime.now(UTC) - timedelta(minutes=1)

    async def effects(uow, due) -> dict:
        failed = {}
        for timer in due:
            if timer.payload.get("fail"):
                failed[timer.id] = RuntimeError("handler broke")
            elif timer.payload.get("again"):  # the next stage, on the same timer
                await schedule(uow.session, timers, "effect", timer.key, datetime.now(UTC) + timedelta(days=1), {"stage": 2})
            else:
                await uow.session.execute(text("INSERT INTO timer_effects VALUES (:k, 1)"), {"k": timer.key})
        return failed

    async with sessions.begin() as s:
        for i in range(30):
            await schedule(s, timers, "effect", f"k{i}", past)
        await schedule(s, timers, "effect", "broken", past, {"fail": True})
        await schedule(s, timers, "effect", "staged", past, {"again": True})
        await schedule(s, timers, "other", "not-ours", past)

    pollers = [BatchTimerPoller(timers, lambda: SqlUnitOfWork(sessions), ["effect"], effects, batch_size=8) for _ in range(2)]
    assert sum(await asyncio.gather(*(p.fire_due() for p in pollers))) == 31  # 30 and the staged one
    assert await pollers[0].fire_due() == 0

    async with engine.connect() as conn:
        counts = dict((await conn.execute(text("SELECT key, count(*) FROM timer_effects GROUP BY key"))).all())
        rows = {r.key: r for r in await conn.execute(select(timers).where(timers.c.key.in_(["broken", "staged", "not-ours"])))}
    assert counts == {f"k{i}": 1 for i in range(30)}
    assert rows["broken"].fired_at is None and rows["broken"].attempts == 1 and rows["broken"].due_at > datetime.now(UTC)
    assert rows["staged"].fired_at is None and rows["staged"].payload == {"stage": 2}
    assert rows["not-ours"].fired_at is None


async def test_a_poller_with_no_kinds_of_its_own_never_looks():
    """A service whose timers are all fired by workers of its own (notifications' lanes) gives its poller no
    handlers: it opens no transaction, once or every poll interval."""

    def no_database():
        raise AssertionError("the poller opened a unit of work")

    poller = TimerPoller(timers, no_database, {}, poll_ms=10)
    assert await poller.fire_due() == 0
    await asyncio.wait_for(poller.run(asyncio.Event()), timeout=1)  # returns at once, not stopped
