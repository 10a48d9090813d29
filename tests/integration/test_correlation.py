"""One flow followed across services: the request's correlation id on its events, on the events
caused by them, and on log lines."""

from __future__ import annotations

import json
import logging
import uuid

from pydantic import BaseModel
from sqlalchemy import text

from services.registry.app import SPEC as REGISTRY
from services.visits.adapters.orm import inbox, outbox, positions
from shared.contracts.envelope import EventType
from shared.correlation import flow
from shared.db import make_sessionmaker
from shared.logs import _JsonFormatter
from shared.messaging import ReliableConsumer, Subscription
from shared.outbox import DATA_FIELD, Outbox
from shared.uow import SqlUnitOfWork
from tests.support import child_payload, running_app, token


async def _outbox_envelopes(engine, aggregate_id: str) -> list[dict]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT payload FROM outbox WHERE aggregate_id = :a ORDER BY id"), {"a": aggregate_id}
        )
        return [json.loads(p) for (p,) in rows]


async def test_a_request_s_correlation_id_is_on_every_event_it_causes(settings, engines):
    given = uuid.uuid4()
    async with running_app(REGISTRY, settings) as (_, client):
        named = await client.post(
            "/api/v1/children", json=child_payload(1), headers=token(settings) | {"X-Correlation-ID": str(given)}
        )
        unnamed = await client.post("/api/v1/children", json=child_payload(2), headers=token(settings))

    assert named.status_code == unnamed.status_code == 201
    assert named.headers["X-Correlation-ID"] == str(given)
    events = await _outbox_envelopes(engines["registry"], named.json()["id"])
    assert len(events) >= 2 and {e["correlation_id"] for e in events} == {str(given)}
    # Without a header the request starts a flow of its own, shared by its events.
    started = unnamed.headers["X-Correlation-ID"]
    assert started != str(given)
    assert {e["correlation_id"] for e in await _outbox_envelopes(engines["registry"], unnamed.json()["id"])} == {started}


class _Ping(BaseModel):
    n: int = 0


PING = EventType("test.flow.ping", 1, _Ping, "test.flow")
PONG = EventType("test.flow.pong", 1, _Ping, "test.flow")


async def test_an_event_emitted_while_handling_one_continues_its_flow(settings, redis, engines):
    sessions = make_sessionmaker(engines["visits"])
    stream = f"test.flow.{uuid.uuid4().hex[:8]}"
    answer = str(uuid.uuid4())

    async def reply(uow, event) -> None:
        await uow.emit(PONG, _Ping(n=event.data.n), aggregate_id=answer, aggregate_version=1, region_code="410523")

    consumer = ReliableConsumer(
        service="flow-test", settings=settings, redis=redis, inbox=inbox, positions=positions,
        uow_factory=lambda: SqlUnitOfWork(sessions, Outbox(outbox, "visits")),
    )
    sub = Subscription(stream, {PING.name: reply})
    consumer.subscribe(sub)
    await consumer.ensure_groups()
    origin = uuid.uuid4()
    ping = PING.envelope(_Ping(n=7), producer="test", aggregate_id="p", aggregate_version=1, region_code="410523",
                         correlation_id=origin)

    await consumer.process(sub, [(b"1-0", {DATA_FIELD.encode(): ping.model_dump_json().encode()})])

    (pong,) = await _outbox_envelopes(engines["visits"], answer)
    assert (pong["correlation_id"], pong["causation_id"]) == (str(origin), str(ping.event_id))


def test_log_lines_name_the_flow_they_belong_to():
    record = logging.LogRecord("shouhu.test", logging.INFO, __file__, 1, "applied", None, None)
    outside = json.loads(_JsonFormatter().format(record))
    current = uuid.uuid4()
    with flow(current):
        inside = json.loads(_JsonFormatter().format(record))

    assert "correlation_id" not in outside and inside["correlation_id"] == str(current)
