"""Figures read from the rollups (统计口径 in domain.figures), for a place and a period.

Counts of children and of what happened come from the rollups (one row per place and figure or
month). Figures that depend on today's date (agreements expiring within 30 days, children without
contact for 30 days, how long unguarded) are read from the current facts of the place's children,
never from the history of events.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from uuid import UUID

from sqlalchemy import and_, func, literal, or_, select

from services.reporting.adapters.orm import (
    child_contacts, child_facts, child_population, helper_months, monthly_figures, pairings, place_figures,
)
from services.reporting.domain.figures import ChildState, Period, labels, median_from_counts, share
from services.reporting.domain.places import next_level

NO_CONTACT_DAYS = 30
EXPIRING_DAYS = 30
TREND = ("registered", "visits", "person_times", "missed_windows", "dropouts_registered", "dropouts_returned")


def _in(region: str):
    return child_facts.c.village_code.startswith(region, autoescape=True)


def _open(region: str):
    return and_(_in(region), child_facts.c.closed.is_(False))


# A child's contacts row and whether it has a pairing in force, each probed per child through an index:
# joined or as an EXISTS, a province's counts hashed every contacts row and pairing in the country instead.
_contact = (select(child_contacts.c.last_contact_on).where(child_contacts.c.child_id == child_facts.c.child_id)
            .limit(1).lateral("contact"))
_pairing = (select(literal(True).label("paired")).where(pairings.c.child_id == child_facts.c.child_id, pairings.c.active)
            .limit(1).lateral("pairing"))
_paired = _pairing.c.paired.is_(True)
_with_contact = child_facts.outerjoin(_contact, literal(True))
_children = _with_contact.outerjoin(_pairing, literal(True))  # the region's children for the figures of today


def _no_contact(today: date):
    """Read on a join with _contact."""
    last = _contact.c.last_contact_on
    return or_(last.is_(None), last <= today - timedelta(days=NO_CONTACT_DAYS))


def _expiring(today: date):
    return child_facts.c.agreement_until.between(today, today + timedelta(days=EXPIRING_DAYS))


def _split(values: dict[str, int], prefix: str) -> dict[str, int]:
    return {k.removeprefix(prefix): v for k, v in sorted(values.items()) if k.startswith(prefix) and v}


async def _now(session, place: str) -> dict[str, int]:
    rows = await session.execute(select(place_figures.c.figure, place_figures.c.value).where(place_figures.c.place == place))
    return dict(rows.all())


async def _months(session, place: str, months: list[date]) -> dict[str, int]:
    rows = await session.execute(
        select(monthly_figures.c.figure, func.sum(monthly_figures.c.value))
        .where(monthly_figures.c.place == place, monthly_figures.c.month.in_(months))
        .group_by(monthly_figures.c.figure)
    )
    return {f: int(v) for f, v in rows.all()}


async def current(uow, region: str, today: date) -> dict[str, int | str | None]:
    """Date-dependent figures of the region's open archives, in one pass (the same for any period)."""
    c = child_facts.c
    row = (await uow.session.execute(select(
        func.count().filter(_expiring(today)).label("expiring"),
        func.min(c.unguarded_since).label("unguarded_earliest"),
        func.count().filter(_no_contact(today)).label("no_contact"),
        func.count().filter(_paired).label("paired"),
        func.count().filter(and_(_paired, ~_no_contact(today))).label("paired_contacted"),
    ).select_from(_children).where(_open(region)))).one()
    return row._asdict()


