"""What the registry's and notifications' events mean for referrals (the adapters from envelopes to
the plain calls of service_layer/referrals.py)."""

from __future__ import annotations

from shared.contracts import EventEnvelope
from shared.contracts.notifications_v1 import AgencyAnswered, DeliveryAcknowledged, DeliveryFailed
from shared.contracts.registry_v1 import (
    AbsenceReported,
    ArchiveClosed,
    ChildGuarded,
    ChildMerged,
    ChildRegistered,
    ChildUnguarded,
    ChildUpdated,
    EnrolmentChanged,
    ReturnedToSchool,
)
from services.visits.service_layer import referrals
from shared.contracts.referrals_v1 import ReferralPolicyCode

ACTOR = "visits.referrals"


async def absence_reported(uow, event: EventEnvelope[AbsenceReported]) -> None:
    d = event.data
    await referrals.absence_reported(
        uow, absence_id=d.absence_id, child_id=d.child_id, from_date=d.from_date, to_date=d.to_date,
        school_days=d.school_days, excused=d.excused, trigger=event.type, actor=ACTOR,
    )


async def enrolment_changed(uow, event: EventEnvelope[EnrolmentChanged]) -> None:
    await referrals.enrolment_changed(uow, event.data.child_id, event.data.status, event.type, ACTOR)


async def returned_to_school(uow, event: EventEnvelope[ReturnedToSchool]) -> None:
    await referrals.returned_to_school(uow, event.data.child_id, ACTOR)


async def children_unguarded(uow, events: list[EventEnvelope[ChildUnguarded]]) -> None:
    """无人监护 flagged: a case for each child of the run (a census flags many)."""
    await referrals.open_for(uow, [e.data.child_id for e in events], ReferralPolicyCode.unguarded, events[0].type, ACTOR)


async def child_guarded(uow, event: EventEnvelope[ChildGuarded]) -> None:
    await referrals.guarded_again(uow, event.data.child_id, ACTOR)


async def children_registered(uow, events: list[EventEnvelope[ChildRegistered]]) -> None:
    """无户籍: a case for each child of the run registered without household registration."""
    unregistered = [e.data.child_id for e in events if e.data.hukou_status == "unregistered"]
    if unregistered:
        await referrals.open_for(uow, unregistered, ReferralPolicyCode.no_hukou, events[0].type, ACTOR)


async def child_updated(uow, event: EventEnvelope[ChildUpdated]) -> None:
    d = event.data
    if "hukou_status" in d.changed_fields and d.changes.hukou_status:
        await referrals.hukou_changed(uow, d.child_id, d.changes.hukou_status, event.type, ACTOR)


async def archive_closed(uow, event: EventEnvelope[ArchiveClosed | ChildMerged]) -> None:
    await referrals.archive_closed(uow, event.data.child_id, ACTOR)


async def delivery_acknowledged(uow, event: EventEnvelope[DeliveryAcknowledged]) -> None:
    d = event.data
    await referrals.agency_replied(uow, d.request_id, outcome=None, agency=d.agency_code, at=d.acknowledged_at)


async def agency_answered(uow, event: EventEnvelope[AgencyAnswered]) -> None:
    d = event.data
    await referrals.agency_replied(uow, d.request_id, outcome=d.outcome, agency=d.agency_code, at=d.decided_at)


async def delivery_failed(uow, event: EventEnvelope[DeliveryFailed]) -> None:
    """A delivery given up with no channel left (``next_channel`` null) is a case's message that never
    arrived; one that falls back to another channel changes nothing here."""
    if event.data.next_channel is None:
        await referrals.message_undeliverable(uow, event.data)
