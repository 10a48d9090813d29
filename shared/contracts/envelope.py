"""The envelope every event travels in, whatever its producer."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Generic, TypeVar
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, Field

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
        return EventEnvelope[self.model](type=self.name, schema_version=self.version, data=data, **fields)

    @property
    def envelope_model(self) -> type[EventEnvelope]:
        return EventEnvelope[self.model]


class _Head(BaseModel):
    """What picks the model to validate an envelope with: its type and version."""

    type: str
    schema_version: int = 1


def parse_event(raw: bytes | str | dict[str, Any]) -> EventEnvelope:
    """Validate an envelope and, for a known type and version, its data.

    Unknown types parse with ``data`` left as a dict so that consumers can skip
    events they do not handle; malformed input raises ``pydantic.ValidationError``.
    """
    as_dict = isinstance(raw, dict)
    head = _Head.model_validate(raw) if as_dict else _Head.model_validate_json(raw)
    known = EventType.registry.get((head.type, head.schema_version))
    # The whole envelope in one pass, with the data model of its type where it is known.
    model = known.envelope_model if known is not None else EventEnvelope[dict[str, Any]]
    return model.model_validate(raw) if as_dict else model.model_validate_json(raw)
