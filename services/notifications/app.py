"""Notifications (通知): recipients, channels, deliveries, the agency gateway. Skeleton for now."""

from services.notifications.adapters.orm import inbox, metadata, outbox, positions
from services.notifications.entrypoints.consumers import subscriptions
from shared.service import ServiceSpec

SPEC = ServiceSpec(
    name="notifications",
    description="Shouhu notifications (通知): keeps the contact directory from registry.contacts; "
    "channels and the agency gateway come next.",
    metadata=metadata,
    outbox=outbox,
    subscriptions=subscriptions,
    consumer_tables=(inbox, positions),
)
