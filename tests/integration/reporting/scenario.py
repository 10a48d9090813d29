"""A small county scripted through the real registry and visits APIs, and its figures computed
directly from those services' own databases (what reporting's figures must equal)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, timedelta

import asyncpg
from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.reporting.adapters.orm import inbox, positions
from services.reporting.domain.figures import Period, quarter
from shared.auth import Role
from shared.clock import today_local
from shared.db import alembic_config, make_engine, make_sessionmaker
from shared.messaging import ReliableConsumer, Subscription
from shared.uow import SqlUnitOfWork
from tests.conftest import scalar
from tests.support import child_payload, token, wait_until


@asynccontextmanager
async def fresh_reporting(infra, prefix: str = "shouhu_reporting") -> AsyncIterator[tuple[str, AsyncEngine]]:
    """A reporting database of its own, migrated (its URL and an engine), dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(infra.pg_url.replace("+asyncpg", ""))
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = infra.database_url(name)
    engine = make_engine(url, pool_size=2)
    try:
        await asyncio.to_thread(command.upgrade, alembic_config("reporting", url), "heads")
        yield url, engine
    finally:
        await engine.dispose()
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


async def rows_of(engine: AsyncEngine, tables: dict[str, str]) -> dict[str, list[tuple]]:
    """Every row of each table, in the order given for it."""
    async with engine.connect() as conn:
        return {t: [tuple(r) for r in await conn.execute(text(f"SELECT * FROM {t} ORDER BY {order}"))]
                for t, order in tables.items()}


async def batched_and_single(settings, redis, infra, sub: Subscription, batches: list[list], tables: dict[str, str],
                             *, waiting: list[bytes], look=None) -> tuple[dict, dict, object]:
    """The same entries given to reporting in two fresh databases, as ``batches`` and one entry per transaction:
    the rows of ``tables`` in each (all of it delivered again afterwards must change nothing), the entries that
    waited for a predecessor (``waiting``, on both sides) and what ``look`` finds in the batched database."""
    entries = [e for batch in batches for e in batch]
    results, looked = [], None
    async with fresh_reporting(infra, "shouhu_batch") as (_, at_once), fresh_reporting(infra, "shouhu_batch") as (_, one_by_one):
        for engine, given in ((at_once, batches), (one_by_one, [[e] for e in entries])):
            sessions = make_sessionmaker(engine)
            consumer = ReliableConsumer(service="reporting", settings=settings, redis=redis,
                                        uow_factory=lambda s=sessions: SqlUnitOfWork(s), inbox=inbox, positions=positions)
            waited = []
            for batch in given:
                outcome = await consumer.process(sub, batch)
                assert not outcome.failed
                waited += outcome.waiting
            assert waited == waiting
            results.append(await rows_of(engine, tables))
            await consumer.process(sub, entries)  # all of it again: nothing changes
            assert await rows_of(engine, tables) == results[-1]
        if look is not None:
            looked = await look(at_once)
    return results[0], results[1], looked


def this_quarter(today: date) -> Period:
    return quarter(f"{today.year}Q{(today.month - 1) // 3 + 1}")


