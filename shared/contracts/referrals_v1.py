"""Referrals and the 劝返复学 dropout flow (转介与劝返), version 1, on ``visits.events``.

The visits service owns each case: a referral of a child to an agency under a
county's referral policy, with deadlines that enforce themselves. Aggregate:
the referral (``referral_id``); versions 1, 2, 3... in the order of its
timeline. No names, phones or free text travel here: ids, codes, stages, dates.

Stages (``ReferralStage``): ``persuasion`` (the school and helpers try first:
dropouts only), ``reported`` (the agency has the report, its acknowledgement is
due), ``acknowledged`` (its outcome is due), ``closed``.

A message of the case to an agency that notifications could not deliver at all
(``notifications.delivery.failed`` with no fallback left: e.g. the county has no
such agency in notifications' directory) is ``visits.referral.message_undeliverable``:
the case waits on an agency that was never told, and its office must act.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from uuid import UUID

from pydantic import BaseModel, Field

from shared.contracts.envelope import EventType
from shared.contracts.notifications_v1 import AgencyKind, Channel
from shared.contracts.visits_v1 import VISITS_EVENTS


class ReferralPolicyCode(StrEnum):
    """转介政策 (services/visits/defaults/referral_policies.toml)"""

    dropout = "dropout"  # 失学辍学 → 劝返复学, education bureau
    unguarded = "unguarded"  # 无人监护 → civil affairs
    no_hukou = "no_hukou"  # 无户籍 → public security
    hardship = "hardship"  # 生活困难、低保、临时救助 → civil affairs
    medical = "medical"  # 疾病、伤害 → health
    violence = "violence"  # 暴力侵害 → public security, urgent
    psychological = "psychological"  # 心理困扰 → counselling (health)


class ReferralStage(StrEnum):
    persuasion = "persuasion"  # 学校劝返
    reported = "reported"  # 已报告, awaiting the agency's acknowledgement
    acknowledged = "acknowledged"  # 已受理, awaiting the outcome
    closed = "closed"


class PersuasionOutcome(StrEnum):
    """劝返走访结果"""

    returned = "returned"  # 已返校
    refused = "refused"  # 拒绝
    unreachable = "unreachable"  # 联系不上


class DropoutCause(StrEnum):
    """辍学原因"""

    study_difficulty = "study_difficulty"  # 学习困难
    family_hardship = "family_hardship"  # 家庭困难
    work = "work"  # 外出打工
    illness = "illness"  # 疾病
    other = "other"


class ReferralOutcome(StrEnum):
    """How a case closed (结案)"""

    returned = "returned"  # 已返校复学
    transferred = "transferred"  # 已转学
    exempted = "exempted"  # 免学/缓学
    suspended = "suspended"  # 休学
    legal_measures = "legal_measures"  # 已采取法律措施
    resolved = "resolved"  # 已办结 (the other policies)
    condition_cleared = "condition_cleared"  # the registry shows the closing condition (agreement signed, hukou registered)
    archive_closed = "archive_closed"  # the child's archive closed or merged


class MessagePurpose(StrEnum):
    """Why the case sent a message through notifications"""

    report = "report"  # 书面报告 / 转介: to an agency that must act
    inform = "inform"  # 通报: to an agency kept informed
    reminder = "reminder"  # 催办: a missed deadline, to the agency that must act
    escalation = "escalation"  # 报告领导小组办公室
    notice = "notice"  # 告知监护人: the family, as persuasion starts


class UndeliveredCause(StrEnum):
    """Why a message could not be delivered at all (from notifications.delivery.failed)"""

    no_channel = "no_channel"  # 未配置: nobody of that kind reachable for the place (not in notifications' directory)
    refused = "refused"  # 拒收: the last channel refused it for good (a bounced address, no address)
    retries_exhausted = "retries_exhausted"  # 重试用尽: the last channel kept failing


class EscalationStep(StrEnum):
    reminder = "reminder"  # 催办
    leading_group_office = "leading_group_office"  # 报告领导小组办公室


class ReferralOpened(BaseModel):
    """visits.referral.opened: a case (立案) under a policy, with its first deadline."""

    referral_id: UUID
    child_id: UUID
    policy: ReferralPolicyCode
    stage: ReferralStage
    trigger: str = Field(description="the event type that opened it, or 'manual'")
    school_id: str | None = None
    opened_on: date
    due_at: datetime | None = Field(description="deadline of the current stage")


class AttemptRecorded(BaseModel):
    """visits.referral.attempt_recorded: a persuasion visit (劝返走访) with its outcome."""

    referral_id: UUID
    child_id: UUID
    record_id: UUID
    visited_on: date
    outcome: PersuasionOutcome
    cause: DropoutCause | None = None


class StageChanged(BaseModel):
    """visits.referral.stage_changed: the case moved on (reported to the agency, acknowledged)."""

    referral_id: UUID
    child_id: UUID
    policy: ReferralPolicyCode
    previous: ReferralStage
    stage: ReferralStage
    agencies: list[str] = Field(default_factory=list, description="agency kinds the case was reported to")
    due_at: datetime | None = None
    in_time: bool | None = Field(None, description="for an acknowledgement: within the deadline it answered")


class DeadlineMissed(BaseModel):
    """visits.referral.deadline_missed: a stage's deadline passed; the step taken (催办, 上报)."""

    referral_id: UUID
    child_id: UUID
    policy: ReferralPolicyCode
    stage: ReferralStage
    deadline: datetime
    step: EscalationStep


