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


OPEN = (Status.queued, Status.held)
# Guardians, parents and helpers are people at home: no SMS at night.
QUIET_ROLES = {RecipientRole.guardian, RecipientRole.parents, RecipientRole.user}


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
