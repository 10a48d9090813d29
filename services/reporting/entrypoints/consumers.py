from services.reporting.service_layer import handlers
from shared.contracts.registry_v1 import (
    ARCHIVE_CLOSED,
    ARCHIVE_REOPENED,
    CHILD_MERGED,
    CHILD_REGISTERED,
    CHILD_TRANSFERRED,
    CHILD_UPDATED,
    REGISTRY_EVENTS,
)
from shared.messaging import Subscription


def subscriptions() -> list[Subscription]:
    return [
        Subscription(
            REGISTRY_EVENTS,
            {
                CHILD_UPDATED.name: handlers.child_updated,
                CHILD_TRANSFERRED.name: handlers.child_transferred,
                ARCHIVE_CLOSED.name: handlers.archive_closed,
                CHILD_MERGED.name: handlers.archive_closed,
                ARCHIVE_REOPENED.name: handlers.archive_reopened,
            },
            batch_handlers={CHILD_REGISTERED.name: handlers.children_registered},
        )
    ]