class ReferralClosed(BaseModel):
    """visits.referral.closed: the case ended (结案)."""

    referral_id: UUID
    child_id: UUID
    policy: ReferralPolicyCode
    outcome: ReferralOutcome
    opened_on: date
    closed_on: date
    days_open: int = Field(ge=0)
    previous_stage: ReferralStage | None = Field(None, description="the stage it closed from")
    deadlines_missed: int = Field(0, ge=0, description="deadlines of the case that passed (催办)")


class MessageUndeliverable(BaseModel):
    """visits.referral.message_undeliverable: a message of the case to an agency (its report, 通报, reminder
    or escalation) could not be delivered on any channel. The case's deadline still runs; until the stage
    moves on (the agency acknowledges, e.g. by API once told by other means) the case shows it as
    undelivered. Not published for the family's notice, nor when the case has moved past that stage or
    closed by the time the failure is known (the case's timeline still says so)."""

    referral_id: UUID
    child_id: UUID
    policy: ReferralPolicyCode
    stage: ReferralStage = Field(description="the stage the message was sent for")
    purpose: MessagePurpose
    agency: AgencyKind | None = Field(None, description="the agency kind the message was for")
    request_id: UUID = Field(description="notifications.message.requested's request_id")
    delivery_id: UUID
    cause: UndeliveredCause
    channel: Channel | None = Field(None, description="the last channel tried; null when there was none")
    reason: str = Field(description="notifications' technical reason, without personal data")


REFERRAL_OPENED = EventType("visits.referral.opened", 1, ReferralOpened, VISITS_EVENTS)
ATTEMPT_RECORDED = EventType("visits.referral.attempt_recorded", 1, AttemptRecorded, VISITS_EVENTS)
STAGE_CHANGED = EventType("visits.referral.stage_changed", 1, StageChanged, VISITS_EVENTS)
DEADLINE_MISSED = EventType("visits.referral.deadline_missed", 1, DeadlineMissed, VISITS_EVENTS)
REFERRAL_CLOSED = EventType("visits.referral.closed", 1, ReferralClosed, VISITS_EVENTS)
MESSAGE_UNDELIVERABLE = EventType("visits.referral.message_undeliverable", 1, MessageUndeliverable, VISITS_EVENTS)

ALL = (REFERRAL_OPENED, ATTEMPT_RECORDED, STAGE_CHANGED, DEADLINE_MISSED, REFERRAL_CLOSED, MESSAGE_UNDELIVERABLE)
