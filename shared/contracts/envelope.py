"""The envelope every event travels in, whatever its producer."""

from __future__ import annotations

import re
from collections.abc import Container
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, Generic, TypeVar
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, Field, ValidationError

DataT = TypeVar("DataT")


class EventEnvelope(BaseModel, Generic[DataT]):
    """One event. Consumers order and de-duplicate by ``aggregate_version``."""

    model_config = ConfigDict(frozen=True)

    event_id: UUID = Field(default_factory=uuid4, description="Unique id; consumers de-duplicate on it.")
    type: str = Field(description="Dotted event type, e.g. registry.child.registered.")
    schema_version: int = Field(1, ge=1, description="Version of the data model for this type.")
    occurred_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    producer: str = Field(description="Service that emitted the event.")
    aggregate_id: str = Field(description="Id of the aggregate (e.g. the child) the event is about.")
    aggregate_version: int = Field(
        ge=1, description="Per-aggregate sequence: apply in order, ignore stale or repeated."
    )
    correlation_id: UUID | None = Field(None, description="The request or flow this event belongs to.")
    causation_id: UUID | None = Field(None, description="The event or command that caused this one.")
    actor: str | None = Field(None, description="Pseudonymous id of the user or system that acted.")
    region_code: str = Field(description="Division code of the child's place (12 digits for a village).")
    trace_context: dict[str, str] | None = Field(
        None, description="W3C trace context (traceparent, tracestate) of the span that wrote the event, when traced."
    )
    data: DataT


class EventType:
    """Binds a type name and version to its data model and the stream it goes to."""

    registry: dict[tuple[str, int], "EventType"] = {}

    def __init__(self, name: str, version: int, model: type[BaseModel], stream: str) -> None:
        self.name, self.version, self.model, self.stream = name, version, model, stream
        EventType.registry[(name, version)] = self

    def envelope(self, data: BaseModel, **fields: Any) -> EventEnvelope:
        return self.envelope_model(type=self.name, schema_version=self.version, data=data, **fields)

    @cached_property
    def envelope_model(self) -> type[EventEnvelope]:
        # Cached: pydantic looks a parametrized generic up anew on every subscript (a few µs per event).
        return EventEnvelope[self.model]


class _Head(BaseModel):
    """What picks the model to validate an envelope with: its type and version."""

    type: str
    schema_version: int = 1


_UNKNOWN = EventEnvelope[dict[str, Any]]
# Where an envelope written by model_dump_json (fields in declaration order) names its type and version: read
# off the bytes, so that the envelope is validated in one pass instead of its head first and then the whole.
_HEAD = re.compile(rb'"type":\s*"([^"\\]*)",\s*"schema_version":\s*(\d+)')


def _model(type_name: str, version: int, wanted: Container[str] | None = None) -> type[EventEnvelope]:
    known = EventType.registry.get((type_name, version))
    if known is None or (wanted is not None and type_name not in wanted):
        return _UNKNOWN
    return known.envelope_model


def parse_event(raw: bytes | str | dict[str, Any], wanted: Container[str] | None = None) -> EventEnvelope:
    """Validate an envelope and, for a known type and version, its data.

    Unknown types parse with ``data`` left as a dict so that consumers can skip
    events they do not handle; malformed input raises ``pydantic.ValidationError``.
    With ``wanted`` (the types a consumer handles), so do the types it does not: it only moves past
    them, and validating their data was most of its parsing (notifications reads registry.events for
    consent alone, a third of a census's events).
    """
    if isinstance(raw, dict):
        head = _Head.model_validate(raw)
        return _model(head.type, head.schema_version, wanted).model_validate(raw)
    found = _HEAD.search(raw.encode() if isinstance(raw, str) else raw)
    if found is not None:
        guess = found[1].decode(errors="replace"), int(found[2])
        try:
            event = _model(*guess, wanted).model_validate_json(raw)
        except ValidationError:
            event = None  # perhaps a wrong guess (those bytes inside ``data``): the general way below says
        # The model is right only if the envelope's own type and version are the ones guessed.
        if event is not None and (event.type, event.schema_version) == guess:
            return event
    head = _Head.model_validate_json(raw)
    return _model(head.type, head.schema_version, wanted).model_validate_json(raw)
