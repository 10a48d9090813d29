"""The streams notifications reads: contact cards, message requests (urgent ones on a stream of their own),
and each agency's answers."""

from functools import partial

from services.notifications.config import Agencies
from services.notifications.service_layer import handlers
from services.notifications.service_layer.handlers import Notifier
from shared.contracts.agency_v1 import ANSWER_MODELS, from_agency
from shared.contracts.notifications_v1 import MESSAGE_REQUESTED, NOTIFICATION_REQUESTS, NOTIFICATION_URGENT_REQUESTS
from shared.contracts.registry_v1 import CHILD_CONTACTS, CONSENT_CHANGED, REGISTRY_CONTACTS, REGISTRY_EVENTS
from shared.messaging import Ordering, Subscription


def subscriptions(notifier: Notifier, agencies: Agencies) -> list[Subscription]:
    subs = [
        Subscription(REGISTRY_CONTACTS, {}, Ordering.LATEST,
                     batch_handlers={CHILD_CONTACTS.name: notifier.contacts_changed}),
        Subscription(NOTIFICATION_REQUESTS, {}, batch_handlers={MESSAGE_REQUESTED.name: notifier.requests_received},
                     description=f"Handles: {MESSAGE_REQUESTED.name} v1 (MessageRequested). Urgent requests go on "
                     f"{NOTIFICATION_URGENT_REQUESTS}; one sent here is still handled as urgent."),
        # Urgent requests on a stream of their own: read at once, never behind a batch of ordinary ones.
        Subscription(NOTIFICATION_URGENT_REQUESTS, {}, batch_handlers={MESSAGE_REQUESTED.name: notifier.requests_received},
                     description=f"Handles: {MESSAGE_REQUESTED.name} v1 (MessageRequested) of urgency urgent (violence, a "
                     "missing child, medical): read as soon as they arrive, their first attempt made at once. Senders "
                     "choose the stream with shared.contracts.notifications_v1.message_requested(request)."),
        # The guardian's consent (a snapshot: the latest applies); the registry's other events only move positions.
        Subscription(REGISTRY_EVENTS, {CONSENT_CHANGED.name: handlers.consent_changed}, Ordering.LATEST),
    ]
    for agency in agencies.streaming():
        answer = partial(notifier.agency_answer, code=agency.code)
        subs.append(
            Subscription(
                from_agency(agency.code),
                # Every type goes to the handler, known or not, so that a wrong one is answered.
                _AnyType(answer, ANSWER_MODELS),
                # An agency's later answer to a message supersedes an earlier one that arrives late.
                Ordering.LATEST,
                description=f"Answers of {agency.name} ({agency.code}): "
                + ", ".join(f"{t} v1 ({m.__name__})" for t, m in ANSWER_MODELS.items())
                + ". Schemas: GET /asyncapi/agency.",
                # An entry that is not JSON at all is answered too, before it goes to the DLQ.
                unreadable=partial(notifier.unreadable_answer, code=agency.code),
            )
        )
    return subs


class _AnyType(dict):
    """A handler table that answers every event type with the same handler."""

    def __init__(self, handler, documented) -> None:
        super().__init__({t: handler for t in documented})
        self.handler = handler

    def get(self, key, default=None):
        return self.handler
