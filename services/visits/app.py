"""Visits (走访): helpers, pairings (结对帮扶), the visit rules of each county, visit records
(走访记录) and group activities, and compliance that nobody has to count by hand."""

from pathlib import Path

from services.visits.adapters.orm import inbox, metadata, outbox, positions, timers
from services.visits.entrypoints.api import router
from services.visits.entrypoints.consumers import subscriptions
from services.visits.service_layer.schedule import TIMER_HANDLERS
from services.visits.service_layer.unit_of_work import VisitsUnitOfWork
from shared.contracts import visits_v1
from shared.service import ServiceSpec

SPEC = ServiceSpec(
    name="visits",
    description="Shouhu visits (走访): helpers, pairings, per-county visit rules, visit records, group activities "
    "and compliance. Keeps each child's place and school from registry.events; publishes visits.events "
    "(no names or phones): pairings, records, concerns, activities, and overdue windows.",
    metadata=metadata,
    uow_class=VisitsUnitOfWork,
    outbox=outbox,
    publishes=visits_v1.ALL,
    subscriptions=subscriptions,
    routers=(router,),
    consumer_tables=(inbox, positions),
    timers=timers,
    timer_handlers=TIMER_HANDLERS,
    # The field app (apps/field) on the same origin as the visits API it calls most.
    web_app=Path(__file__).resolve().parents[2] / "apps" / "field" / "dist",
)
