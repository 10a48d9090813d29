"""The outbox relay publishes a committed row at once, woken by the commit, not at its next poll:
with the poll interval set to an hour, the events still arrive."""

from __future__ import annotations

import json

from services.registry.app import SPEC as REGISTRY
from shared.contracts.registry_v1 import REGISTRY_EVENTS
from shared.outbox import DATA_FIELD
from tests.conftest import scalar
from tests.support import child_payload, fresh_county, running_app, token, wait_until

HOUR_MS = 3_600_000


async def test_a_committed_event_is_published_without_waiting_for_the_poll(settings, redis, engines):
    settings = settings.model_copy(update={"outbox_poll_ms": HOUR_MS})
    stream = settings.stream(REGISTRY_EVENTS)
    county = fresh_county()
    async with running_app(REGISTRY, settings) as (app, client):
        assert app.state.runtime.relay.poll == HOUR_MS / 1000
        ids = []
        for n in range(3):  # one after another: each commit wakes the relay again
            r = await client.post("/api/v1/children", json=child_payload(n, village_code=f"{county}001001"),
                                  headers=token(settings))
            assert r.status_code == 201, r.text
            ids.append(r.json()["id"])

            async def on_stream() -> bool:
                entries = await redis.xrange(stream)
                return any(json.loads(f[DATA_FIELD.encode()])["aggregate_id"] == ids[-1] for _, f in entries)

            await wait_until(on_stream, timeout=10, what=f"child {n}'s events on {stream}, an hour before the poll")
        unsent = await scalar(engines["registry"], "SELECT count(*) FROM outbox WHERE published_at IS NULL "
                              "AND aggregate_id = ANY(:ids)", ids=ids)
        assert unsent == 0
