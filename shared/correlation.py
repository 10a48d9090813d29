"""Which request or flow the current work belongs to (关联号), carried without passing it by hand.

An HTTP request starts a flow (its ``X-Correlation-ID``, or a new one); handling an event
continues the event's flow. Events written meanwhile carry the flow's ``correlation_id`` and, when
caused by an event, that event's id as ``causation_id``; log lines carry the ``correlation_id``,
so one flow can be followed across services in their logs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from uuid import UUID

correlation_id: ContextVar[UUID | None] = ContextVar("correlation_id", default=None)
causation_id: ContextVar[UUID | None] = ContextVar("causation_id", default=None)


@contextmanager
def flow(correlation: UUID | None, causation: UUID | None = None) -> Iterator[None]:
    """Work done inside belongs to ``correlation`` (and was caused by ``causation``)."""
    tokens = correlation_id.set(correlation), causation_id.set(causation)
    try:
        yield
    finally:
        correlation_id.reset(tokens[0])
        causation_id.reset(tokens[1])


def current() -> dict[str, UUID]:
    """The envelope fields of the current flow (none outside one)."""
    fields = {"correlation_id": correlation_id.get(), "causation_id": causation_id.get()}
    return {k: v for k, v in fields.items() if v is not None}
