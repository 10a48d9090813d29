"""Referral policies (转介政策) and the rules of a case, pure.

A policy is data (defaults/referral_policies.toml, overridden per county): what opens a case,
the agencies that receive it (report_to) and hear of it (inform), its deadlines, the escalation
chain and the facts the receivers may see. The dropout policy (劝返复学) adds a persuasion stage
run by the school and the child's helpers before the written report (书面报告).
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field, fields
from datetime import date, datetime, timedelta
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from services.visits.domain.errors import Refusal
from services.visits.domain.workdays import Calendar, working_days_after
from shared.contracts.notifications_v1 import AgencyKind, Channel, MessageKind, Urgency
from shared.contracts.referrals_v1 import MessagePurpose, ReferralPolicyCode, ReferralStage, UndeliveredCause
from shared.contracts.visits_v1 import ConcernKind

DEFAULTS = Path(__file__).resolve().parent.parent / "defaults" / "referral_policies.toml"


@dataclass(frozen=True)
class ReferralPolicy:
    code: ReferralPolicyCode
    name_zh: str
    name_en: str
    report_to: tuple[AgencyKind, ...]
    inform: tuple[AgencyKind, ...]
    message_kind: MessageKind
    urgency: Urgency
    outcome_days: int
    escalate_after_working_days: int
    disclose: tuple[str, ...]
    ack_working_days: int | None = None
    ack_minutes: float | None = None
    concern: ConcernKind | None = None  # a visit's concern of this kind opens a case
    consecutive_school_days: int | None = None
    school_days_in_month: int | None = None
    persuasion_days: int | None = None
    persuasion_refusals: int | None = None

    @property
    def persuades(self) -> bool:
        return self.persuasion_days is not None

    def ack_due(self, start: datetime, calendar: Calendar) -> datetime:
        if self.ack_minutes is not None:
            return start + timedelta(minutes=self.ack_minutes)
        return working_days_after(start, self.ack_working_days or 0, calendar)

    def outcome_due(self, start: datetime) -> datetime:
        return start + timedelta(days=self.outcome_days)

    def persuasion_due(self, start: datetime) -> datetime:
        return start + timedelta(days=self.persuasion_days or 0)

    def escalation_due(self, missed: datetime, calendar: Calendar) -> datetime:
        """When a missed deadline, reminded, goes to the leading-group office."""
        if self.escalate_after_working_days <= 0:
            return missed
        return working_days_after(missed, self.escalate_after_working_days, calendar)

    def disclosed(self, facts: dict[str, Any]) -> dict[str, Any]:
        """The facts the receiving agency may see (最小必要披露), and nothing else."""
        return {k: v for k, v in facts.items() if k in self.disclose}


_TUPLES = {"report_to": AgencyKind, "inform": AgencyKind, "disclose": str}
_ENUMS = {"message_kind": MessageKind, "urgency": Urgency, "concern": ConcernKind}
_KNOWN = {f.name for f in fields(ReferralPolicy)} - {"code"}


def policy_from(code: str, values: dict[str, Any]) -> ReferralPolicy:
    """A policy from data; a wrong key or value is refused naming it (Chinese and English)."""
    unknown = set(values) - _KNOWN
    if unknown:
        raise Refusal("policy_unknown_key", f"不认识的政策项：{', '.join(sorted(unknown))}",
                      f"unknown policy keys: {', '.join(sorted(unknown))}", "settings")
    try:
        kwargs = {k: tuple(_TUPLES[k](x) for x in v) if k in _TUPLES else _ENUMS[k](v) if k in _ENUMS and v is not None else v
                  for k, v in values.items()}
        policy = ReferralPolicy(code=ReferralPolicyCode(code), **kwargs)
    except (ValueError, TypeError) as exc:
        raise Refusal("policy_invalid", f"转介政策 {code} 的取值无效：{exc}", f"policy {code} has an invalid value: {exc}", "settings") from None
    if (policy.ack_minutes is None) == (policy.ack_working_days is None):
        raise Refusal("policy_ack_deadline", "须且只能设置 ack_working_days 或 ack_minutes 之一",
                      "set exactly one of ack_working_days and ack_minutes", "settings")
    return policy


@cache
def _defaults_file() -> dict[str, dict[str, Any]]:
    """Read once per process: a case opened per 无户籍 child of a census read and parsed it each time."""
    return tomllib.loads(DEFAULTS.read_text(encoding="utf-8"))


def default_policies() -> dict[ReferralPolicyCode, dict[str, Any]]:
    return {ReferralPolicyCode(k): dict(v) for k, v in _defaults_file().items()}


def county_policies(overrides: dict[str, dict[str, Any]]) -> dict[ReferralPolicyCode, ReferralPolicy]:
    """The defaults, each with the county's own values over them (a fresh dict; the policies are frozen)."""
    return dict(_county_policies(json.dumps(overrides, sort_keys=True)))