async def figures(uow, region: str, period: Period, today: date, cur: dict | None = None) -> dict:
    """Every section of the quarterly report for ``region`` over ``period``, as of ``today`` (``cur``: the
    region's ``current`` figures when already read)."""
    s = uow.session
    now, done = await _now(s, region), await _months(s, region, period.months)
    cur = cur or await current(uow, region, today)
    population = await s.scalar(select(child_population.c.children).where(child_population.c.place == region))
    children = now.get("children", 0)
    rules = defaultdict(dict)
    for key, value in done.items():
        part, _, rule = key.partition(":")
        if part in ("missed", "missed_required", "missed_done") and rule:
            rules[rule][part.removeprefix("missed_") if part != "missed" else "windows"] = value
    earliest = cur["unguarded_earliest"]
    return {
        "region": region, "period": {"label": period.label, "start": period.start, "end": period.end}, "as_of": today,
        "children": {
            "total": children, "population": population, "share": share(children, population),
            "registered": done.get("registered", 0),
            "by_type": _split(now, "type:"), "by_guardian": _split(now, "guardian:"), "by_risk": _split(now, "risk:"),
            "by_gender": _split(now, "gender:"),
        },
        "archives": {"complete": now.get("complete", 0), "rate": share(now.get("complete", 0), children)},
        "guardianship": {
            "agreements_in_force": now.get("agreement", 0), "expiring_30_days": cur["expiring"],
            "signed": done.get("agreements_signed", 0), "renewed": done.get("agreements_renewed", 0),
            "expired": done.get("agreements_expired", 0), "revoked": done.get("agreements_revoked", 0),
            "unguarded_now": now.get("unguarded", 0), "unguarded_since": earliest,
            "unguarded_longest_days": (today - earliest).days if earliest else None,
            "unguarded_started": done.get("unguarded_started", 0), "unguarded_ended": done.get("unguarded_ended", 0),
        },
        "visits": {
            "records": done.get("visits", 0), "by_kind": _split(done, "visits:"),
            "missed_windows": done.get("missed_windows", 0), "missed_by_rule": dict(sorted(rules.items())),
            "paired_children": cur["paired"], "paired_contacted_30_days": cur["paired_contacted"],
            "compliance": share(cur["paired_contacted"], cur["paired"]),
            "no_contact_30_days": cur["no_contact"],
        },
        "activities": {
            "activities": done.get("activities", 0), "person_times": done.get("person_times", 0),
            "children_reached": done.get("activity_children", 0),
        },
        "concerns": {"raised": done.get("concerns", 0), "by_kind": _split(done, "concerns:")},
        "absences": {
            "reported": done.get("absences", 0), "school_days": done.get("absence_days", 0),
            "unexcused": done.get("unexcused_absences", 0),
        },
        "dropouts": {
            "registered": done.get("dropouts_registered", 0), "returned": done.get("dropouts_returned", 0),
            "still_out": now.get("out_of_school", 0),
            "median_days_to_return": median_from_counts({int(k): v for k, v in _split(done, "return_days:").items()}),
        },
        "referrals": {  # 转介与劝返: cases by policy and stage, deadlines kept and missed
            "opened": done.get("referrals_opened", 0), "opened_by_policy": _split(done, "referrals_opened:"),
            "open_now": _split(now, "referrals_open:"),
            "acknowledged": done.get("referrals_acknowledged", 0),
            "acknowledged_in_time": done.get("referrals_acknowledged_in_time", 0),
            "deadlines_missed": _split(done, "deadlines_missed:"),
            "closed": done.get("referrals_closed", 0), "closed_by_outcome": _split(done, "referrals_closed:"),
            "closed_without_missed_deadline": done.get("referrals_closed_in_time", 0),
            "mean_days_open": round(done.get("referral_days_open", 0) / done["referrals_closed"], 1) if done.get("referrals_closed") else None,
        },
    }


