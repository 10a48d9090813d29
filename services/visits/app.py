"""Visits (走访): helpers, pairings, visit rules and records, escalations. Skeleton for now."""

from services.visits.adapters.orm import inbox, metadata, outbox, positions
from services.visits.entrypoints.consumers import subscriptions
from shared.service import ServiceSpec

SPEC = ServiceSpec(
    name="visits",
    description="Shouhu visits (走访): keeps each child's place and school from the registry; "
    "pairings, visit rules and escalations come next.",
    metadata=metadata,
    outbox=outbox,
    subscriptions=subscriptions,
    consumer_tables=(inbox, positions),
)