@lru_cache(maxsize=256)
def _county_policies(overrides: str) -> dict[ReferralPolicyCode, ReferralPolicy]:
    """Built once per set of overrides: most counties keep the defaults, and a census batch with cases built
    all seven policies again for each of its transactions."""
    held = json.loads(overrides)
    return {code: policy_from(code, {**values, **held.get(code, {})}) for code, values in default_policies().items()}


def policy_for_concern(policies: dict[ReferralPolicyCode, ReferralPolicy], kind: ConcernKind) -> ReferralPolicy | None:
    return next((p for p in policies.values() if p.concern == kind), None)


# --- absences (缺课) -------------------------------------------------------------------------


@dataclass(frozen=True)
class Absence:
    from_date: date
    to_date: date
    school_days: int
    excused: bool


def dropout_threshold_reached(absences: list[Absence], policy: ReferralPolicy, calendar: Calendar) -> bool:
    """Unexcused absences reach the policy's threshold: so many consecutive school days (runs
    that no working day separates), or so many school days in the month of the latest one."""
    unexcused = sorted((a for a in absences if not a.excused), key=lambda a: a.from_date)
    if not unexcused:
        return False
    run, longest, previous = 0, 0, None
    for a in unexcused:
        joined = previous is not None and not any(
            calendar.is_working_day(previous.to_date + timedelta(days=d)) for d in range(1, (a.from_date - previous.to_date).days)
        )
        run = run + a.school_days if joined else a.school_days
        longest, previous = max(longest, run), a
    latest = unexcused[-1].from_date
    in_month = sum(a.school_days for a in unexcused if (a.from_date.year, a.from_date.month) == (latest.year, latest.month))
    return bool(
        (policy.consecutive_school_days and longest >= policy.consecutive_school_days)
        or (policy.school_days_in_month and in_month >= policy.school_days_in_month)
    )


# --- the case --------------------------------------------------------------------------------


@dataclass
class Referral:
    """转介案件: a child referred under a policy; ``due_at`` is the current stage's deadline."""

    id: Any
    child_id: Any
    policy: ReferralPolicyCode
    county: str
    village_code: str
    school_id: str | None
    stage: str
    trigger: str
    opened_on: date
    due_at: datetime | None
    refusals: int = 0
    outcome: str | None = None
    closed_on: date | None = None
    version: int = 0
    helper_ids: list = field(default_factory=list)

    @property
    def is_open(self) -> bool:
        return self.stage != "closed"


# --- messages that could not be delivered (未能送达) ------------------------------------------------

# The messages of the escalation chain: to agencies that must act, are informed, reminded, escalated to.
# The family's notice (``notice``) undelivered is written on the timeline only: the school and the
# helpers meet the family in persuasion anyway, and many guardians have no phone.
CHAIN = frozenset({MessagePurpose.report, MessagePurpose.inform, MessagePurpose.reminder, MessagePurpose.escalation})

# What the office sees, in both languages, for each cause.
CAUSE_TEXT: dict[UndeliveredCause, tuple[str, str]] = {
    UndeliveredCause.no_channel: ("本县未配置该部门的联系方式，消息未能发出", "no such agency is configured for the county: the message was not sent"),
    UndeliveredCause.refused: ("对方渠道拒收，消息未能送达", "the agency's channel refused the message"),
    UndeliveredCause.retries_exhausted: ("多次重试仍未送达", "the message could not be delivered after every retry"),
}


def failure_cause(channel: Channel | None, permanent: bool) -> UndeliveredCause:
    """Why a message could not be delivered at all: no channel to try (the recipient is not configured), a
    permanent refusal on the last channel, or its retries exhausted."""
    if channel is None:
        return UndeliveredCause.no_channel
    return UndeliveredCause.refused if permanent else UndeliveredCause.retries_exhausted


def message_stage(purpose: str, asked_for: str | None, current: str) -> str:
    """The stage a case's message was sent for: as the request recorded it, else (a request of an earlier
    version) the stage its purpose belongs to, else the case's stage now."""
    if asked_for:
        return asked_for
    if purpose in (MessagePurpose.report, MessagePurpose.inform):
        return ReferralStage.reported
    if purpose == MessagePurpose.notice:
        return ReferralStage.persuasion
    return current


def undelivered_outstanding(purpose: str, stage: str, case: "Referral") -> bool:
    """An undelivered message still holds up the case: a message of the escalation chain, the case open and
    still in the stage it was sent for (once the agency acknowledges, by any route, or the case closes, it
    no longer matters)."""
    return purpose in CHAIN and case.is_open and stage == case.stage
