"""Per-consumer throughput on a pre-filled registry.events stream: Shouhu's
reporting and visits consumers (real processes) beside a raw redis-py +
asyncpg batch consumer reading the same entries with its own group."""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass
from datetime import date

import asyncpg
from redis.asyncio import Redis

from bench.config import BenchConfig
from bench.infra import count_rows, db_name, plain, truncate
from bench.measure import cpu_seconds, poll, service_process
from services.reporting.domain.places import LEVELS
from shared.contracts.registry_v1 import REGISTRY_EVENTS
from shared.messaging import dlq_name
from shared.outbox import DATA_FIELD
from shared.settings import Settings
from tests.infra import free_port

# What each consumer keeps of a child, and the tables a run starts from empty.
STORE = {"reporting": "child_facts", "visits": "children"}
TABLES = {
    "reporting": ("child_facts", "place_figures", "visit_records", "child_visits", "helper_months", "monthly_figures",
                  "inbox", "aggregate_positions"),
    # referrals (and with them, CASCADE, their timeline, requests, disclosures...): a round after the first
    # would otherwise reopen the same children's 无户籍 cases, refused by the one-open-case index.
    "visits": ("children", "child_contacts", "pairings", "referrals", "timers", "inbox", "aggregate_positions", "outbox"),
}


@dataclass
class Run:
    rate: float  # events applied and acknowledged per second
    busy: float  # share of one core the consumer process used meanwhile
    events: int  # events it got through before the stream was drained or the time was up
    rows: dict[str, int]  # rows in each table of the consumer's database afterwards: the work it did


async def prefill(redis: Redis, stream: str, payloads: list[bytes]) -> list[bytes]:
    """XADD every payload as the outbox relay would; returns the entry ids in order."""
    ids: list[bytes] = []
    for i in range(0, len(payloads), 2000):
        async with redis.pipeline(transaction=False) as pipe:
            for p in payloads[i : i + 2000]:
                pipe.xadd(stream, {DATA_FIELD: p})
            ids += await pipe.execute()
    return ids


async def _group(redis: Redis, stream: str, group: str) -> dict:
    for g in await redis.xinfo_groups(stream):
        if g["name"].decode() == group:
            return g
    raise LookupError(group)


async def shouhu(service: str, settings: Settings, redis: Redis, ids: list[bytes], seconds: float,
                 events: str = REGISTRY_EVENTS, store: str | None = None) -> Run:
    """Events/s of ``python -m services.<service>`` on the pre-filled entries ``ids`` of the stream ``events``,
    each leaving a row in ``store`` (the service's store of children by default).

    The group is created at the end of the stream before the service starts, so
    startup costs nothing; once /health answers, XGROUP SETID rewinds it to 0 and
    the clock starts at the first delivery. It stops when every entry is
    acknowledged (pending 0, last delivered = last entry), or after ``seconds``
    (a slow consumer must not hold the whole bench), counting the entries
    acknowledged by then; the store must hold a row for each."""
    stream, store = settings.stream(events), store or STORE[service]
    url = settings.database_url(service)
    position = {entry_id: i + 1 for i, entry_id in enumerate(ids)}
    await truncate(url, *TABLES[service])
    await redis.xgroup_create(stream, service, id="$")
    proc = service_process(service, settings, free_port()).start()
    try:
        await proc.ready(timeout=60)
        await redis.xgroup_setid(stream, service, "0")
        acked, t_acked = 0, 0.0

        async def delivered() -> bool:
            return (await _group(redis, stream, service))["last-delivered-id"] != b"0-0"

        async def drained_or_late() -> bool:
            nonlocal acked, t_acked
            g = await _group(redis, stream, service)
            now = position.get(g["last-delivered-id"], 0) - g["pending"]
            if now > acked:
                # Acknowledgements come a batch at a time: the rate is taken at the last one,
                # so a slow consumer's figure does not depend on where the time limit falls.
                acked, t_acked = now, time.perf_counter()
            return acked == len(ids) or time.perf_counter() - t_first > seconds

        cpu0 = cpu_seconds(proc.proc.pid)
        t_first = await poll(delivered, timeout=30, what=f"{service}'s first delivery")
        t_end = await poll(drained_or_late, timeout=seconds + 30, what=f"{service} to drain")
        cpu = cpu_seconds(proc.proc.pid) - cpu0
        if not acked:
            raise RuntimeError(f"{service} acknowledged nothing in {seconds:.0f} s; log: {proc.log_path}")
        if proc.proc.poll() is not None:
            raise RuntimeError(f"{service} exited; log: {proc.log_path}")
    finally:
        proc.stop()
    # Rows commit before their XACK: at least one per acknowledged event (a batch may have
    # committed and not yet been acknowledged when the time was up).
    rows = await count_rows(url, store)
    if rows < acked or (acked == len(ids) and rows != acked):
        raise RuntimeError(f"{service}: {rows} rows in {store} for {acked} acknowledged events")
    if await redis.xlen(dlq_name(stream)):
        raise RuntimeError(f"{service}: entries went to {dlq_name(stream)}")
    return Run(acked / (t_acked - t_first), cpu / (t_end - t_first), acked, await table_rows(url))


