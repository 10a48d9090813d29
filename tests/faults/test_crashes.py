"""kill -9 at the worst moments: nothing lost, nothing applied twice.

The deterministic crashes use failpoints (shared/failpoints.py): the process
sends itself SIGKILL exactly at the named place, e.g. after the registry's
commit and before the relay's XADD.
"""

import json

import httpx
import pytest
from redis.exceptions import ResponseError
from sqlalchemy import text

from shared.contracts.registry_v1 import REGISTRY_CONTACTS, REGISTRY_EVENTS
from services.visits.app import SPEC as VISITS
from tests import probe
from tests.conftest import scalar
from tests.infra import free_port
from tests.support import ServiceProcess, child_payload, running_app, token, wait_until

pytestmark = pytest.mark.slow

SIGKILL_EXIT = -9


async def _register_and_crash(settings, port: int, village: str, failpoint: str) -> None:
    """Start a registry that kills itself at ``failpoint``, register a child (the
    process may die before it answers) and wait for the SIGKILL."""
    proc = await ServiceProcess("registry", settings, port, SHOUHU_FAILPOINTS=failpoint).start().ready()
    try:
        async with httpx.AsyncClient() as c:
            r = await c.post(
                f"{proc.url}/api/v1/children", json=child_payload(village_code=village), headers=token(settings), timeout=10
            )
        assert r.status_code == 201, r.text
    except httpx.HTTPError:
        pass
    assert await proc.died() == SIGKILL_EXIT
    assert f"failpoint {failpoint}: SIGKILL" in proc.log_text()
    proc.stop()


async def _outbox(engines, village: str) -> list[tuple]:
    async with engines["registry"].connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT o.payload::json->>'event_id', o.published_at IS NOT NULL FROM outbox o "
                "JOIN children c ON o.aggregate_id = c.id::text WHERE c.village_code = :v ORDER BY o.id"
            ),
            {"v": village},
        )
        return rows.all()


async def _stream_event_ids(redis, stream: str) -> list[str]:
    return [json.loads(f[b"__data__"])["event_id"] for _, f in await redis.xrange(stream)]


async def test_relay_killed_between_commit_and_xadd_publishes_after_restart(settings, redis, engines):
    village = "410523188001"
    port = free_port()
    await _register_and_crash(settings, port, village, "outbox.before_xadd")

    # The change and its events were committed together; none was published.
    rows = await _outbox(engines, village)
    assert len(rows) == 3 and not any(sent for _, sent in rows)
    events, contacts = settings.stream(REGISTRY_EVENTS), settings.stream(REGISTRY_CONTACTS)
    assert await redis.xlen(events) == 0 and await redis.xlen(contacts) == 0

    restarted = await ServiceProcess("registry", settings, port).start().ready()
    try:
        async def published() -> bool:
            return all(sent for _, sent in await _outbox(engines, village))

        await wait_until(published, what="the outbox rows marked sent after restart")
    finally:
        restarted.stop()
    on_streams = await _stream_event_ids(redis, events) + await _stream_event_ids(redis, contacts)
    assert sorted(on_streams) == sorted(event_id for event_id, _ in rows)  # each exactly once


async def test_relay_killed_after_xadd_before_marking_sent_is_applied_once(settings, redis, engines):
    village = "410523188002"
    port = free_port()
    await _register_and_crash(settings, port, village, "outbox.after_xadd")
    events = settings.stream(REGISTRY_EVENTS)
    assert await redis.xlen(events) == 2  # published, but the rows still say unsent

    restarted = await ServiceProcess("registry", settings, port).start().ready()
    try:
        async def republished() -> bool:
            return await redis.xlen(events) == 4

        await wait_until(republished, what="the unsent rows published again")
    finally:
        restarted.stop()
    ids = await _stream_event_ids(redis, events)
    assert len(set(ids)) == 2  # the same two events, twice

    async with running_app(VISITS, settings):
        async def settled() -> bool:
            return (await redis.xpending(events, "visits"))["pending"] == 0 and await scalar(
                engines["visits"], "SELECT count(*) FROM children WHERE village_code = :v", v=village
            ) == 1

        await wait_until(settled, what="visits applied the child and acknowledged the duplicates")
    assert await scalar(
        engines["visits"], "SELECT count(*) FROM inbox WHERE consumer = 'visits' AND event_id = ANY(CAST(:ids AS uuid[]))",
        ids=list(set(ids)),
    ) == 2


