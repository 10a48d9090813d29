from services.visits.service_layer import handlers
from shared.contracts.registry_v1 import (
    ARCHIVE_CLOSED, ARCHIVE_REOPENED, CHILD_CONTACTS, CHILD_MERGED, CHILD_REGISTERED, CHILD_TRANSFERRED, CHILD_UPDATED,
    REGISTRY_CONTACTS, REGISTRY_EVENTS,
)
from shared.messaging import Ordering, Subscription


def subscriptions() -> list[Subscription]:
    return [
        Subscription(
            REGISTRY_EVENTS,
            {
                CHILD_UPDATED.name: handlers.child_updated,
                CHILD_TRANSFERRED.name: handlers.child_transferred,
                ARCHIVE_CLOSED.name: handlers.archive_closed,
                ARCHIVE_REOPENED.name: handlers.archive_reopened,
                CHILD_MERGED.name: handlers.child_merged,
            },
            batch_handlers={CHILD_REGISTERED.name: handlers.children_registered},
        ),
        Subscription(REGISTRY_CONTACTS, {CHILD_CONTACTS.name: handlers.contacts_changed}, Ordering.LATEST),
    ]
