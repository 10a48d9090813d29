"""Read side: compliance (应访/已访/逾期) per child and rule, worklists, overviews and scores."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from uuid import UUID

from services.visits.domain.compliance import (
    Status, WindowStatus, WindowTotals, recent, score, statuses_on, statuses_within, windows_within,
)
from services.visits.domain.consent import binding_spans, rests_on_consent
from services.visits.domain.errors import NotFound, Refusal
from services.visits.domain.model import ChildPlace, Helper
from services.visits.domain.windows import Term, Window, WindowKind, window_at_or_after
from services.visits.service_layer.commands import child_in, helper_in, visible
from services.visits.service_layer.schedule import county_setup

# How far back contacts are read for the running and previous windows (a year rule looks at last year).
_LOOKBACK = timedelta(days=2 * 366)


@dataclass
class ChildCompliance:
    child: ChildPlace
    statuses: list[WindowStatus]


async def _evaluate(uow, kids: list[ChildPlace], start: date, end: date, judge) -> list[ChildCompliance]:
    """Load what the pure rules need for ``kids`` (pairings, contacts, each county's rules and terms) and judge.
    A volunteer's pairing does not bind the child while the guardian's consent is withdrawn (domain/consent.py)."""
    ids = [k.child_id for k in kids]
    spans = await uow.pairings.spans(ids)
    contacts = await uow.records.contacts(ids, start, end)
    setups = {county: await county_setup(uow, county, end) for county in {k.county for k in kids}}
    out = []
    for kid in kids:
        versions, terms = setups[kid.county]
        out.append(ChildCompliance(kid, judge(versions, terms, binding_spans(spans.get(kid.child_id, []), kid.withdrawal),
                                              contacts.get(kid.child_id, []))))
    return out


async def child_compliance(uow, child_id: UUID, on: date, *, region: str, today: date) -> ChildCompliance:
    """Each rule's window containing ``on``: what is due, done, overdue."""
    async with uow:
        child = await child_in(uow, child_id, region)
        [result] = await _evaluate(
            uow, [child], on - timedelta(days=400), on + timedelta(days=400),
            lambda v, t, p, c: statuses_on(v, on, t, p, c, today),
        )
    return result


def groups(statuses: list[WindowStatus]) -> dict[str, dict[str, int]]:
    """Accounting of rule groups (e.g. 五个一): items required and items done."""
    out: dict[str, dict[str, int]] = {}
    for s in statuses:
        if s.rule.group:
            g = out.setdefault(s.rule.group, {"items": 0, "done": 0})
            g["items"] += 1
            g["done"] += s.status is Status.done
    return out


@dataclass
class WorkItem:
    child_id: UUID
    child_name: str | None
    status: WindowStatus


async def helper_worklist(uow, helper_id: UUID, *, region: str, account: str | None, today: date,
                          days: int) -> tuple[Helper, list[WorkItem]]:
    """A helper's due (window ending within ``days``) and overdue (last window short) contacts, soonest first."""
    async with uow:
        helper = await helper_in(uow, helper_id, region, account)
        kids = list((await uow.children.get_many(await uow.pairings.children_of(helper_id, today))).values())
        results = await _evaluate(uow, kids, today - _LOOKBACK, today, lambda v, t, p, c: recent(v, today, t, p, c))
        names = await uow.children.names([k.child_id for k in kids])
    horizon = today + timedelta(days=days)
    items = [
        WorkItem(r.child.child_id, names.get(r.child.child_id), s)
        for r in results for s in r.statuses
        if helper.role in s.rule.roles and helper.id in s.helper_ids
        and (s.status is Status.overdue or (s.status is Status.due and s.window.end <= horizon))
    ]
    items.sort(key=lambda i: (i.status.status is not Status.overdue, i.status.window.end, str(i.child_id)))
    return helper, items


@dataclass
class OverviewRow:
    child: ChildPlace
    child_name: str | None
    last_contact: date | None
    days_without_contact: int | None
    quiet: bool
    due: int
    done: int
    overdue: int


async def overview(uow, region: str, *, today: date, quiet_days: int, limit: int,
                   offset: int) -> tuple[list[OverviewRow], int]:
    """A village supervisor's or a township's overview: the children longest without any contact first."""
    async with uow:
        page, total = await uow.children.quietest(region, limit, offset)
        results = await _evaluate(uow, [c for c, _ in page], today - _LOOKBACK, today,
                                  lambda v, t, p, c: recent(v, today, t, p, c))
        names = await uow.children.names([c.child_id for c, _ in page])
    rows = []
    for (child, last), r in zip(page, results, strict=True):
        days = (today - last).days if last else None
        count = {s: sum(1 for x in r.statuses if x.status is s) for s in Status}
        rows.append(OverviewRow(child, names.get(child.child_id), last, days, days is None or days >= quiet_days,
                                count[Status.due], count[Status.done], count[Status.overdue]))
    return rows, total


def _calendar(period: WindowKind) -> None:
    if period is WindowKind.rolling:
        raise Refusal("period_rolling", "考核期应为自然月、季度、学期或年，不能是滚动周期",
                      "the period is a month, quarter, term or year, not a rolling window", "period")


def last_completed(period: WindowKind, today: date, terms: list[Term]) -> tuple[date, date]:
    """The last month, quarter, term or year that has ended before ``today``."""
    _calendar(period)
    if period is WindowKind.term:
        ended = [t for t in terms if t.end < today]
        return ended[-1].start, ended[-1].end
    running = window_at_or_after(period, today, terms)
    last = window_at_or_after(period, running.start - timedelta(days=1), terms)
    return last.start, last.end


@dataclass
class CountyCompliance:
    county: str
    period: Window
    totals: list[WindowTotals]


async def region_compliance(uow, region: str, period: WindowKind, on: date, *, today: date) -> list[CountyCompliance]:
    """考核汇总: for each county under ``region``, each calendar rule's windows within the period containing
    ``on`` (a month, a term...), with its children due, done and overdue, evaluated set-based in PostgreSQL.
    Counties judged by the same windows and rules (most keep the defaults) share one statement."""
    _calendar(period)
    async with uow:
        shared: dict[tuple, list[str]] = defaultdict(list)
        for county in await uow.compliance.counties(region):
            versions, terms = await county_setup(uow, county, on)
            window = window_at_or_after(period, on, terms)
            shared[window, tuple(windows_within(versions, window.start, window.end, terms))].append(county)
        out = []
        for (window, within), counties in shared.items():
            totals = await uow.compliance.window_totals(region, counties, list(within), today)
            out += [CountyCompliance(c, window, totals.get(c, [])) for c in counties]
    return sorted(out, key=lambda c: c.county)


@dataclass
class Score:
    start: date
    end: date
    score: float | None
    statuses: list[WindowStatus]


async def child_score(uow, child_id: UUID, period: WindowKind, *, region: str, today: date) -> Score:
    async with uow:
        child = await child_in(uow, child_id, region)
        _, terms = await county_setup(uow, child.county, today)
        start, end = last_completed(period, today, terms)
        [r] = await _evaluate(uow, [child], start, end, lambda v, t, p, c: statuses_within(v, start, end, t, p, c, today))
    return Score(start, end, score(r.statuses), r.statuses)


async def helper_score(uow, helper_id: UUID, period: WindowKind, *, region: str, account: str | None,
                       today: date) -> Score:
    """A helper's share: their own contacts against what their pairings required (each rule capped)."""
    async with uow:
        helper = await helper_in(uow, helper_id, region, account)
        _, terms = await county_setup(uow, helper.region_code[:6], today)
        start, end = last_completed(period, today, terms)
        kids = list((await uow.children.get_many(await uow.pairings.children_ever(helper_id, start, end))).values())
        results = await _evaluate(
            uow, kids, start, end, lambda v, t, p, c: statuses_within(v, start, end, t, p, c, today, helper_id)
        )
    statuses = [s for r in results for s in r.statuses]
    return Score(start, end, score(statuses), statuses)


@dataclass
class MyChildren:
    helper: Helper
    children: list[tuple[ChildPlace, str | None]]  # each paired child today, with its name


async def my_children(uow, account: str, *, region: str, today: date) -> MyChildren:
    """我的结对儿童: the helper registered for this login and the children paired with them today
    (what the field app opens on)."""
    async with uow:
        mine = [h for h in await uow.helpers.by_account(account) if visible(region, h.region_code)]
        if not mine:
            raise NotFound("account")
        helper = mine[0]
        kids = await uow.children.get_many(await uow.pairings.children_of(helper.id, today))
        if rests_on_consent(helper.role):  # a volunteer does not see a child whose guardian withdrew consent
            kids = {k: c for k, c in kids.items() if not (c.withdrawal and c.withdrawal.in_force)}
        names = await uow.children.names(list(kids))
    ordered = sorted(kids.values(), key=lambda k: (names.get(k.child_id) or "", str(k.child_id)))
    return MyChildren(helper, [(k, names.get(k.child_id)) for k in ordered])