@pytest.mark.parametrize("crash", ["consumer.before_commit@3", "consumer.after_commit@3", "external"])
async def test_consumer_killed_mid_batch_applies_every_event_exactly_once_after_restart(crash, settings, redis, engines):
    db = engines["reporting"]
    await probe.create_probe_tables(db)
    stream = settings.stream(probe.PROBE_STREAM)
    prefix = f"crash{settings.stream_namespace}"
    # An external kill lands at a random moment: give it enough work to land mid-stream.
    aggregates, versions = (20, 150) if crash == "external" else (20, 30)
    await probe.publish(redis, stream, [p for _, p in probe.interleaved(aggregates, versions, prefix)])
    total = aggregates * versions

    async def applied() -> int:
        return await scalar(db, "SELECT count(*) FROM probe_applied WHERE aggregate_id LIKE :p", p=f"{prefix}-%")

    port = free_port()
    env = {"SHOUHU_CONSUMER_BATCH_SIZE": "50"}
    if crash != "external":
        env["SHOUHU_FAILPOINTS"] = crash
    first = ServiceProcess("probe", settings, port, module="tests.probe", **env).start()
    if crash == "external":
        await wait_until(lambda: _more_than(applied, 0), what="the first batches applied")
        first.kill()
    assert await first.died() == SIGKILL_EXIT
    first.stop()
    assert await applied() < total
    if crash != "external":  # a kill from outside may land between a batch's XACK and the next read
        assert (await redis.xpending(stream, "reporting"))["pending"] > 0  # the batch in flight was never acknowledged

    second = await ServiceProcess("probe", settings, port, module="tests.probe").start().ready()
    try:
        async def done() -> bool:
            return await applied() == total and (await redis.xpending(stream, "reporting"))["pending"] == 0

        await wait_until(done, timeout=90, what=f"all {total} events applied and nothing pending")
    finally:
        second.stop()

    async with db.connect() as conn:
        rows = (
            await conn.execute(
                text("SELECT aggregate_id, version, n FROM probe_applied WHERE aggregate_id LIKE :p ORDER BY seq"),
                {"p": f"{prefix}-%"},
            )
        ).all()
    assert {n for _, _, n in rows} == {1}, "an event was applied twice"
    for a in range(aggregates):
        assert [v for agg, v, _ in rows if agg == f"{prefix}-{a}"] == list(range(1, versions + 1))


async def test_two_consumer_processes_share_a_group_and_one_is_killed_every_event_applied_once_in_order(
    settings, redis, engines,
):
    """Scale-out: two processes of one consumer split a stream (each with its batches in flight), so an aggregate's
    events are applied by both; one is killed with SIGKILL mid-stream and the other's claimer takes over what it
    held. Each event is applied once, and each aggregate's in version order."""
    db = engines["reporting"]
    await probe.create_probe_tables(db)
    stream = settings.stream(probe.PROBE_STREAM)
    prefix = f"pair{settings.stream_namespace}"
    aggregates, versions = 20, 60
    total = aggregates * versions

    async def applied() -> int:
        return await scalar(db, "SELECT count(*) FROM probe_applied WHERE aggregate_id LIKE :p", p=f"{prefix}-%")

    await probe.publish(redis, stream, [p for _, p in probe.interleaved(aggregates, versions, prefix)])
    env = {"SHOUHU_CONSUMER_BATCH_SIZE": "20"}
    doomed, survivor = (ServiceProcess("probe", settings, free_port(), module="tests.probe", **env).start() for _ in range(2))

    async def doomed_reading() -> bool:
        """The process to kill has read from the group (the first one up could otherwise take the stream alone)."""
        try:
            consumers = await redis.xinfo_consumers(stream, "reporting")
        except ResponseError:  # no group yet
            return False
        names = [c["name"].decode() if isinstance(c["name"], bytes) else c["name"] for c in consumers]
        return any(n.endswith(f"-{doomed.proc.pid}") for n in names)

    try:
        await wait_until(doomed_reading, timeout=60, what="the process to kill reading the group")
        await wait_until(lambda: _more_than(applied, total // 10), timeout=60, what="both processes under way")
        doomed.kill()
        assert await doomed.died() == SIGKILL_EXIT

        async def done() -> bool:
            return await applied() == total and (await redis.xpending(stream, "reporting"))["pending"] == 0

        await wait_until(done, timeout=90, what=f"all {total} events applied and nothing pending")
    finally:
        doomed.stop()
        survivor.stop()
    consumers = {c["name"] for c in await redis.xinfo_consumers(stream, "reporting")}
    assert len(consumers) == 2  # both took part

    async with db.connect() as conn:
        rows = (await conn.execute(
            text("SELECT aggregate_id, version, n FROM probe_applied WHERE aggregate_id LIKE :p ORDER BY seq"),
            {"p": f"{prefix}-%"},
        )).all()
    assert {n for _, _, n in rows} == {1}, "an event was applied twice"
    for a in range(aggregates):
        assert [v for agg, v, _ in rows if agg == f"{prefix}-{a}"] == list(range(1, versions + 1))


async def _more_than(count, n: int) -> bool:
    return await count() > n
