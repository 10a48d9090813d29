"""The agency gateway (部门对接), version 1: what an outside agency reads and writes.

Each agency (an education bureau, a civil-affairs office, a police bureau... of
one county) has a code, e.g. ``edu-410523``, and two Redis streams:

- ``to-agency.<code>``, which it reads (its Redis user may read nothing else):
  ``notifications.agency.message`` (a report or referral to act on) and
  ``notifications.agency.answer_rejected`` (one of its answers was refused,
  with the reason);
- ``from-agency.<code>``, where it answers (its Redis user may write nothing
  else): ``agency.message.acknowledged`` (收到回执) and
  ``agency.message.answered`` (办理结果).

Every entry has one field, ``__data__``: the event envelope as JSON
(``shared/contracts/envelope.py``). An agency's answer sets ``producer`` to its
code, ``aggregate_id`` to the ``message_id`` it answers, ``aggregate_version``
to 1, 2, 3... for its successive answers to that message (an older one that
arrives after a newer one is ignored), a fresh ``event_id`` per answer (a
repeated one is ignored), and ``region_code`` to the message's.

The same message reaches an agency without a stream as a signed webhook: the
JSON of ``AgencyMessage`` in the body (see
``services/notifications/adapters/signing.py`` to verify it). Such an agency
answers over HTTP with an agency token: ``POST /api/v1/agency/acknowledgements``
(``MessageAcknowledged``) and ``POST /api/v1/agency/answers`` (``MessageAnswered``).
"""

from __future__ import annotations

import copy
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts.envelope import EventType
from shared.contracts.notifications_v1 import MessageKind, Urgency

CODE_PATTERN = r"^[a-z][a-z0-9-]{1,40}$"
# The streams as documented; ``for_agency`` names one agency's.
TO_AGENCY = "to-agency.{agency_code}"
FROM_AGENCY = "from-agency.{agency_code}"


def to_agency(code: str) -> str:
    return TO_AGENCY.format(agency_code=code)


def from_agency(code: str) -> str:
    return FROM_AGENCY.format(agency_code=code)


class AgencyMessage(BaseModel):
    """notifications.agency.message: a report or referral for the agency to act on."""

    message_id: UUID = Field(description="answer with this id; also the webhook's X-Shouhu-Delivery")
    request_id: UUID
    kind: MessageKind
    urgency: Urgency
    agency_code: str
    region_code: str = Field(description="division code of the child's place")
    child_id: UUID | None = Field(None, description="pseudonymous id of the child, stable across messages")
    subject: str
    text: str = Field(description="the message, Chinese first, then English")
    data: dict[str, Any] = Field(default_factory=dict, description="the facts the text was written from")
    sent_at: datetime


class AnswerRejected(BaseModel):
    """notifications.agency.answer_rejected: an answer on from-agency was refused."""

    rejected_event_id: UUID | None = Field(description="event_id of the refused answer, when it had one")
    reason_zh: str
    reason_en: str


class OutcomeCode(StrEnum):
    accepted = "accepted"  # 已受理
    in_progress = "in_progress"  # 办理中
    resolved = "resolved"  # 已办结
    returned_to_school = "returned_to_school"  # 已返校
    transferred = "transferred"  # 已转学
    exempt = "exempt"  # 免学/缓学
    declined = "declined"  # 不予受理 (with a note)


class MessageAcknowledged(BaseModel):
    """agency.message.acknowledged: the agency received the message (收到)."""

    model_config = ConfigDict(extra="forbid")

    message_id: UUID
    received_at: datetime
    reference: str | None = Field(None, max_length=100, description="the agency's own case number")


class MessageAnswered(BaseModel):
    """agency.message.answered: what the agency did (办理结果). Implies acknowledged."""

    model_config = ConfigDict(extra="forbid")

    message_id: UUID
    outcome: OutcomeCode
    decided_at: datetime
    reference: str | None = Field(None, max_length=100)
    note: str | None = Field(None, max_length=500, description="no names or ID numbers")


# Sent by notifications; ``stream`` is the documented pattern, ``for_agency`` routes one.
AGENCY_MESSAGE = EventType("notifications.agency.message", 1, AgencyMessage, TO_AGENCY)
ANSWER_REJECTED = EventType("notifications.agency.answer_rejected", 1, AnswerRejected, TO_AGENCY)

# Written by agencies. Deliberately not EventTypes: notifications validates them
# itself, so that a malformed answer can be told why instead of vanishing.
ANSWER_MODELS: dict[str, type[BaseModel]] = {
    "agency.message.acknowledged": MessageAcknowledged,
    "agency.message.answered": MessageAnswered,
}


def for_agency(event_type: EventType, code: str) -> EventType:
    """``event_type`` routed to the agency's own stream."""
    routed = copy.copy(event_type)
    routed.stream = event_type.stream.format(agency_code=code)
    return routed
