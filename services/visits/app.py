"""Visits (走访): helpers, pairings (结对帮扶), the visit rules of each county, visit records
(走访记录) and group activities, compliance that nobody has to count by hand, and the referrals
(转介) with their deadlines, above all the dropout flow (劝返复学)."""

from pathlib import Path

from services.visits.adapters.orm import inbox, metadata, outbox, positions, timers
from services.visits.entrypoints.api import router
from services.visits.entrypoints.consumers import subscriptions
from services.visits.entrypoints.referrals_api import router as referrals_router
from services.visits.service_layer import referrals, schedule
from services.visits.service_layer.unit_of_work import VisitsUnitOfWork
from shared.contracts import referrals_v1, visits_v1
from shared.contracts.notifications_v1 import MESSAGE_REQUESTED, URGENT_MESSAGE_REQUESTED
from shared.service import ServiceSpec

SPEC = ServiceSpec(
    name="visits",
    description="Shouhu visits (走访): helpers, pairings, per-county visit rules, visit records, group activities "
    "and compliance. Keeps each child's place and school from registry.events; publishes visits.events "
    "(no names or phones): pairings, records, concerns, activities, overdue windows and referrals (visits.referral.*); "
    "asks notifications for the referrals' messages on notifications.requests and hears agencies' receipts and "
    "outcomes on notifications.events.",
    metadata=metadata,
    uow_class=VisitsUnitOfWork,
    outbox=outbox,
    publishes=(*visits_v1.ALL, *referrals_v1.ALL, MESSAGE_REQUESTED, URGENT_MESSAGE_REQUESTED),
    subscriptions=subscriptions,
    routers=(router, referrals_router),
    consumer_tables=(inbox, positions),
    timers=timers,
    timer_handlers={**schedule.TIMER_HANDLERS, **referrals.TIMER_HANDLERS},
    # The field app (apps/field) on the same origin as the visits API it calls most.
    web_app=Path(__file__).resolve().parents[2] / "apps" / "field" / "dist",
)
