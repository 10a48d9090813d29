"""The chaos run: private servers, the four services as processes, the load, the faults, the settling,
the gathering of every store and the verdict."""

from __future__ import annotations

import asyncio
import json
import os
import random
import secrets
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import asyncpg
import httpx
from redis.asyncio import Redis

from chaos.checker import Ledger, Snapshot
from chaos.cluster import PrivatePostgres, PrivateRedis
from chaos.load import AGENCY_PREFIXES, COUNTY, Load
from shared.auth import Role
from shared.security.roles import as_service_roles
from shared.settings import SERVICES, Settings
from tests.infra import free_port
from tests.support import ServiceProcess, token


def _env(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


@dataclass(frozen=True)
class ChaosConfig:
    seconds: float = _env("CHAOS_SECONDS", 60)
    rate: float = _env("CHAOS_RATE", 20)  # writes per second
    seed: int = int(_env("CHAOS_SEED", 1))
    kill_every: float = _env("CHAOS_KILL_EVERY", 5)  # a random service is kill -9'd this often
    settle_seconds: float = _env("CHAOS_SETTLE_SECONDS", 180)  # at most, after the load
    output: Path = Path(os.environ.get("CHAOS_OUTPUT", "docs/benchmarks.md"))


@dataclass
class Faults:
    kills: dict[str, int] = field(default_factory=lambda: {s: 0 for s in SERVICES})
    recovery: list[float] = field(default_factory=list)  # kill -9 to /health answering again, s
    postgres_restart: float = 0.0
    redis_restart: float = 0.0


class System:
    """The private servers and the four services, each restartable."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.pg, self.redis = PrivatePostgres(root), PrivateRedis(root)
        self.procs: dict[str, ServiceProcess] = {}
        self.ports = {s: free_port() for s in SERVICES}
        self.restarting: set[str] = set()  # killed and not yet answering: not killed again meanwhile

    async def start(self) -> None:
        await asyncio.to_thread(self.pg.start)
        self.redis.start()
        await self.redis.ready()
        urls = await self.pg.create_service_databases()
        self.settings = Settings(
            # env "test": secrets the services need in production are filled in, whichever they are.
            env="test", jwt_secret=secrets.token_hex(32), redis_url=self.redis.url,
            log_level="WARNING", claim_min_idle_ms=3000, claim_interval_ms=500, timer_poll_ms=500,
            rate_limit_per_minute=0,  # one load generator, one token: not a user to throttle
            **{f"{s}_database_url": u for s, u in urls.items()},
        )
        agencies = self.root / "agencies.json"
        agencies.write_text(json.dumps([
            {"code": f"{p}-{COUNTY}", "kind": kind, "region": COUNTY, "name": f"{kind} {COUNTY}", "channels": ["agency_stream"]}
            for p, kind in AGENCY_PREFIXES.items()
        ]), encoding="utf-8")
        self.env = {"SHOUHU_NOTIFICATIONS_AGENCIES_FILE": str(agencies), "SHOUHU_NOTIFICATIONS_AGENCY_KEY": secrets.token_hex(16),
                    "SHOUHU_NOTIFICATIONS_SMS_URL": f"http://127.0.0.1:{free_port()}",  # nobody there: SMS retried, then given up
                    "SHOUHU_NOTIFICATIONS_QUIET_START": "00:00", "SHOUHU_NOTIFICATIONS_QUIET_END": "00:00"}
        await asyncio.gather(*(self.start_service(s) for s in SERVICES))

    async def start_service(self, service: str) -> None:
        proc = self.procs[service] = ServiceProcess(service, as_service_roles(self.settings), self.ports[service], **self.env).start()
        await proc.ready(timeout=90)

    async def kill_and_restart(self, service: str, recovery: list[float]) -> None:
        """kill -9 and start again; the time until it answers, unless it is killed again while starting."""
        t0 = time.monotonic()
        self.restarting.add(service)
        self.procs[service].kill()
        self.procs[service].stop()
        try:
            await self.start_service(service)
            recovery.append(time.monotonic() - t0)
        except AssertionError:  # e.g. PostgreSQL restarting meanwhile: started again at the end
            pass
        finally:
            self.restarting.discard(service)

    async def ensure_up(self) -> None:
        for service, proc in self.procs.items():
            if proc.proc.poll() is not None:
                await self.start_service(service)

    def urls(self) -> dict[str, str]:
        return {s: p.url for s, p in self.procs.items()}

    def stop(self) -> None:
        for p in self.procs.values():
            p.stop()
        self.redis.stop()
        self.pg.stop()


async def inject(system: System, cfg: ChaosConfig, rng: random.Random, faults: Faults, stop: asyncio.Event) -> None:
    """Every few seconds kill -9 a random running service and restart it; PostgreSQL once (at a third of the
    run), Redis once (at two thirds)."""
    t0, restarts = time.monotonic(), []
    pending = {"postgres": t0 + cfg.seconds / 3, "redis": t0 + 2 * cfg.seconds / 3}
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), cfg.kill_every * rng.uniform(0.5, 1.5))
            break
        except TimeoutError:
            pass
        now = time.monotonic()
        if now >= pending.get("postgres", float("inf")):
            del pending["postgres"]
            began = time.monotonic()
            await asyncio.to_thread(system.pg.restart_immediate)
            faults.postgres_restart = time.monotonic() - began
        elif now >= pending.get("redis", float("inf")):
            del pending["redis"]
            began = time.monotonic()
            system.redis.kill()
            await asyncio.sleep(1)
            system.redis.start()  # the same directory: it loads its append-only file
            await system.redis.ready()
            faults.redis_restart = time.monotonic() - began
        else:
            up = [s for s in SERVICES if s not in system.restarting]
            if not up:
                continue
            service = rng.choice(up)
            faults.kills[service] += 1
            # Not awaited: the next kill may land while this one is still starting.
            restarts.append(asyncio.create_task(system.kill_and_restart(service, faults.recovery)))
    await asyncio.gather(*restarts)
    await system.ensure_up()


# --- settling and gathering ------------------------------------------------------------------------


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def _rows(url: str, sql: str, *args) -> list[tuple]:
    conn = await asyncpg.connect(_dsn(url))
    try:
        return [tuple(r) for r in await conn.fetch(sql, *args)]
    finally:
        await conn.close()


async def _streams(redis: Redis) -> list[str]:
    return sorted([k.decode() async for k in redis.scan_iter(_type="stream", count=1000)])


async def _groups(redis: Redis) -> dict[str, list[dict]]:
    return {s: await redis.xinfo_groups(s) for s in await _streams(redis)}


def _behind(group: dict) -> int:
    return int(group["pending"]) + int(group.get("lag") or 0)


PRODUCERS = ("registry", "visits", "notifications")  # reporting publishes nothing


async def busy(settings: Settings, redis: Redis) -> int:
    """Work not yet done: unpublished outbox rows, entries unread or unacknowledged, deadlines due soon."""
    n = 0
    for s in PRODUCERS:
        [(unsent,)] = await _rows(settings.database_url(s), "SELECT count(*) FROM outbox WHERE published_at IS NULL")
        n += unsent
    for s in ("registry", "visits", "notifications"):
        [(due,)] = await _rows(settings.database_url(s), "SELECT count(*) FROM timers WHERE fired_at IS NULL "
                               "AND due_at < now() + interval '10 seconds' AND attempts = 0")
        n += due
    for groups in (await _groups(redis)).values():
        n += sum(_behind(g) for g in groups)
    return n


async def settle(settings: Settings, redis: Redis, limit: float) -> float:
    """Wait until nothing is left to do three polls in a row (or ``limit`` s); returns the time taken."""
    t0, quiet = time.monotonic(), 0
    while time.monotonic() - t0 < limit and quiet < 3:
        try:
            quiet = quiet + 1 if await busy(settings, redis) == 0 else 0
        except (OSError, asyncpg.PostgresError):
            quiet = 0
        await asyncio.sleep(1)
    return time.monotonic() - t0


async def gather(settings: Settings, redis: Redis) -> Snapshot:
    db = settings.database_url
    outbox = {s: await _rows(db(s), "SELECT stream, event_type, payload FROM outbox ORDER BY id") for s in PRODUCERS}
    inbox: dict[str, list[str]] = {}
    for s in SERVICES:  # the registry consumes visits' events too (a dropout back at school)
        for group, event_id in await _rows(db(s), "SELECT consumer, event_id::text FROM inbox"):
            inbox.setdefault(group, []).append(event_id)
    unfired = [f"{s}:{k}:{key}" for s in ("registry", "visits", "notifications") for k, key in await _rows(
        db(s), "SELECT kind, key FROM timers WHERE fired_at IS NULL AND due_at < now() - interval '5 seconds'")]
    groups = await _groups(redis)
    [(figure,)] = await _rows(db("reporting"), "SELECT coalesce(sum(value), 0) FROM place_figures "
                              "WHERE place = $1 AND figure = 'children'", COUNTY) or [(0,)]
    return Snapshot(
        registry_children=await _rows(db("registry"), "SELECT id::text, name FROM children"),
        registry_absences=await _rows(db("registry"), "SELECT id::text, child_id::text FROM absences"),
        outbox=outbox,
        groups={s: [g["name"].decode() for g in gs] for s, gs in groups.items() if gs},
        inbox=inbox,
        stores={
            "visits children": [r for (r,) in await _rows(db("visits"), "SELECT child_id::text FROM children")],
            "notifications contacts": [r for (r,) in await _rows(db("notifications"), "SELECT child_id::text FROM contacts")],
            "reporting child_facts": [r for (r,) in await _rows(db("reporting"), "SELECT child_id::text FROM child_facts")],
        },
        visit_records=await _rows(db("visits"), "SELECT id::text, child_id::text FROM visit_records"),
        reporting_records=[r for (r,) in await _rows(db("reporting"), "SELECT record_id::text FROM visit_records")],
        county_children_figure=int(figure),
        dropout_cases=await _rows(db("visits"), "SELECT id::text, child_id::text FROM referrals WHERE policy = 'dropout'"),
        timeline=await _rows(db("visits"), "SELECT referral_id::text, step FROM referral_timeline"),
        unfired_due_timers=unfired,
        dlq={s: await redis.xlen(s) for s in await _streams(redis) if s.endswith(".dlq")},
        unsettled={f"{s}:{g['name'].decode()}": _behind(g) for s, gs in groups.items() for g in gs},
    )


@dataclass
class Outcome:
    ledger: Ledger
    snapshot: Snapshot
    faults: Faults
    achieved_rate: float
    settled_in: float
    machine: dict[str, str]


async def run(cfg: ChaosConfig, say) -> Outcome:
    from bench.infra import describe_machine

    root = Path(tempfile.mkdtemp(prefix="shouhu-chaos-"))
    system = System(root)
    rng = random.Random(cfg.seed)
    try:
        say(f"private PostgreSQL and Redis in {root}; migrating, starting the four services")
        await system.start()
        machine = await describe_machine(SimpleNamespace(pg_url=system.pg.url, redis_url=system.redis.url))
        load = Load(system.urls(), token(system.settings, Role.admin), rng)
        faults, stop = Faults(), asyncio.Event()
        async with httpx.AsyncClient(timeout=30) as client:
            await load.setup(client)
            say(f"load: {cfg.rate:g} writes/s for {cfg.seconds:g} s; a kill -9 every ~{cfg.kill_every:g} s, "
                "PostgreSQL and Redis restarted once each")
            injector = asyncio.create_task(inject(system, cfg, random.Random(cfg.seed + 1), faults, stop))
            achieved = await load.run(client, cfg.rate, cfg.seconds)
            stop.set()
            await injector
        say(f"load done ({achieved:.1f} writes/s); kills {faults.kills}; settling")
        redis = Redis.from_url(system.redis.url)
        try:
            settled_in = await settle(system.settings, redis, cfg.settle_seconds)
            say(f"settled in {settled_in:.0f} s; gathering")
            snapshot = await gather(system.settings, redis)
        finally:
            await redis.aclose()
        return Outcome(load.ledger, snapshot, faults, achieved, settled_in, machine)
    finally:
        system.stop()
        shutil.rmtree(root, ignore_errors=True)
