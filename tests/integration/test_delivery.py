"""Delivery guarantees of the reliable consumer, on real Redis and PostgreSQL."""

import json
import uuid
import subprocess
import sys

import pytest
from sqlalchemy import text

from services.reporting.app import SPEC as REPORTING
from shared.contracts.registry_v1 import CHILD_REGISTERED, REGISTRY_EVENTS, ChildRegistered
from shared.messaging import dlq_name
from shared.outbox import DATA_FIELD
from tests import probe
from tests.conftest import scalar
from tests.support import ROOT, env_for, running_app, wait_until


@pytest.fixture
async def probe_db(engines):
    await probe.create_probe_tables(engines["reporting"])
    return engines["reporting"]


async def applied(engine, prefix: str) -> list[tuple]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT aggregate_id, version, n FROM probe_applied WHERE aggregate_id LIKE :p ORDER BY seq"),
            {"p": f"{prefix}-%"},
        )
        return rows.all()


async def pending(redis, stream: str, group: str = "reporting") -> int:
    return (await redis.xpending(stream, group))["pending"]


async def test_late_group_processes_the_whole_backlog(settings, redis, engines):
    """A consumer group started after 1,000 events were published still processes all 1,000."""
    stream = settings.stream(REGISTRY_EVENTS)
    village = "410523199001"
    events = [
        CHILD_REGISTERED.envelope(
            ChildRegistered(
                child_id=uuid.uuid4(), gender="male", birth_date="2015-01-01", village_code=village,
                hukou_status="registered", left_behind_type="both_parents_out", father_status="migrant_worker",
                mother_status="migrant_worker",
            ),
            producer="registry", aggregate_id=str(i), aggregate_version=1, region_code=village,
        ).model_dump_json()
        for i in range(1000)
    ]
    await probe.publish(redis, stream, events)
    assert await redis.xinfo_groups(stream) == []  # no group yet: it is created when the service starts

    async with running_app(REPORTING, settings):
        async def all_counted() -> bool:
            n = await scalar(engines["reporting"], "SELECT value FROM place_figures WHERE figure = 'children' AND place = :c", c=village)
            return n == 1000

        await wait_until(all_counted, timeout=60, what="1,000 children counted by the late group")
    assert await pending(redis, stream) == 0


async def test_redelivered_events_change_nothing(settings, redis, probe_db):
    stream = settings.stream(probe.PROBE_STREAM)
    batch = probe.interleaved(5, 4, "redeliver")
    payloads = [p for _, p in batch]
    await probe.publish(redis, stream, payloads)
    async with running_app(probe.SPEC, settings):
        await wait_until(lambda: _count(probe_db, "redeliver", 20), what="20 events applied")
        await probe.publish(redis, stream, payloads)  # the same events again, e.g. a relay that crashed after XADD
        await wait_until(lambda: _no_pending(redis, stream), what="the duplicates acknowledged")
    rows = await applied(probe_db, "redeliver")
    assert len(rows) == 20 and {n for _, _, n in rows} == {1}


async def test_strict_order_per_aggregate_even_when_published_out_of_order(settings, redis, probe_db):
    stream = settings.stream(probe.PROBE_STREAM)
    events = [probe.probe_event("order-a", v)[1] for v in (1, 2, 3)]
    # v3 and v2 arrive before v1: they wait (pending) until their predecessor is applied.
    await probe.publish(redis, stream, [events[2], events[1], events[0]])
    async with running_app(probe.SPEC, settings):
        await wait_until(lambda: _count(probe_db, "order", 3), timeout=30, what="all three versions applied")
        await wait_until(lambda: _no_pending(redis, stream), what="nothing left pending")
    assert [v for _, v, _ in await applied(probe_db, "order")] == [1, 2, 3]


async def test_poison_goes_to_dlq_after_the_cap_while_the_rest_flow_and_can_be_replayed(settings, redis, probe_db):
    stream = settings.stream(probe.PROBE_STREAM)
    poison_id, poison = probe.probe_event("pbad-1", 1, poison=True)
    good = [probe.probe_event(f"pok-{i}", 1)[1] for i in range(30)]
    unreadable = b"\xff\xfe not json at all"
    await probe.publish(redis, stream, [good[0], poison, unreadable, *good[1:]])

    async with running_app(probe.SPEC, settings):
        await wait_until(lambda: _count(probe_db, "pok", 30), what="the events behind the poison applied")
        await wait_until(lambda: _dlq_len(redis, stream, 2), timeout=30, what="poison and unreadable entries in the DLQ")
        await wait_until(lambda: _no_pending(redis, stream), what="the main stream has nothing pending")

        listed = _cli(settings, "dlq", "list", probe.PROBE_STREAM)
        items = [json.loads(line) for line in listed.splitlines()]
        assert len(items) == 2
        by_type = {i["type"]: i for i in items}
        assert by_type["probe.bumped"]["event_id"] == str(poison_id)
        assert int(by_type["probe.bumped"]["deliveries"]) >= settings.max_deliveries
        assert "PoisonError" in by_type["probe.bumped"]["error"]
        assert "(unreadable)" in by_type and "unreadable event" in by_type["(unreadable)"]["error"]
        assert await _count(probe_db, "pbad", 0)

        # The cause is fixed; the operator replays the poison entry and it applies, once.
        async with probe_db.begin() as conn:
            await conn.execute(text("INSERT INTO probe_cured VALUES (:id)"), {"id": poison_id})
        out = _cli(settings, "dlq", "replay", probe.PROBE_STREAM, by_type["probe.bumped"]["id"])
        assert "replayed 1" in out
        await wait_until(lambda: _count(probe_db, "pbad", 1), what="the replayed event applied")
    assert await redis.xlen(dlq_name(stream)) == 1  # only the unreadable entry is left
    assert [n for _, _, n in await applied(probe_db, "pbad")] == [1]


async def _count(engine, prefix: str, expected: int) -> bool:
    return len(await applied(engine, prefix)) == expected


async def _no_pending(redis, stream: str) -> bool:
    return await pending(redis, stream) == 0


async def _dlq_len(redis, stream: str, n: int) -> bool:
    return await redis.xlen(dlq_name(stream)) == n


def _cli(settings, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "shared.cli", *args], cwd=ROOT, env=env_for(settings), capture_output=True, text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout
