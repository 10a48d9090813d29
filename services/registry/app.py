"""The registry (档案): one record per child, the archive every agency trusts."""

from services.registry.adapters.orm import inbox, metadata, outbox, positions, timers
from services.registry.entrypoints.api import router
from services.registry.entrypoints.archive_api import review, router as archive_router
from services.registry.entrypoints.imports import router as imports_router
from services.registry.entrypoints.protection_api import router as protection_router
from services.registry.service_layer.census import CensusImporter
from services.registry.service_layer import referral_sync
from services.registry.service_layer.guardianship import TIMER_HANDLERS
from services.registry.service_layer.unit_of_work import RegistryUnitOfWork
from shared.contracts import registry_v1
from shared.contracts.referrals_v1 import REFERRAL_CLOSED
from shared.contracts.visits_v1 import VISITS_EVENTS
from shared.messaging import Subscription
from shared.service import ServiceSpec

SPEC = ServiceSpec(
    name="registry",
    description="Shouhu registry (儿童档案): children, parents, guardians, guardianship agreements, school status, "
    "the archive's lifecycle. Publishes registry.events (no personal data) and registry.contacts (contact cards, "
    "for visits and notifications only).",
    metadata=metadata,
    uow_class=RegistryUnitOfWork,
    outbox=outbox,
    publishes=registry_v1.ALL,
    routers=(router, archive_router, review, imports_router, protection_router),
    # The enrolment status follows the end of a dropout case in visits.
    subscriptions=lambda: [Subscription(VISITS_EVENTS, {REFERRAL_CLOSED.name: referral_sync.referral_closed})],
    consumer_tables=(inbox, positions),
    timers=timers,
    timer_handlers=TIMER_HANDLERS,
    background=(lambda runtime: CensusImporter(runtime).run,),
    required_settings=("id_hash_key", "id_encryption_keys"),  # key the hash of resident ID numbers, seal them
)
