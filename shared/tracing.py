"""OpenTelemetry tracing (链路追踪) across HTTP -> outbox -> stream -> consumer.

An HTTP request is a server span; an event written meanwhile carries the span's W3C trace context
in its envelope (``trace_context``: ``traceparent``, ``tracestate``); the outbox relay's publish
and the consumer's handling of the event are spans of that trace, and the events a handler writes
carry the handler's context on. Spans name routes and event types, never a child or a person.

Nothing is traced unless configured: ``configure(service)`` exports over OTLP/HTTP when
``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is set; otherwise
the tracer is the API's no-op one and envelopes carry no trace context.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, NoOpTracer, Span, SpanKind, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_propagator = TraceContextTextMapPropagator()
_tracer: trace.Tracer = NoOpTracer()


def install(provider: trace.TracerProvider | None) -> None:
    """Trace with ``provider`` (None: stop tracing). Held here rather than as OpenTelemetry's global,
    so that a test can install an in-memory exporter and take it away again."""
    global _tracer
    _tracer = provider.get_tracer("shouhu") if provider is not None else NoOpTracer()


def configure(service: str) -> bool:
    """Export this service's spans over OTLP when an endpoint is configured; True when tracing."""
    if not (os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")):
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": f"shouhu-{service}"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    install(provider)
    return True


def enabled() -> bool:
    return not isinstance(_tracer, NoOpTracer)


def carrier() -> dict[str, str] | None:
    """The current span's W3C trace context, for an envelope; None when not tracing."""
    if not enabled():
        return None
    out: dict[str, str] = {}
    _propagator.inject(out)
    return out or None


def _context(headers: Mapping[str, str] | None):
    return _propagator.extract(dict(headers)) if headers else None


@contextmanager
def server_span(method: str, headers: Mapping[str, str]) -> Iterator[Span]:
    """An HTTP request, continuing the caller's trace (its ``traceparent`` header) if it sent one;
    name it after its route template once routed (``span.update_name``)."""
    with _tracer.start_as_current_span(method, context=_context(headers), kind=SpanKind.SERVER) as span:
        yield span


@contextmanager
def publishing(rows: Sequence[tuple[str, str]]) -> Iterator[None]:
    """The relay putting events (stream, envelope JSON) on their streams: a producer span for each, in the
    trace of the request or event that wrote it."""
    spans = []
    if enabled():
        for stream, payload in rows:
            context = _context(json.loads(payload).get("trace_context"))
            if context is not None:
                spans.append(_tracer.start_span(f"publish {stream}", context=context, kind=SpanKind.PRODUCER, attributes={
                    "messaging.system": "redis", "messaging.destination.name": stream}))
    try:
        yield
    except Exception as exc:
        for span in spans:
            span.record_exception(exc)
            span.set_status(StatusCode.ERROR)
        raise
    finally:
        for span in spans:
            span.end()


@contextmanager
def consume_span(group: str, event_type: str, trace_contexts: Sequence[Mapping[str, str] | None]) -> Iterator[Span]:
    """A handler applying one event (a child of the event's trace) or a run of events (linked to each)."""
    if not enabled():  # the consumer's hot path: not even a no-op span
        yield trace.INVALID_SPAN
        return
    attributes = {"messaging.system": "redis", "messaging.consumer.group.name": group, "shouhu.event_type": event_type,
                  "messaging.batch.message_count": len(trace_contexts)}
    parent, links = Context(), []  # an event without a trace context starts its own trace
    if len(trace_contexts) == 1:
        parent = _context(trace_contexts[0]) or parent
    else:
        links = [Link(trace.get_current_span(c).get_span_context()) for c in map(_context, trace_contexts) if c]
    with _tracer.start_as_current_span(f"consume {event_type}", context=parent, links=links, kind=SpanKind.CONSUMER,
                                       attributes=attributes) as span:
        yield span