async def places(uow, region: str, today: date) -> list[dict]:
    """The places one level below ``region`` (and, under a county, its schools): children, archive
    rate and visit compliance, furthest behind first."""
    s = uow.session
    n = next_level(region)
    if n is None:
        return []
    schools = f"{region}.school." if len(region) == 6 else None
    wanted = or_(
        and_(func.length(place_figures.c.place) == n, place_figures.c.place.op("~")("^[0-9]+$")),
        place_figures.c.place.startswith(schools, autoescape=True) if schools else literal(False),
    )
    rows = await s.execute(
        select(place_figures.c.place, place_figures.c.figure, place_figures.c.value)
        .where(place_figures.c.place.startswith(region, autoescape=True), wanted,
               place_figures.c.figure.in_(("children", "complete", "unguarded", "out_of_school")))
    )
    by_place: dict[str, dict] = defaultdict(dict)
    for place, figure, value in rows.all():
        by_place[place][figure] = value
    code = func.substr(child_facts.c.village_code, 1, n)
    contact = await s.execute(
        select(code, func.count().filter(_paired), func.count().filter(and_(_paired, ~_no_contact(today))),
               func.count().filter(_no_contact(today)))
        .select_from(_children).where(_open(region)).group_by(code)
    )
    reached = {p: (paired, contacted, lapsed) for p, paired, contacted, lapsed in contact.all()}
    out = []
    for place, f in by_place.items():
        paired, contacted, lapsed = reached.get(place, (0, 0, 0))
        children = f.get("children", 0)
        if not children:
            continue
        out.append({
            "place": place, "kind": "school" if ".school." in place else "division", "children": children,
            "archive_rate": share(f.get("complete", 0), children), "unguarded": f.get("unguarded", 0),
            "out_of_school": f.get("out_of_school", 0), "paired_children": paired,
            "compliance": share(contacted, paired) if ".school." not in place else None,
            "no_contact_30_days": lapsed if ".school." not in place else None,
        })
    return sorted(out, key=lambda p: (p["kind"], p["compliance"] if p["compliance"] is not None else 2, p["place"]))


async def trend(uow, region: str, months: list[date]) -> dict[str, list[int]]:
    rows = await uow.session.execute(
        select(monthly_figures.c.month, monthly_figures.c.figure, monthly_figures.c.value)
        .where(monthly_figures.c.place == region, monthly_figures.c.month.in_(months), monthly_figures.c.figure.in_(TREND))
    )
    series = {f: [0] * len(months) for f in TREND}
    index = {m: i for i, m in enumerate(months)}
    for month, figure, value in rows.all():
        series[figure][index[month]] = value
    return {"months": [m.strftime("%Y-%m") for m in months], **series}


async def helpers(uow, helper_ids: list[UUID] | None, months: list[date]) -> list[dict]:
    """Per helper over the months: contacts made and windows missed (走访考核)."""
    q = (select(helper_months.c.helper_id, func.sum(helper_months.c.contacts), func.sum(helper_months.c.missed_windows))
         .where(helper_months.c.month.in_(months)).group_by(helper_months.c.helper_id).order_by(helper_months.c.helper_id))
    if helper_ids is not None:
        q = q.where(helper_months.c.helper_id.in_(helper_ids))
    return [{"helper_id": h, "contacts": int(c), "missed_windows": int(m)} for h, c, m in (await uow.session.execute(q)).all()]


# Figures whose children are listed by a test on the date, the rest by the child's labels.
_DATED = {"expiring_30_days": _expiring, "no_contact_30_days": _no_contact}


async def children_behind(uow, region: str, figure: str, today: date, limit: int, offset: int) -> dict:
    """The children (pseudonymous ids) behind a figure of a place: its drill-down (下钻)."""
    c = child_facts.c
    q = (select(c.child_id, *(c[k] for k in ChildState.__dataclass_fields__), _contact.c.last_contact_on)
         .select_from(_with_contact).where(_open(region)).order_by(c.child_id))
    if figure in _DATED:
        q = q.where(_DATED[figure](today))
    rows = (await uow.session.execute(q)).all()
    wanted = [r for r in rows if figure in _DATED or _matches(figure, r)]
    return {
        "region": region, "figure": figure, "total": len(wanted),
        "children": [{
            "child_id": r.child_id, "village_code": r.village_code, "school_id": r.school_id,
            "unguarded_since": r.unguarded_since, "agreement_until": r.agreement_until,
            "out_since": r.out_since, "last_contact_on": r.last_contact_on,
        } for r in wanted[offset:offset + limit]],
    }


def _matches(figure: str, row) -> bool:
    state = ChildState.of(**{k: getattr(row, k) for k in ChildState.__dataclass_fields__})
    got = labels(state)
    return figure in got or (figure == "incomplete" and "children" in got and "complete" not in got)
