"""One trace from an HTTP request through the outbox relay to another service's consumer (real Redis and
PostgreSQL, spans caught by an in-memory exporter), and no trace context on events when tracing is off."""

import json

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from services.registry.app import SPEC as REGISTRY
from services.reporting.app import SPEC as REPORTING
from shared import tracing
from shared.contracts.envelope import parse_event
from shared.outbox import DATA_FIELD
from tests.support import child_payload, fresh_county, running_app, token, wait_until

CALLER_TRACE = "0af7651916cd43dd8448eb211c80319c"


@pytest.fixture
def spans():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider)
    yield exporter
    tracing.install(None)
    provider.shutdown()


async def test_one_trace_from_the_request_through_the_relay_to_the_consumer(settings, redis, spans):
    village = f"{fresh_county()}100201"
    async with running_app(REGISTRY, settings) as (_, registry), running_app(REPORTING, settings) as (_, reporting):
        # A caller that traces too: the request continues its trace.
        headers = token(settings) | {"traceparent": f"00-{CALLER_TRACE}-b7ad6b7169203331-01"}
        r = await registry.post("/api/v1/children", json=child_payload(village_code=village), headers=headers)
        assert r.status_code == 201, r.text

        def of_trace(name: str):
            return [s for s in spans.get_finished_spans() if s.name == name and f"{s.context.trace_id:032x}" == CALLER_TRACE]

        async def consumed() -> bool:
            return bool(of_trace("consume registry.child.registered"))

        await wait_until(consumed, what="reporting's handler span in the request's trace")

    [server] = of_trace("POST /api/v1/children")
    publishes = of_trace(f"publish {settings.stream('registry.events')}")  # one per event the request wrote
    [handler] = [s for s in of_trace("consume registry.child.registered") if s.attributes["messaging.consumer.group.name"] == "reporting"]
    assert server.kind is SpanKind.SERVER and server.attributes["http.route"] == "/api/v1/children"
    assert f"{server.parent.span_id:016x}" == "b7ad6b7169203331"
    # The relay's publish and the consumer's handling are children of the request that wrote the event.
    assert publishes and all(p.kind is SpanKind.PRODUCER and p.parent.span_id == server.context.span_id for p in publishes)
    assert handler.kind is SpanKind.CONSUMER and handler.parent.span_id == server.context.span_id
    assert handler.start_time > min(p.start_time for p in publishes)
    # The context travels in the envelope, where any consumer (an agency's too) can read it.
    [(_, [(_, fields)])] = await redis.xread({settings.stream("registry.events"): 0}, count=1)
    event = parse_event(fields[DATA_FIELD.encode()])
    assert event.trace_context["traceparent"].split("-")[1] == CALLER_TRACE


async def test_untraced_events_carry_no_trace_context_and_old_envelopes_still_parse(settings, redis):
    assert not tracing.enabled()
    async with running_app(REGISTRY, settings) as (_, registry):
        r = await registry.post("/api/v1/children", json=child_payload(village_code=f"{fresh_county()}100201"),
                                headers=token(settings))
        assert r.status_code == 201, r.text

        async def published() -> bool:
            return bool(await redis.xlen(settings.stream("registry.events")))

        await wait_until(published, what="the registration on registry.events")
    [(_, [(_, fields)])] = await redis.xread({settings.stream("registry.events"): 0}, count=1)
    body = json.loads(fields[DATA_FIELD.encode()])
    assert body["trace_context"] is None
    del body["trace_context"]  # as written before the field existed
    assert parse_event(json.dumps(body)).trace_context is None
