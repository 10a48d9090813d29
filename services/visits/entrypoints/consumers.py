from services.visits.service_layer import handlers
from shared.contracts.registry_v1 import REGISTRY_CONTACTS, REGISTRY_EVENTS
from shared.messaging import Ordering, Subscription


def subscriptions() -> list[Subscription]:
    return [
        Subscription(
            REGISTRY_EVENTS,
            {"registry.child.registered": handlers.child_registered, "registry.child.updated": handlers.child_updated},
        ),
        Subscription(REGISTRY_CONTACTS, {"registry.child.contacts": handlers.contacts_changed}, Ordering.LATEST),
    ]