async def table_rows(url: str) -> dict[str, int]:
    """Rows per non-empty table (alembic's own aside)."""
    conn = await asyncpg.connect(plain(url))
    try:
        tables = await conn.fetch(
            "SELECT quote_ident(tablename) FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
        )
        counts = {t: await conn.fetchval(f"SELECT count(*) FROM {t}") for (t,) in tables}
    finally:
        await conn.close()
    return {t: n for t, n in sorted(counts.items()) if n}


# --- the raw baseline ---------------------------------------------------------------

_INBOX = """
INSERT INTO inbox (consumer, event_id) SELECT $1, unnest($2::uuid[])
ON CONFLICT DO NOTHING RETURNING event_id
"""
_REPORTING_FACTS = """
INSERT INTO child_facts (child_id, village_code, gender, left_behind_type, hukou_status, risk_categories)
VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING
"""
_REPORTING_COUNTS = """
INSERT INTO place_figures (place, figure, value) SELECT p, 'children', n FROM unnest($1::text[], $2::int[]) AS u(p, n)
ON CONFLICT (place, figure) DO UPDATE SET value = place_figures.value + excluded.value
"""
# A batch of visit records: the records, and each child's, helper's and place's counts added up per batch.
_RECORDS = """
INSERT INTO visit_records (record_id, child_id, helper_id, kind, visited_on, region_code)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::date[], $6::text[]) ON CONFLICT DO NOTHING
"""
_CHILD_CONTACTS = """
INSERT INTO child_visits (child_id, contacts, last_contact_on) SELECT * FROM unnest($1::uuid[], $2::int[], $3::date[])
ON CONFLICT (child_id) DO UPDATE SET contacts = child_visits.contacts + excluded.contacts,
  last_contact_on = greatest(child_visits.last_contact_on, excluded.last_contact_on)
"""
_HELPER_MONTHS = """
INSERT INTO helper_months (helper_id, month, contacts) SELECT * FROM unnest($1::uuid[], $2::date[], $3::int[])
ON CONFLICT (helper_id, month) DO UPDATE SET contacts = helper_months.contacts + excluded.contacts
"""
_MONTHLY = """
INSERT INTO monthly_figures (place, month, figure, value) SELECT * FROM unnest($1::text[], $2::date[], $3::text[], $4::int[])
ON CONFLICT (place, month, figure) DO UPDATE SET value = monthly_figures.value + excluded.value
"""
_VISITS_CHILDREN = """
INSERT INTO children (child_id, village_code, school_id, class_name, left_behind_type)
VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING
"""


