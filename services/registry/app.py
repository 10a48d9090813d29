"""The registry (档案): one record per child, the archive every agency trusts."""

from services.registry.adapters.orm import metadata, outbox
from services.registry.entrypoints.api import router
from services.registry.entrypoints.imports import router as imports_router
from services.registry.service_layer.census import CensusImporter
from services.registry.service_layer.unit_of_work import RegistryUnitOfWork
from shared.contracts.registry_v1 import CHILD_CONTACTS, CHILD_REGISTERED, CHILD_UPDATED, GUARDIAN_ASSIGNED
from shared.service import ServiceSpec

SPEC = ServiceSpec(
    name="registry",
    description="Shouhu registry (儿童档案): children, parents, guardians. Publishes registry.events "
    "(no personal data) and registry.contacts (contact cards, for visits and notifications only).",
    metadata=metadata,
    uow_class=RegistryUnitOfWork,
    outbox=outbox,
    publishes=(CHILD_REGISTERED, CHILD_UPDATED, GUARDIAN_ASSIGNED, CHILD_CONTACTS),
    routers=(router, imports_router),
    background=(lambda runtime: CensusImporter(runtime).run,),
    required_settings=("id_hash_key",),  # keys the hash of resident ID numbers
)
