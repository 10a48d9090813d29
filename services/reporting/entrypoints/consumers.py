from services.reporting.service_layer import handlers
from shared.contracts.registry_v1 import CHILD_REGISTERED, CHILD_UPDATED, REGISTRY_EVENTS
from shared.messaging import Subscription


def subscriptions() -> list[Subscription]:
    return [
        Subscription(
            REGISTRY_EVENTS,
            {CHILD_UPDATED.name: handlers.child_updated},
            batch_handlers={CHILD_REGISTERED.name: handlers.children_registered},
        )
    ]
