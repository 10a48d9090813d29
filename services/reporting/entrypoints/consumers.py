from services.reporting.service_layer import handlers
from shared.contracts.registry_v1 import REGISTRY_EVENTS
from shared.messaging import Subscription


def subscriptions() -> list[Subscription]:
    return [
        Subscription(
            REGISTRY_EVENTS,
            {"registry.child.registered": handlers.child_registered, "registry.child.updated": handlers.child_updated},
        )
    ]