async def _apply_reporting(conn: asyncpg.Connection, events: list[dict]) -> None:
    rows, counts = [], Counter()
    for e in events:
        d = e["data"]
        rows.append((d["child_id"], d["village_code"], d["gender"], d["left_behind_type"], d["hukou_status"],
                     d["risk_categories"]))
        counts.update(d["village_code"][:n] for n in LEVELS)
    await conn.executemany(_REPORTING_FACTS, rows)
    await conn.execute(_REPORTING_COUNTS, list(counts), list(counts.values()))


async def _apply_visits(conn: asyncpg.Connection, events: list[dict]) -> None:
    rows = [(d["child_id"], d["village_code"], d["school_id"], d["class_name"], d["left_behind_type"])
            for d in (e["data"] for e in events)]
    await conn.executemany(_VISITS_CHILDREN, rows)


async def _apply_records(conn: asyncpg.Connection, events: list[dict]) -> None:
    records = [(e["data"], e["region_code"]) for e in events]
    await conn.execute(_RECORDS, *zip(*[(d["record_id"], d["child_id"], d["helper_id"], d["kind"],
                                         date.fromisoformat(d["visited_on"]), region) for d, region in records]))
    children, helpers, places = Counter(), Counter(), Counter()
    last: dict[str, date] = {}
    for d, region in records:
        day = date.fromisoformat(d["visited_on"])
        children[d["child_id"]] += 1
        last[d["child_id"]] = max(day, last.get(d["child_id"], day))
        helpers[d["helper_id"], day.replace(day=1)] += 1
        places.update((p, day.replace(day=1), f) for p in (region[:n] for n in LEVELS if n <= len(region))
                      for f in ("visits", f"visits:{d['kind']}"))
    # In key order, as the service does, so concurrent batches lock alike.
    keys = sorted(children)
    await conn.execute(_CHILD_CONTACTS, keys, [children[k] for k in keys], [last[k] for k in keys])
    keys = sorted(helpers)
    await conn.execute(_HELPER_MONTHS, [h for h, _ in keys], [m for _, m in keys], [helpers[k] for k in keys])
    keys = sorted(places)
    await conn.execute(_MONTHLY, *zip(*keys), [places[k] for k in keys])


# Per service and event type, what the raw consumer stores.
APPLY = {
    ("reporting", "registry.child.registered"): _apply_reporting,
    ("visits", "registry.child.registered"): _apply_visits,
    ("reporting", "visits.record.created"): _apply_records,
}


async def raw(service: str, cfg: BenchConfig, redis: Redis, stream: str, n: int,
              event_type: str = "registry.child.registered", store: str | None = None) -> Run:
    """XREADGROUP (same batch size) -> one transaction per batch: inbox rows (the
    new ones returned), the same store rows as the service -> XACK. No envelope
    validation, no per-aggregate ordering, no claimer or DLQ: the raw limit."""
    url = plain(cfg.database_url(db_name(service, raw=True)))
    await truncate(url, *TABLES[service])
    group, apply, store = f"raw-{service}", APPLY[service, event_type], store or STORE[service]
    await redis.xgroup_create(stream, group, id="0")
    conn = await asyncpg.connect(url)
    try:
        done = 0
        cpu0, t0 = time.process_time(), time.perf_counter()
        while done < n:
            reply = await redis.xreadgroup(group, "raw-1", {stream: ">"}, count=cfg.batch_size, block=200)
            if not reply:
                continue
            entries = reply[0][1]
            events = [json.loads(fields[DATA_FIELD.encode()]) for _, fields in entries]
            async with conn.transaction():
                new = {str(i) for (i,) in await conn.fetch(_INBOX, group, [e["event_id"] for e in events])}
                await apply(conn, [e for e in events if e["event_id"] in new and e["type"] == event_type])
            await redis.xack(stream, group, *(i for i, _ in entries))
            done += len(entries)
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    finally:
        await conn.close()
    g = await _group(redis, stream, group)
    if g["pending"] != 0 or await count_rows(url, store) != n:
        raise RuntimeError(f"raw {service}: pending {g['pending']}, store rows differ from {n}")
    return Run(n / elapsed, cpu / elapsed, n, await table_rows(url))
