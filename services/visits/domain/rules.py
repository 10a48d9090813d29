"""Visit rules (走访规则) as data: who, what kind of contact, how many, in what window.

The defaults below come from the county documents (domain.md, "Contact and
visit rules"); a county overrides one by adding a version with the same code,
or adds its own code. A change takes effect from the rule's next window, so a
window is always judged by the numbers it started with.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date, timedelta

from services.visits.domain.errors import Refusal
from services.visits.domain.windows import Term, Window, window_at_or_after
from shared.contracts.visits_v1 import ContactKind as K
from shared.contracts.visits_v1 import HelperRole as R
from shared.contracts.visits_v1 import WindowKind as W

RULE_CODE = re.compile(r"^[a-z][a-z0-9_]{2,63}$")
FIVE_ONES = "五个一"
MAX_ROLLING_DAYS = 366


@dataclass(frozen=True)
class VisitRule:
    code: str
    name: str
    roles: tuple[R, ...]  # the child is held to the rule while paired with a helper of one of these roles
    kinds: tuple[K, ...]  # contacts of these kinds count
    count: int
    window: W
    group: str | None = None  # e.g. 五个一, for accounting the group as a whole
    active: bool = True
    effective_from: date | None = None  # None: a default, in force from the beginning
    version: int = 0  # 0: the default; a county's versions count from 1
    days: int | None = None  # the length of a rolling window (滚动周期), e.g. 30: "at least once in any 30 days"


_COMPANIONS = (R.caring_mother, R.proxy_parent, R.volunteer_tutor)

DEFAULT_RULES: tuple[VisitRule, ...] = (
    VisitRule("companion_monthly_visits", "爱心妈妈、爱心辅导员每月走访2次", (R.caring_mother, R.volunteer_tutor),
              (K.home_visit,), 2, W.month),
    VisitRule("class_teacher_monthly_talk", "班主任每月谈心1次", (R.class_teacher,), (K.talk,), 1, W.month),
    VisitRule("class_teacher_term_home_visits", "班主任期初、期中、期末家访", (R.class_teacher,), (K.home_visit,), 1,
              W.term_part),
    VisitRule("five_ones_home_visit", "五个一：一次家访", (R.volunteer_tutor, R.proxy_parent), (K.home_visit,), 1, W.term,
              FIVE_ONES),
    VisitRule("five_ones_talk", "五个一：一次谈心", (R.volunteer_tutor, R.proxy_parent), (K.talk,), 1, W.term, FIVE_ONES),
    VisitRule("five_ones_school_contact", "五个一：与班主任联系一次", (R.volunteer_tutor, R.proxy_parent),
              (K.school_contact,), 1, W.term, FIVE_ONES),
    VisitRule("five_ones_guardian_contact", "五个一：与监护人联系一次", (R.volunteer_tutor, R.proxy_parent),
              (K.guardian_contact,), 1, W.term, FIVE_ONES),
    VisitRule("five_ones_letter", "五个一：给孩子写一封信", (R.volunteer_tutor, R.proxy_parent), (K.letter,), 1, W.term,
              FIVE_ONES),
    VisitRule("monthly_parent_contact", "每月帮助儿童与父母通话或通信1次", _COMPANIONS, (K.parent_contact,), 1, W.month),
    VisitRule("monthly_guardian_contact", "每月与临时监护人联系1次", _COMPANIONS, (K.guardian_contact,), 1, W.month),
    VisitRule("caring_mother_monthly_contact", "爱心妈妈每月联系1次（电话、见面或书信）", (R.caring_mother,),
              (K.phone, K.home_visit, K.talk, K.letter), 1, W.month),
    VisitRule("caring_mother_quarterly_visit", "爱心妈妈每季度走访1次", (R.caring_mother,), (K.home_visit,), 1, W.quarter),
    VisitRule("caring_mother_yearly_festival", "爱心妈妈每年与孩子共度节日1次", (R.caring_mother,), (K.festival,), 1,
              W.year),
)
DEFAULTS_BY_CODE = {r.code: r for r in DEFAULT_RULES}


def rules_in_force(county_versions: list[VisitRule], on: date) -> list[VisitRule]:
    """The county's rules on ``on``: per code, its latest version in force, else the default."""
    chosen = dict(DEFAULTS_BY_CODE)
    for v in sorted(county_versions, key=lambda v: (v.effective_from, v.version)):
        if v.effective_from <= on:
            chosen[v.code] = v
    return [r for r in chosen.values() if r.active]


def rule_in_force(county_versions: list[VisitRule], code: str, on: date) -> VisitRule | None:
    return next((r for r in rules_in_force(county_versions, on) if r.code == code), None)


def current_version(county_versions: list[VisitRule], code: str) -> VisitRule | None:
    """The latest version written for ``code`` (in force or scheduled), else the default."""
    own = [v for v in county_versions if v.code == code]
    return max(own, key=lambda v: v.version) if own else DEFAULTS_BY_CODE.get(code)


def check_rule(rule: VisitRule) -> None:
    """A rolling rule says how many days its window lasts; a calendar rule says nothing of days."""
    if rule.window is W.rolling:
        if rule.days is None or not 1 <= rule.days <= MAX_ROLLING_DAYS:
            raise Refusal("rolling_days", f"滚动周期规则须填写天数 days（1至{MAX_ROLLING_DAYS}）",
                          f"a rolling rule needs days, from 1 to {MAX_ROLLING_DAYS}", "days")
    elif rule.days is not None:
        raise Refusal("days_without_rolling", "只有滚动周期（window=rolling）的规则可以填写天数 days",
                      "days applies only to a rolling window (window=rolling)", "days")


def new_version(county_versions: list[VisitRule], changed: VisitRule, today: date, terms: list[Term]) -> VisitRule:
    """The version to store for a change made on ``today``.

    A changed rule takes effect at the start of its next window (the running
    window keeps the number it started with); a new code, from the start of the
    running window. A rolling rule has no window common to all children: it
    changes, or begins, today.
    """
    before = current_version(county_versions, changed.code)
    if W.rolling in (changed.window, before and before.window):
        starts = today
    elif before is None:
        starts = window_at_or_after(changed.window, today, terms).start
    else:
        running: Window = window_at_or_after(before.window, today, terms)
        starts = running.end + timedelta(days=1) if running.contains(today) else running.start
    if before is not None and before.effective_from is not None and before.effective_from > starts:
        starts = before.effective_from  # a second change before the first took effect replaces it
    own_versions = [v.version for v in county_versions if v.code == changed.code]
    return replace(changed, effective_from=starts, version=max(own_versions, default=0) + 1)
