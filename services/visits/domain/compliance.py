"""Compliance (考核): for a child, a rule and a window, what was due, what was done,
and whether the window is overdue. Pure functions over plain data."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from uuid import UUID

from services.visits.domain.rules import VisitRule, rule_in_force, rules_in_force
from services.visits.domain.windows import (
    Term, Window, next_window, previous_window, rolling_window, window_at_or_after, window_containing,
)
from shared.contracts.visits_v1 import ActivityKind, ContactKind, HelperRole, WindowKind

# A group activity is the contact a rule asks for where it fits (a festival spent together, a call with the parents).
ACTIVITY_CONTACT = {ActivityKind.festival: ContactKind.festival, ActivityKind.family_call: ContactKind.parent_contact}


class Status(StrEnum):
    done = "done"  # 已完成
    due = "due"  # 待完成 (window still running)
    overdue = "overdue"  # 逾期未完成


@dataclass(frozen=True)
class PairingSpan:
    helper_id: UUID
    role: HelperRole
    started_on: date
    ended_on: date | None  # the first day it is no longer in force

    def in_force(self, day: date) -> bool:
        return self.started_on <= day and (self.ended_on is None or day < self.ended_on)


@dataclass(frozen=True)
class Contact:
    on: date
    kind: ContactKind
    helper_id: UUID | None = None  # None: the child took part in a group activity
    role: HelperRole | None = None


@dataclass(frozen=True)
class WindowStatus:
    rule: VisitRule
    window: Window
    required: int
    done: int
    status: Status
    helper_ids: tuple[UUID, ...]  # the paired helpers the rule binds


@dataclass
class WindowTotals:
    """One rule's window over a region: children held to it by status, contacts required and done (capped)."""

    rule: VisitRule
    window: Window
    children: dict[Status, int] = field(default_factory=lambda: dict.fromkeys(Status, 0))
    required: int = 0
    done: int = 0


def bound_helpers(rule: VisitRule, pairings: list[PairingSpan], window: Window, today: date) -> tuple[UUID, ...]:
    """Helpers whose pairing holds the child to ``rule`` in ``window``: in force on its last day
    (or today, while the window runs)."""
    day = min(window.end, today)
    return tuple(sorted({p.helper_id for p in pairings if p.role in rule.roles and p.in_force(day)}))


def counts(rule: VisitRule, contact: Contact, helper_id: UUID | None = None) -> bool:
    """Whether ``contact`` counts for ``rule`` (and, for a helper's own score, was theirs)."""
    if contact.kind not in rule.kinds:
        return False
    if contact.helper_id is None:
        return True
    return contact.role in rule.roles and (helper_id is None or contact.helper_id == helper_id)


def evaluate(
    rule: VisitRule, window: Window, pairings: list[PairingSpan], contacts: list[Contact], today: date,
    helper_id: UUID | None = None,
) -> WindowStatus | None:
    """The status of one child under ``rule`` in ``window``; None when the rule does not bind the child then."""
    helpers = bound_helpers(rule, pairings, window, today)
    if not helpers or (helper_id is not None and helper_id not in helpers):
        return None
    done = sum(1 for c in contacts if window.contains(c.on) and counts(rule, c, helper_id))
    if done >= rule.count:
        status = Status.done
    else:
        status = Status.overdue if window.end < today else Status.due
    return WindowStatus(rule, window, rule.count, done, status, helpers)


def rolling_window_of(rule: VisitRule, pairings: list[PairingSpan], contacts: list[Contact], day: date) -> Window | None:
    """The rolling window running (or lapsed) on ``day``: the rule's days after the contact that keeps
    it (the ``count``-th last that counts, from when the rule began to bind the child), else after the
    day it began to bind (the earliest binding pairing, or the rule's own start). None when unbound."""
    bound = [p.started_on for p in pairings if p.role in rule.roles and p.in_force(day)]
    if not bound:
        return None
    begun = max(min(bound), rule.effective_from or date.min)
    seen = sorted(c.on for c in contacts if begun <= c.on <= day and counts(rule, c))
    return rolling_window(seen[-rule.count] if len(seen) >= rule.count else begun, rule.days)


