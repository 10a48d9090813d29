from services.visits.service_layer import handlers, referral_events
from shared.contracts.notifications_v1 import AGENCY_ANSWERED, DELIVERY_ACKNOWLEDGED, DELIVERY_FAILED, NOTIFICATION_EVENTS
from shared.contracts.registry_v1 import (
    ABSENCE_REPORTED, ARCHIVE_CLOSED, ARCHIVE_REOPENED, CHILD_CONTACTS, CHILD_GUARDED, CHILD_MERGED, CHILD_REGISTERED,
    CHILD_TRANSFERRED, CHILD_UNGUARDED, CHILD_UPDATED, CONSENT_CHANGED, ENROLMENT_CHANGED, REGISTRY_CONTACTS,
    REGISTRY_EVENTS, RETURNED_TO_SCHOOL,
)
from shared.messaging import Ordering, Subscription


def _then(first, second):
    """One event, two effects in one transaction: the child's place, then its referrals."""
    async def both(uow, event) -> None:
        await first(uow, event)
        await second(uow, event)

    return both


def subscriptions() -> list[Subscription]:
    return [
        Subscription(
            REGISTRY_EVENTS,
            {
                CHILD_UPDATED.name: _then(handlers.child_updated, referral_events.child_updated),
                CHILD_TRANSFERRED.name: handlers.child_transferred,
                ARCHIVE_CLOSED.name: _then(handlers.archive_closed, referral_events.archive_closed),
                ARCHIVE_REOPENED.name: handlers.archive_reopened,
                CHILD_MERGED.name: _then(handlers.child_merged, referral_events.archive_closed),
                ABSENCE_REPORTED.name: referral_events.absence_reported,
                ENROLMENT_CHANGED.name: referral_events.enrolment_changed,
                RETURNED_TO_SCHOOL.name: referral_events.returned_to_school,
                CHILD_GUARDED.name: referral_events.child_guarded,
                CONSENT_CHANGED.name: handlers.consent_changed,
            },
            batch_handlers={
                CHILD_REGISTERED.name: _then(handlers.children_registered, referral_events.children_registered),
                CHILD_UNGUARDED.name: referral_events.children_unguarded,
            },
        ),
        Subscription(REGISTRY_CONTACTS, {}, Ordering.LATEST, batch_handlers={CHILD_CONTACTS.name: handlers.contacts_changed}),
        Subscription(
            NOTIFICATION_EVENTS,
            {
                DELIVERY_ACKNOWLEDGED.name: referral_events.delivery_acknowledged,
                AGENCY_ANSWERED.name: referral_events.agency_answered,
                DELIVERY_FAILED.name: referral_events.delivery_failed,
            },
        ),
    ]
