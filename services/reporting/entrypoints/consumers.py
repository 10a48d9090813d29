from services.reporting.service_layer import handlers as h
from shared.contracts import referrals_v1 as ref
from shared.contracts import registry_v1 as r
from shared.contracts import visits_v1 as v
from shared.messaging import Subscription


def subscriptions() -> list[Subscription]:
    return [
        Subscription(
            r.REGISTRY_EVENTS,
            {
                r.CHILD_UPDATED.name: h.child_updated,
                r.CHILD_TRANSFERRED.name: h.child_transferred,
                r.ARCHIVE_CLOSED.name: h.archive_closed,
                r.CHILD_MERGED.name: h.archive_closed,
                r.ARCHIVE_REOPENED.name: h.archive_reopened,
                r.AGREEMENT_SIGNED.name: h.agreement_signed,
                r.AGREEMENT_RENEWED.name: h.agreement_signed,
                r.AGREEMENT_EXPIRED.name: h.agreement_ended,
                r.AGREEMENT_REVOKED.name: h.agreement_ended,
                r.ABSENCE_REPORTED.name: h.absence_reported,
                # A return to school (registry.school.returned) also arrives as this change.
                r.ENROLMENT_CHANGED.name: h.enrolment_changed,
            },
            # A census's per-child events go a run at a time (one run per type in a batch).
            batch_handlers={
                r.CHILD_REGISTERED.name: h.children_registered,
                r.GUARDIAN_ASSIGNED.name: h.guardians_assigned,
                r.GUARDIAN_REMOVED.name: h.guardians_removed,
                r.CHILD_UNGUARDED.name: h.children_unguarded,
                r.CHILD_GUARDED.name: h.children_guarded,
            },
        ),
        Subscription(
            v.VISITS_EVENTS,
            {
                v.PAIRING_STARTED.name: h.pairing_started,
                v.PAIRING_ENDED.name: h.pairing_ended,
                v.RECORD_CORRECTED.name: h.record_corrected,
                v.CONCERN_RAISED.name: h.concern_raised,
                v.ACTIVITY_RECORDED.name: h.activity_recorded,
                v.VISIT_OVERDUE.name: h.visit_overdue,
                ref.DEADLINE_MISSED.name: h.referral_deadline_missed,
                ref.REFERRAL_CLOSED.name: h.referral_closed,
            },
            # A single record too: one way of applying records, a run of one.
            batch_handlers={
                v.RECORD_CREATED.name: h.records_created,
                ref.REFERRAL_OPENED.name: h.referrals_opened,
                ref.STAGE_CHANGED.name: h.referral_stages_changed,
            },
        ),
    ]
