"""Guardianship (监护): who is responsible for a left-behind child, and when nobody is (无人监护).

A child has a valid guardian when a guardian with guardianship capacity is recorded and an
entrusted-guardianship agreement (委托监护责任确认书) with that guardian is in force. A child
is flagged 无人监护 when it loses that: the guardian removed, the agreement expired or
revoked, or registered with no guardian at all. The flag clears only when a guardian with a
signed agreement is in place again. A child registered with a guardian and no agreement yet
is not flagged (the agreement follows the registration), but once the flag is up, a guardian
alone does not lower it.
"""

from __future__ import annotations

from datetime import date

from services.registry.domain.model import Child
from services.registry.domain.rules import RuleViolation
from shared.contracts.registry_v1 import ParentStatus, UnguardedCause


def has_capable_guardian(child: Child) -> bool:
    return bool(child.guardian) and child.guardian.get("capacity") != "none"


def unguarded_cause(child: Child, *, agreement_in_force: bool, lapse: UnguardedCause | None = None) -> UnguardedCause | None:
    """Why ``child`` has no valid guardian now, or None. ``lapse`` is what just happened to
    its guardianship (the guardian removed, the agreement expired or revoked)."""
    if has_capable_guardian(child) and agreement_in_force:
        return None
    if child.unguarded_cause:
        return UnguardedCause(child.unguarded_cause)  # still flagged: the first cause stands
    if lapse:
        return lapse
    return None if has_capable_guardian(child) else UnguardedCause.no_guardian


def parents_returned(child: Child) -> bool:
    """Both parents are at home: the child is no longer left behind (its archive closes)."""
    return child.father.get("status") == ParentStatus.at_home and child.mother.get("status") == ParentStatus.at_home


def check_agreement_dates(signed_on: date, valid_until: date, today: date) -> None:
    if signed_on > today:
        raise RuleViolation("signed_on_future", "签订日期不能晚于今天", "signed_on is in the future").at("signed_on")
    if valid_until <= signed_on:
        raise RuleViolation("valid_until_order", "有效期至应晚于签订日期",
                            "valid_until must be after signed_on").at("valid_until")
