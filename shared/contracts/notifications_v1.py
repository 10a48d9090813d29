"""Notifications (通知), version 1: what other services ask for, and what they hear back.

``notifications.requests`` is read by notifications: a sender (the escalation
flow of visits, later) asks for a message of a kind to reach recipients chosen
by role or agency. The request carries no names or phones: notifications
knows them from its directory and puts a child's name only into messages whose
recipient needs it (the guardian, the agency that must act).

``notifications.requests.urgent`` carries the same event, for urgent requests
(violence, a missing child, medical) only: a stream of their own, so that one
is never read behind a batch of ordinary requests. A sender picks the stream
with ``message_requested(request)``; an urgent request on
``notifications.requests`` (a sender not yet moved) is still handled as urgent.

``notifications.events`` is written by notifications: a delivery failed on a
channel (and what it falls back to), an agency acknowledged a message, an
agency answered with an outcome. Aggregate: the delivery (``delivery_id``).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.contracts.envelope import EventType
from shared.errors import bilingual

NOTIFICATION_REQUESTS = "notifications.requests"
NOTIFICATION_URGENT_REQUESTS = "notifications.requests.urgent"
NOTIFICATION_EVENTS = "notifications.events"


class MessageKind(StrEnum):
    """One template per kind (services/notifications/defaults/templates.toml)."""

    dropout_report = "dropout_report"  # 劝返无效，书面报告教育局、乡镇政府
    violence_report = "violence_report"  # 受暴力侵害，报告公安
    medical_referral = "medical_referral"  # 疾病、伤害：医疗救助
    guardianship_referral = "guardianship_referral"  # 无人监护：民政落实委托监护
    hukou_referral = "hukou_referral"  # 无户籍：公安登记户籍
    hardship_referral = "hardship_referral"  # 困难家庭：低保、临时救助
    absence_notice = "absence_notice"  # 告知监护人：孩子缺课
    visit_reminder = "visit_reminder"  # 提醒帮扶人：走访到期


class Urgency(StrEnum):
    normal = "normal"
    urgent = "urgent"  # violence, missing child, medical: ignores quiet hours


class RecipientRole(StrEnum):
    guardian = "guardian"  # 监护人 of the child (from the registry's contact card)
    parents = "parents"  # 父母 of the child, each one with a phone
    user = "user"  # a user of the system (helper, teacher, supervisor): by user id
    agency = "agency"  # 部门: by agency kind, in the child's county


class AgencyKind(StrEnum):
    education_bureau = "education_bureau"  # 教育局
    civil_affairs = "civil_affairs"  # 民政局
    public_security = "public_security"  # 公安
    health = "health"  # 卫健
    township_government = "township_government"  # 乡镇人民政府
    leading_group_office = "leading_group_office"  # 领导小组办公室


class Channel(StrEnum):
    sms = "sms"
    email = "email"
    webhook = "webhook"
    agency_stream = "agency_stream"  # to-agency.<code>
    inbox = "inbox"  # 站内信


class RecipientSelector(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: RecipientRole
    user_id: str | None = Field(None, max_length=100, description="for role user")
    agency: AgencyKind | None = Field(None, description="for role agency")

    @model_validator(mode="after")
    def _complete(self) -> "RecipientSelector":
        if self.role is RecipientRole.user and not self.user_id:
            raise bilingual("user_id_missing", "收件人为用户时需填写 user_id", "role user needs a user_id")
        if self.role is RecipientRole.agency and self.agency is None:
            raise bilingual("agency_missing", "收件人为部门时需填写 agency", "role agency needs an agency kind")
        return self


class MessageRequested(BaseModel):
    """notifications.message.requested: send a message of ``kind`` to ``recipients``.

    ``request_id`` is the idempotency key: the same request, however often it is
    delivered, produces each (recipient, kind) message once."""

    model_config = ConfigDict(extra="forbid")

    request_id: UUID
    kind: MessageKind
    urgency: Urgency = Urgency.normal
    child_id: UUID | None = Field(None, description="the child concerned; guardians and parents are found from it")
    region_code: str = Field(pattern=r"^\d{6,12}$", description="the child's place; agencies are those of its county")
    recipients: list[RecipientSelector] = Field(min_length=1, max_length=20)
    data: dict[str, str | int | float | bool | None] = Field(
        default_factory=dict, description="template data: facts, dates, case ids; no names, phones or ID numbers"
    )

    @model_validator(mode="after")
    def _child_for_family(self) -> "MessageRequested":
        if self.child_id is None and any(r.role in (RecipientRole.guardian, RecipientRole.parents) for r in self.recipients):
            raise bilingual("child_id_missing", "发给监护人或父母时需填写 child_id", "guardian or parents need a child_id")
        return self


class DeliveryFailed(BaseModel):
    """notifications.delivery.failed: a channel gave up on a message (permanent
    refusal or retries exhausted). ``next_channel`` is the fallback now tried;
    null means the message could not be delivered at all."""

    delivery_id: UUID
    request_id: UUID
    kind: MessageKind
    recipient_role: RecipientRole
    agency_code: str | None = None
    channel: Channel | None = Field(description="null when the recipient has no usable channel")
    permanent: bool
    reason: str = Field(description="technical reason, without personal data")
    next_channel: Channel | None = None


class DeliveryAcknowledged(BaseModel):
    """notifications.delivery.acknowledged: the agency took the message in (回执)."""

    delivery_id: UUID
    request_id: UUID
    kind: MessageKind
    agency_code: str
    acknowledged_at: datetime
    reference: str | None = Field(None, description="the agency's own case number")


class AgencyAnswered(BaseModel):
    """notifications.agency.answered: the agency reported an outcome (办理结果)."""

    delivery_id: UUID
    request_id: UUID
    kind: MessageKind
    agency_code: str
    outcome: str
    decided_at: datetime
    note: str | None = None
    details: dict[str, Any] = {}


# The same event type and version on the urgent stream (declared first: the registry, which parses envelopes
# by type and version, keeps MESSAGE_REQUESTED; both have the same model).
URGENT_MESSAGE_REQUESTED = EventType("notifications.message.requested", 1, MessageRequested, NOTIFICATION_URGENT_REQUESTS)
MESSAGE_REQUESTED = EventType("notifications.message.requested", 1, MessageRequested, NOTIFICATION_REQUESTS)
DELIVERY_FAILED = EventType("notifications.delivery.failed", 1, DeliveryFailed, NOTIFICATION_EVENTS)
DELIVERY_ACKNOWLEDGED = EventType("notifications.delivery.acknowledged", 1, DeliveryAcknowledged, NOTIFICATION_EVENTS)
AGENCY_ANSWERED = EventType("notifications.agency.answered", 1, AgencyAnswered, NOTIFICATION_EVENTS)


def message_requested(request: MessageRequested) -> EventType:
    """The event type a sender emits ``request`` with, which names its stream: an urgent request goes on
    ``notifications.requests.urgent``, any other on ``notifications.requests``."""
    return URGENT_MESSAGE_REQUESTED if request.urgency is Urgency.urgent else MESSAGE_REQUESTED
