"""Reporting (统计报表): figures computed from events, the same way for everyone."""

from services.reporting.adapters.orm import inbox, metadata, positions
from services.reporting.entrypoints.api import router
from services.reporting.entrypoints.consumers import subscriptions
from services.reporting.entrypoints.dashboard import router as dashboard
from services.reporting.entrypoints.reports import router as reports
from shared.service import ServiceSpec

SPEC = ServiceSpec(
    name="reporting",
    description="Shouhu reporting (统计报表): figures by place from registry.events and visits.events; receives no names.",
    metadata=metadata,
    subscriptions=subscriptions,
    routers=(router, reports, dashboard),
    consumer_tables=(inbox, positions),
)
