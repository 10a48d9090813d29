"""A case's message that notifications could not deliver at all (未能送达): the pure rules, and the handler of
notifications.delivery.failed with an in-memory unit of work (once per delivery, fallbacks and strangers'
messages ignored, the family's notice and a closed case written down without an event)."""

from __future__ import annotations

from datetime import date
from uuid import UUID, uuid4

import pytest

from services.visits.domain.referrals import (
    CAUSE_TEXT,
    CHAIN,
    Referral,
    failure_cause,
    message_stage,
    undelivered_outstanding,
)
from services.visits.service_layer import referral_events, referrals
from shared.contracts.notifications_v1 import DELIVERY_FAILED, Channel, DeliveryFailed, MessageKind, RecipientRole
from shared.contracts.referrals_v1 import (
    MESSAGE_UNDELIVERABLE,
    MessagePurpose,
    ReferralPolicyCode,
    ReferralStage,
    UndeliveredCause,
)


def case(stage: str = ReferralStage.reported, **over) -> Referral:
    values = dict(id=uuid4(), child_id=uuid4(), policy=ReferralPolicyCode.dropout, county="130102",
                  village_code="130102001001", school_id=None, stage=stage, trigger="manual",
                  opened_on=date(2026, 12, 1), due_at=None, version=3)
    return Referral(**(values | over))


# --- the rules ----------------------------------------------------------------------------------


def test_the_cause_says_whether_anything_could_be_tried():
    assert failure_cause(None, True) is UndeliveredCause.no_channel  # the county has no such agency configured
    assert failure_cause(Channel.email, True) is UndeliveredCause.refused
    assert failure_cause(Channel.webhook, False) is UndeliveredCause.retries_exhausted
    assert set(CAUSE_TEXT) == set(UndeliveredCause) and all(zh and en for zh, en in CAUSE_TEXT.values())


def test_the_escalation_chain_is_every_agency_message_and_not_the_familys_notice():
    assert CHAIN == {MessagePurpose.report, MessagePurpose.inform, MessagePurpose.reminder, MessagePurpose.escalation}


def test_the_stage_of_a_message_is_the_one_it_was_sent_for():
    assert message_stage("reminder", "acknowledged", "closed") == "acknowledged"
    # Requests asked before the stage was kept: their purpose tells, else the case's stage now.
    assert message_stage("report", None, "acknowledged") == "reported"
    assert message_stage("inform", None, "reported") == "reported"
    assert message_stage("notice", None, "reported") == "persuasion"
    assert message_stage("escalation", None, "acknowledged") == "acknowledged"


@pytest.mark.parametrize(("purpose", "stage", "case_stage", "outstanding"), [
    ("report", "reported", "reported", True),  # the report reached nobody and nobody has acknowledged
    ("inform", "reported", "reported", True),
    ("reminder", "acknowledged", "acknowledged", True),
    ("report", "reported", "acknowledged", False),  # acknowledged since (told by other means)
    ("report", "reported", "closed", False),
    ("notice", "persuasion", "persuasion", False),  # the family's notice: the timeline only
])
def test_an_undelivered_message_holds_up_the_case_while_it_waits_in_that_stage(purpose, stage, case_stage, outstanding):
    assert undelivered_outstanding(purpose, stage, case(case_stage)) is outstanding


# --- the handler, in memory ------------------------------------------------------------------------


class Repo:
    def __init__(self) -> None:
        self.cases: dict[UUID, Referral] = {}
        self.requests: dict[UUID, dict] = {}
        self.undelivered_rows: dict[UUID, dict] = {}
        self.timeline: list[tuple[UUID, str, dict]] = []
        self.saved: list[int] = []

    async def request(self, request_id):
        return self.requests.get(request_id)

    async def get(self, referral_id, *, for_update=False):
        return self.cases.get(referral_id)

    async def add_undelivered(self, values):
        if values["delivery_id"] in self.undelivered_rows:
            return False
        self.undelivered_rows[values["delivery_id"]] = values
        return True

    async def log(self, referral_id, step, actor, **detail):
        self.timeline.append((referral_id, step, detail))

    async def save(self, r):
        self.saved.append(r.version)


class Uow:
    def __init__(self) -> None:
        self.referrals = Repo()
        self.emitted: list[tuple[str, object, dict]] = []

    async def emit(self, event_type, data, **fields):
        self.emitted.append((event_type.name, data, fields))

    def asked(self, r: Referral, purpose: str, agency: str | None, stage: str | None = None) -> UUID:
        self.referrals.cases[r.id] = r
        request_id = uuid4()
        self.referrals.requests[request_id] = {"request_id": request_id, "referral_id": r.id, "agency": agency,
                                               "purpose": purpose, "stage": stage}
        return request_id


