"""The outbox relay looks on from the highest id it published (less a lookback), so the dead index entries
of published rows below do not slow every look; a row that commits after higher ids were published is still
published: by the next look within the lookback, and by a full look (the lock taken anew) below it."""

from __future__ import annotations

import json
import random

from sqlalchemy import insert, text

from services.registry.adapters.orm import outbox as OUTBOX
from shared.outbox import DATA_FIELD, OutboxRelay
from tests.conftest import scalar


def _row(stream: str, n: int) -> dict:
    return {"stream": stream, "event_type": "test.row", "aggregate_id": f"a{n}",
            "payload": json.dumps({"n": n})}


async def _commit(engine, stream: str, ids: list[int]) -> None:
    """Rows with given ids, as a transaction that drew them earlier would commit them."""
    async with engine.begin() as conn:
        await conn.execute(insert(OUTBOX), [{"id": i, **_row(stream, i)} for i in ids])


async def _on_stream(redis, stream: str) -> list[int]:
    return [json.loads(f[DATA_FIELD.encode()])["n"] for _, f in await redis.xrange(stream)]


async def _publish_all(relay: OutboxRelay) -> int:
    total = 0
    while n := await relay.publish_batch():
        total += n
    return total


async def test_a_row_committed_late_below_the_floor_is_still_published(settings, redis, engines):
    engine, stream = engines["registry"], settings.stream("test.outbox_floor")
    relay = OutboxRelay(engine, redis, OUTBOX, service=f"floor{random.getrandbits(32)}", batch_size=50)
    # Far above the sequence, so the ids are this test's alone; the earlier tests' unsent rows go out first.
    base = 10**12 + random.getrandbits(32) * 10**5
    high = base + 3 * relay.LOOKBACK
    await _commit(engine, stream, [high + k for k in range(120)])
    await _publish_all(relay)
    assert await _on_stream(redis, stream) == [high + k for k in range(120)]

    near, deep = high - 5, base  # drawn before the published ones, committed after them
    await _commit(engine, stream, [near, deep])
    assert await _publish_all(relay) == 1, "the row within the lookback goes at the next look"
    assert (await _on_stream(redis, stream))[-1] == near

    # The deep one waits for a full look: the lock taken anew (as here, after another process held it)
    # or the periodic one.
    async with engine.connect() as other:
        await other.execute(text("SELECT pg_advisory_lock(:k)"), {"k": relay.lock_key})
        assert await relay.publish_batch() == 0
        await other.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": relay.lock_key})
    assert await _publish_all(relay) == 1
    assert (await _on_stream(redis, stream))[-1] == deep
    assert await scalar(engine, "SELECT count(*) FROM outbox WHERE published_at IS NULL AND stream = :s",
                        s=stream) == 0
