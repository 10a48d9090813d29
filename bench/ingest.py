"""Registry ingest: children/s through the API until every event is on Redis,
beside a raw asyncpg + redis-py writer doing the same writes without Shouhu."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import uuid
from datetime import UTC, date, datetime

import asyncpg
import httpx
from redis.asyncio import Redis

from bench.config import BenchConfig
from bench.data import Population
from bench.infra import db_name, plain, truncate
from bench.measure import cpu_seconds, poll, service_process
from services.registry.domain.model import name_key
from services.registry.domain.rules import mask_id_number
from shared.auth import Role, issue_token
from shared.contracts.registry_v1 import REGISTRY_CONTACTS, REGISTRY_EVENTS
from shared.outbox import DATA_FIELD
from shared.settings import Settings
from tests.infra import free_port

WARMUP = 100  # registrations before the first measured run: pools, prepared statements, compiled-SQL caches


async def _post_all(client: httpx.AsyncClient, bodies: list[dict], headers: dict, clients: int) -> None:
    queue = iter(bodies)  # shared by the workers: each takes the next body when it is free

    async def worker() -> None:
        for body in queue:
            r = await client.post("/api/v1/children", json=body, headers=headers)
            if r.status_code != 201:
                raise RuntimeError(f"registry answered {r.status_code}: {r.text[:500]}")

    await asyncio.gather(*(worker() for _ in range(clients)))


async def shouhu(cfg: BenchConfig, settings: Settings, runs: list[list[dict]], redis: Redis) -> tuple[list[float], list[str]]:
    """The registry as a real process; measured from the first request until the
    relay has put every event of the run on the namespaced streams (as many
    entries per stream as the run wrote to the registry's outbox)."""
    proc = service_process("registry", settings, free_port()).start()
    rates, notes = [], []
    url = settings.database_url("registry")
    try:
        await proc.ready(timeout=60)
        headers = {"Authorization": f"Bearer {issue_token(settings, role=Role.admin, subject='bench')}"}
        limits = httpx.Limits(max_connections=cfg.clients, max_keepalive_connections=cfg.clients)
        async with httpx.AsyncClient(base_url=proc.url, limits=limits, timeout=60) as client:
            warm = Population(seed=1)
            await _post_all(client, [warm.child() for _ in range(WARMUP)], headers, cfg.clients)
            for bodies in runs:
                await poll(lambda: _relay_idle(url), timeout=60, what="the relay to drain the previous run")
                await truncate(url, "children", "outbox")
                before = await _lengths(redis, settings.stream_namespace)
                cpu0, gen0 = cpu_seconds(proc.proc.pid), time.process_time()
                t0 = time.perf_counter()
                await _post_all(client, bodies, headers, cfg.clients)
                t_api = time.perf_counter()
                # Every response is back, so every outbox row of the run is committed.
                expected = await _outbox_streams(url)

                async def published() -> bool:
                    for stream, n in expected.items():
                        if await redis.xlen(stream) - before.get(stream, 0) < n:
                            return False
                    return True

                t_end = await poll(published, timeout=120, what="the registry's events on Redis")
                wall = t_end - t0
                rates.append(len(bodies) / wall)
                notes.append(
                    f"{sum(expected.values()) / len(bodies):.2f} entries per child; API {len(bodies) / (t_api - t0):.0f} "
                    f"children/s, last event on Redis {(t_end - t_api) * 1000:.0f} ms after the last response; CPU: "
                    f"registry process {100 * (cpu_seconds(proc.proc.pid) - cpu0) / wall:.0f}% of a core, load "
                    f"generator {100 * (time.process_time() - gen0) / wall:.0f}%"
                )
                after = await _lengths(redis, settings.stream_namespace)
                extra = {k: after[k] - before.get(k, 0) - expected.get(k, 0) for k in after}
                if any(extra.values()):
                    raise RuntimeError(f"entries on Redis do not match the registry's outbox: {extra}")
    finally:
        proc.stop()
    return rates, notes


async def _lengths(redis: Redis, namespace: str) -> dict[str, int]:
    return {k.decode(): await redis.xlen(k) async for k in redis.scan_iter(match=f"{namespace}*", _type="stream")}


async def _outbox_streams(url: str) -> dict[str, int]:
    conn = await asyncpg.connect(plain(url))
    try:
        return dict(await conn.fetch("SELECT stream, count(*) FROM outbox GROUP BY stream"))
    finally:
        await conn.close()


async def _relay_idle(url: str) -> bool:
    conn = await asyncpg.connect(plain(url))
    try:
        return not await conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")
    finally:
        await conn.close()


# --- the raw baseline ---------------------------------------------------------------

_INSERT_CHILD = """
INSERT INTO children (id, name, gender, birth_date, id_number_hash, id_number_masked, hukou_status, village_code,
                      school_id, class_name, left_behind_type, father, mother, guardian, risk_categories, version, name_key)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::jsonb, $13::jsonb, $14::jsonb, $15, $16, $17)
"""
_INSERT_OUTBOX = "INSERT INTO outbox (stream, event_type, aggregate_id, payload) VALUES ($1, $2, $3, $4)"


def _envelope(type_: str, child_id: str, version: int, region: str, data: dict) -> str:
    return json.dumps(
        {
            "event_id": str(uuid.uuid4()), "type": type_, "schema_version": 1,
            "occurred_at": datetime.now(UTC).isoformat(), "producer": "registry", "aggregate_id": child_id,
            "aggregate_version": version, "correlation_id": None, "causation_id": None, "actor": "bench",
            "region_code": region, "data": data,
        },
        ensure_ascii=False,
    )


def _raw_registration(body: dict, key: bytes, events: str, contacts: str) -> tuple[tuple, list[tuple]]:
    """The child row and its outbox rows (the same three events the registry writes)."""
    cid = str(uuid.uuid4())
    idn = body.get("id_number")
    g = body.get("guardian")
    version = 2 if g else 1
    row = (
        uuid.UUID(cid), body["name"], body["gender"], date.fromisoformat(body["birth_date"]),
        hmac.new(key, idn.encode(), hashlib.sha256).hexdigest() if idn else None, mask_id_number(idn) if idn else None,
        body["hukou_status"], body["village_code"], body.get("school_id"), body.get("class_name"),
        body["left_behind_type"], json.dumps(body["father"], ensure_ascii=False),
        json.dumps(body["mother"], ensure_ascii=False), json.dumps(g, ensure_ascii=False) if g else None,
        body["risk_categories"], version, name_key(body["name"]),
    )
    region = body["village_code"]
    facts = {k: body.get(k) for k in ("gender", "birth_date", "village_code", "hukou_status", "school_id", "class_name",
                                      "left_behind_type", "risk_categories")}
    facts |= {"child_id": cid, "father_status": body["father"]["status"], "mother_status": body["mother"]["status"],
              "guardian_relationship": g["relationship"] if g else None}
    out = [(events, "registry.child.registered", cid, _envelope("registry.child.registered", cid, 1, region, facts))]
    if g:
        data = {"child_id": cid, "relationship": g["relationship"], "capacity": g["capacity"]}
        out.append((events, "registry.guardian.assigned", cid, _envelope("registry.guardian.assigned", cid, 2, region, data)))

    def person(p):
        return {"name": p.get("name"), "phone": p.get("phone")} if p else None

    card = {"child_id": cid, "child_name": body["name"], "guardian": person(g),
            "guardian_relationship": g["relationship"] if g else None,
            "father": person(body["father"]), "mother": person(body["mother"])}
    out.append((contacts, "registry.child.contacts", cid, _envelope("registry.child.contacts", cid, version, region, card)))
    return row, out


async def raw(cfg: BenchConfig, namespace: str, runs: list[list[dict]], redis: Redis) -> tuple[list[float], list[str]]:
    """Per child: one transaction inserting the child row and its outbox rows, then XADD
    of the same entries. Same concurrency as the HTTP clients; no HTTP, no validation,
    no relay (publishing straight after the commit is the lower bound of the outbox)."""
    url = plain(cfg.database_url(db_name("registry", raw=True)))
    events, contacts = f"{namespace}raw.{REGISTRY_EVENTS}", f"{namespace}raw.{REGISTRY_CONTACTS}"
    key = b"bench-raw-id-hash-key"
    rates, notes = [], []
    pool = await asyncpg.create_pool(url, min_size=cfg.clients, max_size=cfg.clients)
    try:
        async def register_all(bodies: list[dict]) -> None:
            queue = iter(bodies)

            async def worker() -> None:
                for body in queue:
                    row, outbox = _raw_registration(body, key, events, contacts)
                    async with pool.acquire() as conn, conn.transaction():
                        await conn.execute(_INSERT_CHILD, *row)
                        await conn.executemany(_INSERT_OUTBOX, outbox)
                    async with redis.pipeline(transaction=False) as pipe:
                        for stream, _, _, payload in outbox:
                            pipe.xadd(stream, {DATA_FIELD: payload})
                        await pipe.execute()

            await asyncio.gather(*(worker() for _ in range(cfg.clients)))

        warm = Population(seed=1)  # one population: each of its children has its own ID number
        await register_all([warm.child() for _ in range(WARMUP)])
        for bodies in runs:
            await truncate(url, "children", "outbox")
            e0, c0 = await redis.xlen(events), await redis.xlen(contacts)
            t0 = time.perf_counter()
            await register_all(bodies)
            rates.append(len(bodies) / (time.perf_counter() - t0))
            written = await redis.xlen(events) - e0 + await redis.xlen(contacts) - c0
            notes.append(f"raw: {written / len(bodies):.2f} entries per child")
    finally:
        await pool.close()
    return rates, notes[:1]
