"""Referrals in PostgreSQL: cases, their timelines, requests, disclosures, reports and attempts;
the absences the dropout threshold counts; counties' calendars and policy overrides."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from datetime import date
from typing import Any
from uuid import UUID

from sqlalchemy import Boolean, Date, Table, Text, and_, delete, exists, func, insert, null, select, text, union_all, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.visits.adapters.orm import children
from services.visits.adapters.referral_orm import (
    child_absences,
    county_calendar,
    referral_attempts,
    referral_disclosures,
    referral_policy_overrides,
    referral_reports,
    referral_requests,
    referral_timeline,
    referral_undelivered,
    referrals,
)
from services.visits.domain.referrals import CHAIN, Absence, Referral, undelivered_outstanding
from services.visits.domain.workdays import Calendar
from shared.db import among
from shared.security.rls import school_filter

_COLUMNS = [c.name for c in referrals.columns if c.name != "created_at"]


def _referral(row) -> Referral:
    return Referral(**{k: row[k] for k in _COLUMNS})


# A case held up by an undelivered message (domain.referrals.undelivered_outstanding, in SQL).
_outstanding = and_(referrals.c.stage != "closed", exists().where(
    referral_undelivered.c.referral_id == referrals.c.id, referral_undelivered.c.stage == referrals.c.stage,
    referral_undelivered.c.purpose.in_(sorted(CHAIN)),
))


# What a transaction appends (new cases, timeline lines, requests, disclosures), written at ``flush`` in one
# statement: an INSERT per table, each from one JSON array of its rows (jsonb_populate_recordset: any number
# of rows, array and JSON columns too, one statement prepared once). The foreign keys of the lines to their
# case are checked at the statement's end, when the case is in. Four statements a census batch with cases,
# one round trip each, were the most of visits' consumer after the plumbing's (issue 10).
_APPENDED: dict[Table, tuple[str, ...]] = {
    referrals: tuple(_COLUMNS),
    referral_timeline: ("referral_id", "step", "actor", "detail"),
    referral_requests: ("request_id", "referral_id", "agency", "purpose", "stage"),
    referral_disclosures: ("referral_id", "agency", "fields", "purpose"),
}
_WRITE_APPENDED = text("WITH " + ", ".join(
    f"{t.name}_in AS (INSERT INTO {t.name} ({', '.join(cols)}) SELECT {', '.join(cols)} "
    f"FROM jsonb_populate_recordset(NULL::{t.name}, CAST(CAST(:{t.name} AS text) AS jsonb)))"
    for t, cols in _APPENDED.items()
) + " SELECT 1")


# The policy overrides and calendars of some counties, in one statement (built once).
_COUNTIES = union_all(
    select(referral_policy_overrides.c.county, referral_policy_overrides.c.policy, referral_policy_overrides.c.settings,
           null().cast(Date), null().cast(Boolean)).where(among(referral_policy_overrides.c.county, "counties")),
    select(county_calendar.c.county, null().cast(Text), null().cast(JSONB), county_calendar.c.day, county_calendar.c.working)
    .where(among(county_calendar.c.county, "counties")),
)


def _json(rows: list[dict[str, Any]]) -> str:
    # Ids, dates and times as their text forms, which PostgreSQL reads back into the columns' types.
    return json.dumps(rows, default=str, ensure_ascii=False)


class ReferralRepository:
    """New cases, timeline lines, requests and disclosures are only appended: they are held and written
    together, in one statement (``_WRITE_APPENDED``) for a run of cases, before anything reads or changes
    cases and before the commit (``flush``). A county's policies and calendar are read once per transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self._appended: dict[Table, list[dict[str, Any]]] = {}
        self._counties: dict[str, tuple[dict[str, dict], Calendar]] = {}  # policy overrides and calendar

    def _append(self, table: Table, row: dict[str, Any]) -> None:
        self._appended.setdefault(table, []).append(row)

    async def flush(self) -> None:
        """Write the rows appended so far, in one statement, each table's in the order they came."""
        if not self._appended:
            return
        appended, self._appended = self._appended, {}
        await self.session.execute(_WRITE_APPENDED, {t.name: _json(appended.get(t, [])) for t in _APPENDED})

    async def add_many(self, cases: list[Referral]) -> None:
        """New cases (a run's), each as it now stands: written at ``flush``, before the rows that refer to them."""
        for r in cases:
            self._append(referrals, {k: getattr(r, k) for k in _COLUMNS})

    async def save(self, r: Referral) -> None:
        await self.flush()
        await self.session.execute(update(referrals).where(referrals.c.id == r.id).values({k: getattr(r, k) for k in _COLUMNS if k != "id"}))

    async def get(self, referral_id: UUID, *, for_update: bool = False) -> Referral | None:
        await self.flush()
        stmt = select(referrals).where(referrals.c.id == referral_id)
        row = (await self.session.execute(stmt.with_for_update() if for_update else stmt)).mappings().first()
        return _referral(row) if row else None

    async def open_of_child(self, child_id: UUID, policy: str | None = None) -> list[Referral]:
        """The child's open cases (of one policy), locked: a trigger or a closing event changes them."""
        await self.flush()
        stmt = select(referrals).where(referrals.c.child_id == child_id, referrals.c.stage != "closed")
        if policy:
            stmt = stmt.where(referrals.c.policy == policy)
        return [_referral(r) for r in (await self.session.execute(stmt.order_by(referrals.c.id).with_for_update())).mappings()]

    async def open_of_children(self, child_ids: list[UUID]) -> list[Referral]:
        """The open cases of these children (every policy), locked, in one statement."""
        await self.flush()
        stmt = select(referrals).where(among(referrals.c.child_id, "child_ids"), referrals.c.stage != "closed")
        rows = await self.session.execute(stmt.order_by(referrals.c.id).with_for_update(), {"child_ids": child_ids})
        return [_referral(r) for r in rows.mappings()]

    async def list(self, *, region: str, stage: str | None, policy: str | None, limit: int, offset: int,
                   undelivered: bool | None = None) -> tuple[list[Referral], int]:
        await self.flush()
        # A school user's cases: its pupils' (the child's school, as commands.school_reaches and RLS).
        mine = school_filter(children.c.school_id)
        where = [referrals.c.village_code.startswith(region, autoescape=True),
                 *([referrals.c.child_id.in_(select(children.c.child_id).where(*mine))] if mine else [])]
        if stage:
            where.append(referrals.c.stage == stage)
        if policy:
            where.append(referrals.c.policy == policy)
        if undelivered is not None:
            where.append(_outstanding if undelivered else ~_outstanding)
        total = await self.session.scalar(select(func.count()).select_from(referrals).where(*where))
        rows = (await self.session.execute(
            select(referrals).where(*where).order_by(referrals.c.opened_on.desc(), referrals.c.id).limit(limit).offset(offset)
        )).mappings()
        return [_referral(r) for r in rows], total

    # --- the timeline, requests, disclosures, the report, attempts ---

    async def log(self, referral_id: UUID, step: str, actor: str, **detail: Any) -> None:
        self._append(referral_timeline, {"referral_id": referral_id, "step": step, "actor": actor, "detail": detail})

    async def timeline(self, referral_id: UUID) -> list[dict]:
        await self.flush()
        t = referral_timeline
        rows = await self.session.execute(select(t.c.at, t.c.step, t.c.actor, t.c.detail).where(t.c.referral_id == referral_id).order_by(t.c.id))
        return [dict(r) for r in rows.mappings()]

    async def add_request(self, request_id: UUID, referral_id: UUID, agency: str | None, purpose: str, stage: str) -> None:
        self._append(referral_requests, {"request_id": request_id, "referral_id": referral_id, "agency": agency,
                                         "purpose": purpose, "stage": stage})

    async def request(self, request_id: UUID) -> dict | None:
        await self.flush()
        row = (await self.session.execute(select(referral_requests).where(referral_requests.c.request_id == request_id))).mappings().first()
        return dict(row) if row else None

    # --- messages that could not be delivered ---

    async def add_undelivered(self, values: dict[str, Any]) -> bool:
        """A delivery that failed for good, kept once: False when it is already (a redelivered event)."""
        await self.flush()
        stmt = pg_insert(referral_undelivered).values(**values).on_conflict_do_nothing().returning(referral_undelivered.c.delivery_id)
        return (await self.session.execute(stmt)).first() is not None

    async def undelivered(self, cases: list[Referral]) -> dict[UUID, list[dict]]:
        """The outstanding undelivered messages of these cases (none: no key), oldest first, in one statement:
        of the escalation chain, for the stage each case is in (closed cases have none)."""
        open_ = {r.id: r for r in cases if r.is_open}
        if not open_:
            return {}
        u = referral_undelivered
        rows = await self.session.execute(
            select(u.c.referral_id, u.c.stage, u.c.purpose, u.c.agency, u.c.cause, u.c.channel, u.c.reason, u.c.at,
                   u.c.request_id)
            .where(among(u.c.referral_id, "ids"), u.c.purpose.in_(sorted(CHAIN))).order_by(u.c.at, u.c.delivery_id),
            {"ids": list(open_)},
        )
        out: dict[UUID, list[dict]] = defaultdict(list)
        for row in rows.mappings():
            if undelivered_outstanding(row["purpose"], row["stage"], open_[row["referral_id"]]):
                out[row["referral_id"]].append({k: v for k, v in row.items() if k != "referral_id"})
        return out

    async def disclose(self, referral_id: UUID, agency: str, fields: list[str], purpose: str) -> None:
        self._append(referral_disclosures, {"referral_id": referral_id, "agency": agency, "fields": fields, "purpose": purpose})

    async def disclosed_to(self, referral_id: UUID, kind: str, purposes: tuple[str, ...]) -> bool:
        """The case went out to agencies of ``kind`` for one of ``purposes`` (report, inform, escalation)."""
        await self.flush()
        d = referral_disclosures
        return bool(await self.session.scalar(select(func.count()).select_from(d).where(
            d.c.referral_id == referral_id, d.c.agency == kind, d.c.purpose.in_(purposes))))

    async def disclosures(self, referral_id: UUID) -> list[dict]:
        await self.flush()
        d = referral_disclosures
        rows = await self.session.execute(select(d.c.agency, d.c.fields, d.c.purpose, d.c.at).where(d.c.referral_id == referral_id).order_by(d.c.id))
        return [dict(r) for r in rows.mappings()]

    async def keep_report(self, referral_id: UUID, html: str) -> None:
        await self.flush()
        stmt = pg_insert(referral_reports).values(referral_id=referral_id, html=html)
        await self.session.execute(stmt.on_conflict_do_update(index_elements=["referral_id"], set_={"html": html}))

    async def report(self, referral_id: UUID) -> str | None:
        return await self.session.scalar(select(referral_reports.c.html).where(referral_reports.c.referral_id == referral_id))

    async def add_attempt(self, values: dict[str, Any]) -> None:
        await self.flush()
        await self.session.execute(insert(referral_attempts).values(**values))

    async def attempts(self, referral_id: UUID) -> list[dict]:
        a = referral_attempts
        rows = await self.session.execute(select(a.c.record_id, a.c.visited_on, a.c.outcome, a.c.cause, a.c.guardian_view).where(a.c.referral_id == referral_id).order_by(a.c.visited_on, a.c.recorded_at))
        return [dict(r) for r in rows.mappings()]

    # --- absences ---

    async def add_absence(self, values: dict[str, Any]) -> None:
        await self.session.execute(pg_insert(child_absences).values(**values).on_conflict_do_nothing())

    async def absences(self, child_id: UUID) -> list[Absence]:
        return (await self.absences_of([child_id])).get(child_id, [])

    async def absences_of(self, child_ids: list[UUID]) -> dict[UUID, list[Absence]]:
        """Each child's absences (none: no key), in one statement."""
        a = child_absences
        rows = await self.session.execute(
            select(a.c.child_id, a.c.from_date, a.c.to_date, a.c.school_days, a.c.excused)
            .where(among(a.c.child_id, "child_ids")), {"child_ids": child_ids},
        )
        out: dict[UUID, list[Absence]] = defaultdict(list)
        for child_id, *values in rows.all():
            out[child_id].append(Absence(*values))
        return out

    # --- a county's calendar and policies ---

    async def load_counties(self, counties: Iterable[str]) -> None:
        """The policy overrides and calendars of these counties (a run's children's), read in one statement,
        for the rest of the transaction."""
        wanted = sorted({k for k in counties if k not in self._counties})
        if not wanted:
            return
        rows = await self.session.execute(_COUNTIES, {"counties": wanted})
        held: dict[str, dict[str, dict]] = {k: {} for k in wanted}
        days: dict[str, tuple[set[date], set[date]]] = {k: (set(), set()) for k in wanted}
        for county, policy, settings, day, working in rows.all():
            if policy is None:
                days[county][working].add(day)
            else:
                held[county][policy] = settings
        self._counties |= {k: (held[k], Calendar(frozenset(days[k][0]), frozenset(days[k][1]))) for k in wanted}

    async def calendar(self, county: str) -> Calendar:
        await self.load_counties([county])
        return self._counties[county][1]

    async def set_calendar(self, county: str, days: dict[date, bool], *, since: date, until: date) -> None:
        """The county's holidays and working weekend days between ``since`` and ``until``, replaced."""
        c = county_calendar
        self._counties.pop(county, None)
        await self.session.execute(delete(c).where(c.c.county == county, c.c.day.between(since, until)))
        if days:
            await self.session.execute(insert(c), [{"county": county, "day": d, "working": w} for d, w in days.items()])

    async def policy_overrides(self, county: str) -> dict[str, dict]:
        await self.load_counties([county])
        return dict(self._counties[county][0])

    async def set_policy_override(self, county: str, policy: str, settings: dict) -> None:
        self._counties.pop(county, None)
        stmt = pg_insert(referral_policy_overrides).values(county=county, policy=policy, settings=settings)
        await self.session.execute(stmt.on_conflict_do_update(index_elements=["county", "policy"], set_={"settings": settings}))
