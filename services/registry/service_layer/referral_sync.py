"""The enrolment status (就学状态) follows the end of a dropout case (劝返复学) that visits runs: what the
bureau reported (returned, transferred, suspended) becomes the status. Opening a case changes nothing
here: the school registers a dropout itself (辍学登记), and a case opened from absences the stream
brings late (the pupil back meanwhile) must not mark a returned pupil out of school."""

from __future__ import annotations

from services.registry.service_layer.records import set_enrolment
from shared.contracts import EventEnvelope
from shared.contracts.referrals_v1 import ReferralClosed, ReferralOutcome, ReferralPolicyCode
from shared.contracts.registry_v1 import EnrolmentStatus

ACTOR = "registry.referral-sync"
_CLOSED_AS = {
    ReferralOutcome.returned: EnrolmentStatus.in_school,
    ReferralOutcome.transferred: EnrolmentStatus.transferred,
    ReferralOutcome.suspended: EnrolmentStatus.suspended,
}


async def referral_closed(uow, event: EventEnvelope[ReferralClosed]) -> None:
    d = event.data
    if d.policy is not ReferralPolicyCode.dropout or d.outcome not in _CLOSED_AS:
        return
    child = await uow.children.get(d.child_id, for_update=True)
    if child is not None and child.is_open and await set_enrolment(uow, child, _CLOSED_AS[d.outcome], d.closed_on, ACTOR):
        await uow.children.save(child)
