"""Operators see what a service does: /metrics (Prometheus) and `shouhu status`, on real Redis and PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

from prometheus_client.parser import text_string_to_metric_families

from services.reporting.app import SPEC as REPORTING
from shared.contracts.registry_v1 import CHILD_REGISTERED, REGISTRY_EVENTS, ChildRegistered
from shared.messaging import dlq_name
from tests import probe
from tests.conftest import scalar
from tests.support import ROOT, env_for, running_app, wait_until

VILLAGE = "410523188001"


def _registrations(n: int) -> list[bytes]:
    return [
        CHILD_REGISTERED.envelope(
            ChildRegistered(
                child_id=uuid.uuid4(), gender="female", birth_date="2016-03-01", village_code=VILLAGE,
                hukou_status="registered", left_behind_type="both_parents_out", father_status="migrant_worker",
                mother_status="migrant_worker",
            ),
            producer="registry", aggregate_id=str(uuid.uuid4()), aggregate_version=1, region_code=VILLAGE,
        ).model_dump_json().encode()
        for _ in range(n)
    ]


def _samples(text: str) -> dict[tuple[str, frozenset], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_metrics_count_events_and_requests_and_show_the_backlog(settings, redis, engines):
    stream = settings.stream(REGISTRY_EVENTS)
    await probe.publish(redis, stream, [*_registrations(30), b"not an event"])
    async with running_app(REPORTING, settings) as (_, client):
        async def counted() -> bool:
            n = await scalar(engines["reporting"], "SELECT value FROM place_figures WHERE figure = 'children' AND place = :c", c=VILLAGE)
            return n == 30

        await wait_until(counted, timeout=30, what="30 registrations counted")
        await wait_until(lambda: _dlq_has(redis, stream), timeout=30, what="the unreadable entry in the DLQ")
        assert (await client.get("/health")).status_code == 200
        r = await client.get("/metrics")

    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    m = _samples(r.text)
    group = {("stream", stream), ("group", "reporting")}
    assert m["shouhu_events_consumed_total", frozenset(group | {("outcome", "done")})] == 30
    assert m["shouhu_events_dead_lettered_total", frozenset(group)] == 1
    assert m["shouhu_stream_pending", frozenset(group)] == 0
    assert m["shouhu_stream_lag", frozenset(group)] == 0
    assert m["shouhu_dlq_length", frozenset({("stream", stream)})] == 1
    assert m["shouhu_http_requests_total", frozenset({("method", "GET"), ("route", "/health"), ("status", "200")})] == 1
    assert "410523188001" not in r.text  # labels name streams and routes, never a place or a person


async def _dlq_has(redis, stream: str) -> bool:
    return await redis.xlen(dlq_name(stream)) == 1


async def test_shouhu_status_reports_pending_entries_and_the_outbox_backlog(settings, redis):
    stream = settings.stream(REGISTRY_EVENTS)
    await redis.xgroup_create(stream, "reporting", id="0", mkstream=True)
    await probe.publish(redis, stream, _registrations(4))
    await redis.xreadgroup("reporting", "someone", {stream: ">"}, count=3)  # 3 delivered, never acknowledged

    out = subprocess.run(
        [sys.executable, "-m", "shared.cli", "status", "reporting", "--json"], cwd=ROOT, env=env_for(settings),
        capture_output=True, text=True, timeout=60,
    )

    assert out.returncode == 0, out.stderr
    (row,) = [json.loads(line) for line in out.stdout.splitlines()]
    (events,) = [g for g in row["groups"] if g["stream"] == stream]
    assert (events["pending"], events["lag"], events["dlq"]) == (3, 1, 0)
    assert row["service"] == "reporting" and "outbox_unsent" not in row  # reporting publishes nothing