async def run_scenario(registry, visits, settings, county: str) -> dict:
    """Six children in two townships; an agreement expiring soon and one not; a transfer, a closure,
    a dropout returned after 20 days and one still out; an absence; a helper's visits; an activity."""
    auth = token(settings, Role.county_office, county)
    today = today_local()
    v1, v2, v3 = f"{county}001001", f"{county}001002", f"{county}002001"
    grandparent = {"name": "奶奶", "relationship": "grandparent", "capacity": "limited", "phone": "13900139000"}
    bodies = [
        dict(village_code=v1, school_id="s-A", risk_categories=["orphan"]),
        dict(village_code=v1, school_id="s-A", father={"name": "父亲", "status": "unknown"},
             guardian={**grandparent, "relationship": "relative"}),
        dict(village_code=v2, school_id=None, class_name=None),
        dict(village_code=v2, school_id="s-B", guardian=None, risk_categories=["no_guardian", "dibao_family"]),
        dict(village_code=v3, school_id="s-B"),
        dict(village_code=v3, school_id="s-B", left_behind_type="one_out_other_incapable"),
    ]
    ids = []
    for n, body in enumerate(bodies):
        r = await registry.post("/api/v1/children", json=child_payload(n, **body), headers=auth)
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    c0, c1, c2, c3, c4, c5 = ids

    async def act(method: str, path: str, body: dict | None = None, client=registry, ok=(200, 201, 204)) -> dict | None:
        r = await client.request(method, path, json=body, headers=auth)
        assert r.status_code in ok, (path, r.text)
        return r.json() if r.content else None

    child = "/api/v1/children/{}".format
    await act("POST", f"{child(c0)}/agreements", {"signed_on": today.isoformat(), "valid_until": (today + timedelta(days=20)).isoformat()})
    await act("POST", f"{child(c4)}/agreements", {"signed_on": today.isoformat(), "valid_until": (today + timedelta(days=200)).isoformat()})
    await act("POST", f"{child(c1)}/transfer", {"to_village_code": v3, "to_school_id": "s-B", "effective_on": today.isoformat()})
    await act("POST", f"{child(c5)}/close", {"reason": "moved_away", "closed_on": today.isoformat()})
    out_on = today - timedelta(days=20)
    await act("POST", f"{child(c4)}/absences", {"from_date": (today - timedelta(days=25)).isoformat(),
              "to_date": (today - timedelta(days=21)).isoformat(), "school_days": 3, "excused": False})
    await act("PUT", f"{child(c4)}/enrolment", {"status": "dropped_out", "effective_on": out_on.isoformat()})
    await act("POST", f"{child(c4)}/school-return", {"returned_on": today.isoformat()})
    await act("PUT", f"{child(c0)}/enrolment", {"status": "dropped_out", "effective_on": today.isoformat()})

    # Visits: the children reach visits through the registry's events first.
    async def in_visits() -> bool:
        r = await visits.get(f"/api/v1/children/{c4}/compliance", headers=auth)
        return r.status_code == 200

    await wait_until(in_visits, what="the children in visits")
    helper = await act("POST", "/api/v1/helpers", {"name": "王爱心", "role": "caring_mother", "organisation": "妇联",
                                                   "region_code": county}, client=visits)
    await act("POST", "/api/v1/pairings", {"helper_ids": [helper["id"]], "child_ids": [c0, c4],
                                           "started_on": (today - timedelta(days=5)).isoformat()}, client=visits)
    for child_id, kind, ago in ((c0, "home_visit", 0), (c4, "talk", 3), (c4, "phone", 1)):
        await act("POST", "/api/v1/records", {"helper_id": helper["id"], "child_id": child_id, "kind": kind,
                                              "visited_on": (today - timedelta(days=ago)).isoformat()}, client=visits)
    await act("POST", "/api/v1/activities", {"kind": "festival", "held_on": today.isoformat(), "place": "留守儿童之家",
                                             "organiser": "妇联", "region_code": v1, "child_ids": [c0, c2], "guardians": 2},
              client=visits)
    return {"ids": ids, "helper": helper["id"], "dropouts": [(out_on, today), (today, None)]}


