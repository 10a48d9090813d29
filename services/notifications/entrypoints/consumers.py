from services.notifications.service_layer import handlers
from shared.contracts.registry_v1 import REGISTRY_CONTACTS
from shared.messaging import Ordering, Subscription


def subscriptions() -> list[Subscription]:
    return [Subscription(REGISTRY_CONTACTS, {"registry.child.contacts": handlers.contacts_changed}, Ordering.LATEST)]
