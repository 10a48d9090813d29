"""Reporting (统计报表): figures computed from events, the same way for everyone. Skeleton for now."""

from services.reporting.adapters.orm import inbox, metadata, positions
from services.reporting.entrypoints.api import router
from services.reporting.entrypoints.consumers import subscriptions
from shared.service import ServiceSpec

SPEC = ServiceSpec(
    name="reporting",
    description="Shouhu reporting (统计报表): counts by place from registry.events; receives no names.",
    metadata=metadata,
    subscriptions=subscriptions,
    routers=(router,),
    consumer_tables=(inbox, positions),
)