async def direct_figures(engines, county: str, today: date, period: Period, script: dict) -> dict:
    """The figures reporting must show, computed from the registry's and visits' databases (and, for
    dropouts, whose history the registry does not keep, from the script)."""
    reg, vis = engines["registry"], engines["visits"]
    like = f"{county}%"
    open_ = "archive_status = 'open' AND village_code LIKE :like"

    async def grouped(sql: str, engine=reg, **params) -> dict:
        from sqlalchemy import text

        async with engine.connect() as conn:
            return {k: v for k, v in (await conn.execute(text(sql), {"like": like, **params})).all()}

    def q(sql: str, engine=reg, **params):
        return scalar(engine, sql, like=like, **params)

    open_ids = [str(i) for i in (await grouped(f"SELECT id, 1 FROM children WHERE {open_}"))]
    contacted = await grouped("SELECT DISTINCT child_id::text, 1 FROM visit_records WHERE visited_on > :since",
                              vis, since=today - timedelta(days=30))
    paired = await grouped("SELECT DISTINCT child_id::text, 1 FROM pairings WHERE ended_on IS NULL", vis)
    quarter_ = dict(start=period.start, end=period.end)
    returned = [(back - out).days for out, back in script["dropouts"] if back and period.start <= back <= period.end]
    complete = ("guardian->>'relationship' IS NOT NULL AND school_id IS NOT NULL "
                "AND coalesce(father->>'status', 'unknown') <> 'unknown' AND coalesce(mother->>'status', 'unknown') <> 'unknown'")
    total = await q(f"SELECT count(*) FROM children WHERE {open_}")
    return {
        "children": {
            "total": total,
            "by_type": await grouped(f"SELECT left_behind_type, count(*) FROM children WHERE {open_} GROUP BY 1 ORDER BY 1"),
            "by_guardian": await grouped(f"SELECT coalesce(guardian->>'relationship', 'none'), count(*) FROM children "
                                         f"WHERE {open_} GROUP BY 1 ORDER BY 1"),
            "by_risk": await grouped(f"SELECT r, count(*) FROM children, unnest(risk_categories) r WHERE {open_} GROUP BY 1 ORDER BY 1"),
        },
        "archives": {"complete": await q(f"SELECT count(*) FROM children WHERE {open_} AND {complete}")},
        "guardianship": {
            "agreements_in_force": await q(f"SELECT count(*) FROM agreements a JOIN children c ON c.id = a.child_id "
                                           f"WHERE a.status = 'in_force' AND c.{open_}"),
            "expiring_30_days": await q(f"SELECT count(*) FROM agreements a JOIN children c ON c.id = a.child_id "
                                        f"WHERE a.status = 'in_force' AND c.{open_} AND valid_until BETWEEN :t AND :t30",
                                        t=today, t30=today + timedelta(days=30)),
            "signed": await q("SELECT count(*) FROM agreements a JOIN children c ON c.id = a.child_id "
                              "WHERE c.village_code LIKE :like AND signed_on BETWEEN :start AND :end", **quarter_),
            "unguarded_now": await q(f"SELECT count(*) FROM children WHERE {open_} AND unguarded_cause IS NOT NULL"),
            "unguarded_since": await q(f"SELECT min(unguarded_since) FROM children WHERE {open_}"),
        },
        "absences": {
            "reported": await q("SELECT count(*) FROM absences a JOIN children c ON c.id = a.child_id "
                                "WHERE c.village_code LIKE :like AND from_date BETWEEN :start AND :end", **quarter_),
            "school_days": int(await q("SELECT coalesce(sum(school_days), 0) FROM absences a JOIN children c ON c.id = a.child_id "
                                   "WHERE c.village_code LIKE :like AND from_date BETWEEN :start AND :end", **quarter_)),
        },
        "dropouts": {
            "registered": sum(period.start <= out <= period.end for out, _ in script["dropouts"]),
            "returned": len(returned),
            "still_out": await q(f"SELECT count(*) FROM children WHERE {open_} AND enrolment_status = 'dropped_out'"),
            "median_days_to_return": sorted(returned)[len(returned) // 2] if returned else None,
        },
        "visits": {
            "records": await q("SELECT count(*) FROM visit_records WHERE village_code LIKE :like "
                               "AND visited_on BETWEEN :start AND :end", vis, **quarter_),
            "by_kind": await grouped("SELECT kind, count(*) FROM visit_records WHERE village_code LIKE :like "
                                     "AND visited_on BETWEEN :start AND :end GROUP BY 1 ORDER BY 1", vis, **quarter_),
            "paired_children": sum(i in paired for i in open_ids),
            "no_contact_30_days": sum(i not in contacted for i in open_ids),
        },
        "activities": {
            "person_times": int(await q("SELECT coalesce(sum(a.guardians + (SELECT count(*) FROM activity_children ac "
                                    "WHERE ac.activity_id = a.id)), 0) FROM activities a WHERE region_code LIKE :like "
                                    "AND held_on BETWEEN :start AND :end", vis, **quarter_)),
        },
        "townships": await grouped(f"SELECT left(village_code, 9), count(*) FROM children WHERE {open_} GROUP BY 1"),
    }


def comparable(figures: dict, places: list[dict], expected: dict) -> dict:
    """Reporting's figures cut to the keys of ``expected``."""
    got = {section: {k: figures[section][k] for k in keys} for section, keys in expected.items() if section != "townships"}
    got["townships"] = {p["place"]: p["children"] for p in places if p["kind"] == "division"}
    return got
