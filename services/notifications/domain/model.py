"""Delivery rules (pure, no I/O): quiet hours, back-off, falling back to the next channel."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta, tzinfo
from enum import StrEnum

from pydantic import BaseModel, Field

from shared.contracts.notifications_v1 import Channel, RecipientRole, Urgency


class Status(StrEnum):
    queued = "queued"  # an attempt is scheduled
    held = "held"  # quiet hours: the next attempt is in the morning
    delivered = "delivered"  # accepted by the SMTP server, the SMS provider, the webhook; on the agency stream; in the inbox
    read = "read"  # opened in the inbox
    acknowledged = "acknowledged"  # the agency took it in
    answered = "answered"  # the agency reported an outcome
    failed = "failed"  # every channel gave up
    suppressed = "suppressed"  # not sent, and never will be: the reason is in suppressed_reason (consent withdrawn)


OPEN = (Status.queued, Status.held)
# Guardians, parents and helpers are people at home: no SMS at night.
QUIET_ROLES = {RecipientRole.guardian, RecipientRole.parents, RecipientRole.user}
# The child's family, reached through the contact card (家长联系卡).
FAMILY_ROLES = {RecipientRole.guardian, RecipientRole.parents}
CONSENT_WITHDRAWN = (
    "consent_withdrawn: 监护人已撤回知情同意，不向家庭发送消息 / the guardian has withdrawn consent: no message to the family"
)


def suppressed_by_consent(role: RecipientRole, urgency: Urgency, consent: str | None) -> str | None:
    """Why a delivery may not go because of the guardian's consent (知情同意, registry.consent.changed);
    None: it goes.

    While consent is withdrawn, only what the law requires of the state organs goes on:

    * a message to the **family** (``guardian``, ``parents``: absence notices, reminders, anything sent to
      the phones on the contact card) rests on consent: it is **suppressed**, recorded with this reason,
      never sent later (not even when consent is given again: it would be stale);
    * except an **urgent** one (violence, a missing child, medical): telling the family to protect a
      child's life or health in an emergency needs no consent (PIPL art. 13(4));
    * messages to **agencies** (referral notices to the education bureau, police, civil affairs, health,
      the township: their duties of protection) and to **users** (the class teacher, the village
      supervisor, the offices, working the statutory cases) go as ever; volunteer helpers get no
      reminders for the child since visits stops holding the child to their rules.

    Decided at each attempt, so a message queued or held for the morning before the withdrawal is
    suppressed too, and one asked after consent was given again goes."""
    if consent == "withdrawn" and role in FAMILY_ROLES and urgency is not Urgency.urgent:
        return CONSENT_WITHDRAWN
    return None


class RetryPolicy(BaseModel):
    """Attempts on one channel before falling back to the next; delays double from ``first_delay_s``."""

    max_attempts: int = Field(ge=1)
    first_delay_s: float = Field(gt=0)
    max_delay_s: float = 3600

    def delay(self, failed_attempts: int) -> timedelta:
        return timedelta(seconds=min(self.max_delay_s, self.first_delay_s * 2 ** (failed_attempts - 1)))


@dataclass(frozen=True)
class QuietHours:
    start: time
    end: time
    tz: tzinfo

    def release_at(self, now: datetime, *, channel: Channel, role: RecipientRole, urgency: Urgency) -> datetime | None:
        """When a message that may not go now may go (the end of the quiet hours); None: now."""
        if channel is not Channel.sms or role not in QUIET_ROLES or urgency is Urgency.urgent:
            return None
        local = now.astimezone(self.tz)
        t = local.time()
        quiet = (self.start <= t or t < self.end) if self.start > self.end else (self.start <= t < self.end)
        if not quiet:
            return None
        morning = local.replace(hour=self.end.hour, minute=self.end.minute, second=0, microsecond=0)
        if morning <= local:
            morning += timedelta(days=1)
        return morning


@dataclass(frozen=True)
class NextStep:
    """After a failed attempt: retry the same channel after ``delay``, or move to ``channel_index``
    (None: nothing left, the delivery failed)."""

    retry_after: timedelta | None = None
    channel_index: int | None = None


def after_failure(
    *, failed_attempts: int, permanent: bool, policy: RetryPolicy, channel_index: int, channels: list[Channel]
) -> NextStep:
    if not permanent and failed_attempts < policy.max_attempts:
        return NextStep(retry_after=policy.delay(failed_attempts))
    nxt = channel_index + 1
    return NextStep(channel_index=nxt if nxt < len(channels) else None)


def recipient_key(role: RecipientRole | str, ident: object) -> str:
    """The recipient part of the de-duplication key: ``guardian:<child>``, ``agency:<code>``..."""
    return f"{role}:{ident}"
