"""Event contracts: the envelope and one module per producer, versioned.

A change that would break a consumer is a new version (a new module or a new
``type``), never an edit of a published model.
"""

from shared.contracts.envelope import EventEnvelope, EventType, parse_event

__all__ = ["EventEnvelope", "EventType", "parse_event"]