def failed(request_id: UUID, *, channel=None, permanent=True, next_channel=None, delivery_id=None,
           role=RecipientRole.agency) -> DeliveryFailed:
    return DeliveryFailed(delivery_id=delivery_id or uuid4(), request_id=request_id, kind=MessageKind.dropout_report,
                          recipient_role=role, channel=channel, permanent=permanent,
                          reason="the recipient has no channel", next_channel=next_channel)


def envelope(data: DeliveryFailed):
    return DELIVERY_FAILED.envelope(data, producer="notifications", aggregate_id=str(data.delivery_id),
                                    aggregate_version=1, region_code="130102001001")


async def test_a_report_that_reached_nobody_is_written_down_and_published_once():
    uow, r = Uow(), case()
    request = uow.asked(r, "report", "education_bureau", "reported")
    event = envelope(failed(request))
    await referral_events.delivery_failed(uow, event)
    await referral_events.delivery_failed(uow, event)  # redelivered
    await referral_events.delivery_failed(uow, envelope(event.data))  # the same delivery in another event
    [row] = uow.referrals.undelivered_rows.values()
    assert (row["purpose"], row["agency"], row["stage"], row["cause"], row["channel"]) == (
        "report", "education_bureau", "reported", "no_channel", None)
    assert [(step, d["agency"], d["cause"]) for _, step, d in uow.referrals.timeline] == [
        ("undeliverable", "education_bureau", "no_channel")]
    [(name, data, fields)] = uow.emitted
    assert name == MESSAGE_UNDELIVERABLE.name and fields["aggregate_version"] == 4 == r.version
    assert (data.referral_id, data.purpose, data.agency, data.cause) == (r.id, "report", "education_bureau", "no_channel")
    assert uow.referrals.saved == [4]  # the case's version, with its event


async def test_a_failure_with_a_fallback_left_and_a_strangers_message_change_nothing():
    uow, r = Uow(), case()
    request = uow.asked(r, "report", "public_security", "reported")
    await referral_events.delivery_failed(uow, envelope(failed(request, channel=Channel.agency_stream, next_channel=Channel.webhook)))
    await referral_events.delivery_failed(uow, envelope(failed(uuid4())))  # not a case's request (a visit reminder)
    assert (uow.referrals.undelivered_rows, uow.referrals.timeline, uow.emitted) == ({}, [], [])


async def test_the_familys_notice_and_a_closed_case_go_on_the_timeline_without_an_event():
    uow = Uow()
    persuading, closed = case(ReferralStage.persuasion), case(ReferralStage.closed)
    notice = uow.asked(persuading, "notice", None, "persuasion")
    late = uow.asked(closed, "reminder", "education_bureau", "reported")
    await referral_events.delivery_failed(uow, envelope(failed(notice, channel=Channel.sms, role=RecipientRole.guardian)))
    await referral_events.delivery_failed(uow, envelope(failed(late, channel=Channel.webhook, permanent=False)))
    assert sorted((d["purpose"], d["cause"]) for _, step, d in uow.referrals.timeline) == [
        ("notice", "refused"), ("reminder", "retries_exhausted")]
    assert uow.emitted == [] and uow.referrals.saved == []


async def test_a_request_of_an_earlier_version_gets_its_stage_from_its_purpose():
    uow, r = Uow(), case(ReferralStage.reported)
    request = uow.asked(r, "report", "education_bureau", None)  # asked before the stage was kept
    await referrals.message_undeliverable(uow, failed(request))
    [row] = uow.referrals.undelivered_rows.values()
    assert row["stage"] == "reported"
    [(_, data, _)] = uow.emitted
    assert data.stage is ReferralStage.reported


async def test_a_failure_known_after_the_case_moved_on_is_written_down_without_an_event():
    uow, r = Uow(), case(ReferralStage.acknowledged)  # the bureau acknowledged by API, told by other means
    request = uow.asked(r, "report", "education_bureau", "reported")
    await referrals.message_undeliverable(uow, failed(request, channel=Channel.webhook, permanent=False))
    [row] = uow.referrals.undelivered_rows.values()
    assert (row["stage"], row["cause"]) == ("reported", "retries_exhausted")
    assert [step for _, step, _ in uow.referrals.timeline] == ["undeliverable"] and uow.emitted == []