def _rolling(rule: VisitRule, pairings: list[PairingSpan], contacts: list[Contact], day: date,
             today: date) -> WindowStatus | None:
    window = rolling_window_of(rule, pairings, contacts, day)
    return evaluate(rule, window, pairings, contacts, today) if window else None


def _judged(versions: list[VisitRule], code: str, window: Window, pairings: list[PairingSpan],
            contacts: list[Contact], today: date) -> WindowStatus | None:
    """A window is judged by the version of its rule in force when it began."""
    rule = rule_in_force(versions, code, window.start)
    if rule is None or rule.window is not window.kind:
        return None
    return evaluate(rule, window, pairings, contacts, today)


def statuses_on(versions: list[VisitRule], day: date, terms: list[Term], pairings: list[PairingSpan],
                contacts: list[Contact], today: date) -> list[WindowStatus]:
    """For each rule in force on ``day``, the window containing it (none in a school holiday)."""
    out = []
    for rule in rules_in_force(versions, day):
        if rule.window is WindowKind.rolling:
            if s := _rolling(rule, pairings, contacts, day, today):
                out.append(s)
            continue
        window = window_containing(rule.window, day, terms)
        if window and (s := _judged(versions, rule.code, window, pairings, contacts, today)):
            out.append(s)
    return out


def recent(versions: list[VisitRule], today: date, terms: list[Term], pairings: list[PairingSpan],
           contacts: list[Contact]) -> list[WindowStatus]:
    """For each rule: the window before the running one (where an overdue may stand) and the running one."""
    out = []
    for rule in rules_in_force(versions, today):
        if rule.window is WindowKind.rolling:  # its one window: running, or lapsed with nothing since
            if s := _rolling(rule, pairings, contacts, today, today):
                out.append(s)
            continue
        current = window_at_or_after(rule.window, today, terms)
        for window in (previous_window(current, terms), current if current.start <= today else None):
            if window and (s := _judged(versions, rule.code, window, pairings, contacts, today)):
                out.append(s)
    return out


def windows_within(versions: list[VisitRule], start: date, end: date, terms: list[Term]) -> list[tuple[VisitRule, Window]]:
    """Every window of every calendar rule lying wholly between ``start`` and ``end`` (a month's or a term's
    score), with the version it is judged by (in force when it began). Rolling rules have no windows fixed
    in a period: their lapses are overdue events, not a share."""
    out = []
    codes = {r.code: r for r in [*rules_in_force(versions, end), *rules_in_force(versions, start)]
             if r.window is not WindowKind.rolling}
    for code, rule in codes.items():
        window = window_at_or_after(rule.window, start, terms)
        while window.end <= end:
            judged_by = rule_in_force(versions, code, window.start)
            if window.start >= start and judged_by is not None and judged_by.window is window.kind:
                out.append((judged_by, window))
            window = next_window(window, terms)
    return out


def statuses_within(versions: list[VisitRule], start: date, end: date, terms: list[Term],
                    pairings: list[PairingSpan], contacts: list[Contact], today: date,
                    helper_id: UUID | None = None) -> list[WindowStatus]:
    """The child's status in each of ``windows_within`` the period (for ``helper_id``'s own share, if given)."""
    return [s for rule, window in windows_within(versions, start, end, terms)
            if (s := evaluate(rule, window, pairings, contacts, today, helper_id))]


def score(statuses: list[WindowStatus]) -> float | None:
    """Share of required contacts done (each rule capped at what it asks); None when nothing was required."""
    required = sum(s.required for s in statuses)
    return round(sum(min(s.done, s.required) for s in statuses) / required, 4) if required else None
