"""The registry (档案): one record per child, the archive every agency trusts."""

from services.registry.adapters.orm import metadata, outbox, timers
from services.registry.entrypoints.api import router
from services.registry.entrypoints.archive_api import review, router as archive_router
from services.registry.entrypoints.imports import router as imports_router
from services.registry.service_layer.census import CensusImporter
from services.registry.service_layer.guardianship import TIMER_HANDLERS
from services.registry.service_layer.unit_of_work import RegistryUnitOfWork
from shared.contracts import registry_v1
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
    routers=(router, archive_router, review, imports_router),
    timers=timers,
    timer_handlers=TIMER_HANDLERS,
    background=(lambda runtime: CensusImporter(runtime).run,),
    required_settings=("id_hash_key",),  # keys the hash of resident ID numbers
)
