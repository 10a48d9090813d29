"""The bench's own databases and streams, and a description of the machine."""

from __future__ import annotations

import asyncio
import base64
import os
import platform
import secrets
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from redis.asyncio import Redis

from bench.config import BenchConfig
from shared.db import alembic_config
from shared.security.roles import as_service_role, create_owned_database
from shared.settings import Settings

# Shouhu's services under test, and the raw pipelines' twins. The raw side
# writes to databases migrated with the same schema, so both pay for the same
# tables and indexes; only the code path between Redis and PostgreSQL differs.
SERVICES = ("registry", "reporting", "visits")


def db_name(service: str, *, raw: bool = False) -> str:
    # BENCH_DATABASE_SUFFIX: databases of their own for a second bench run beside one that holds these.
    return f"shouhu_bench_{'raw_' if raw else ''}{service}{os.environ.get('BENCH_DATABASE_SUFFIX', '')}"


def plain(url: str) -> str:
    """asyncpg wants postgresql://, SQLAlchemy postgresql+asyncpg://."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def recreate_databases(cfg: BenchConfig, services: tuple[str, ...] = SERVICES) -> dict[str, str]:
    """Drop and create the services' bench databases, then migrate them; returns name -> SQLAlchemy URL
    (the superuser's). Shouhu's databases belong to their service's role and are migrated as it, as in a
    deployment, so the figures include what row-level security costs; the raw pipelines' are the
    superuser's (a plain pipeline has no policies to pay for)."""
    names = {db_name(s, raw=raw): (s, raw) for s in services for raw in (False, True)}
    conn = await asyncpg.connect(plain(cfg.pg_url))
    try:
        for name, (service, raw) in names.items():
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            if raw:
                await conn.execute(f'CREATE DATABASE "{name}"')
            else:
                await create_owned_database(conn, name, service)
    finally:
        await conn.close()
    urls = {name: cfg.database_url(name) for name in names}
    # Alembic's env.py runs its own event loop: keep it off ours.
    await asyncio.to_thread(_migrate, {
        urls[n] if raw else as_service_role(urls[n], s): s for n, (s, raw) in names.items()
    })
    return urls


def _migrate(targets: dict[str, str]) -> None:
    from alembic import command

    for url, service in targets.items():
        command.upgrade(alembic_config(service, url), "heads")


def run_id() -> str:
    return f"bench{uuid.uuid4().hex[:8]}"


def service_settings(cfg: BenchConfig, namespace: str) -> Settings:
    """Production-like settings (env=prod, own secret) pointing at the bench databases."""
    return Settings(
        env="prod",
        jwt_secret=secrets.token_hex(32),
        id_hash_key=secrets.token_hex(32),
        id_encryption_keys=f"bench:{base64.b64encode(secrets.token_bytes(32)).decode()}",
        redis_url=cfg.redis_url,
        stream_namespace=namespace,
        consumer_batch_size=cfg.batch_size,
        log_level="WARNING",
        rate_limit_per_minute=0,  # the bench is the load; a per-user limit would measure itself
        **{f"{s}_database_url": cfg.database_url(db_name(s)) for s in SERVICES},
    )


async def delete_namespace(redis: Redis, prefix: str) -> int:
    """Delete every key of this run (its streams and DLQs); nothing else."""
    deleted = 0
    async for key in redis.scan_iter(match=f"{prefix}*", count=1000):
        deleted += await redis.delete(key)
    return deleted


@asynccontextmanager
async def connected(url: str) -> AsyncIterator[asyncpg.Connection]:
    """A plain asyncpg connection to ``url`` (either spelling), closed afterwards."""
    conn = await asyncpg.connect(plain(url))
    try:
        yield conn
    finally:
        await conn.close()


async def truncate(url: str, *tables: str) -> None:
    async with connected(url) as conn:
        # CASCADE: tables that later migrations hang on these are emptied too (the bench owns them all).
        await conn.execute(f"TRUNCATE {', '.join(tables)} CASCADE")


async def count_rows(url: str, table: str) -> int:
    async with connected(url) as conn:
        return await conn.fetchval(f"SELECT count(*) FROM {table}")


# --- the machine -----------------------------------------------------------------


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return None


async def describe_machine(cfg: BenchConfig) -> dict[str, str]:
    conn = await asyncpg.connect(plain(cfg.pg_url))
    try:
        pg = await conn.fetchval("SHOW server_version")
    finally:
        await conn.close()
    async with Redis.from_url(cfg.redis_url) as r:
        info = await r.info("server")
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    mem = _memory_gib()
    return {
        "cpu": _cpu_model(),
        "cores": f"{usable} usable ({os.cpu_count()} online)",
        "memory": f"{mem:.1f} GiB" if mem else "unknown",
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "postgresql": pg.split()[0],
        "redis": str(info.get("redis_version", "unknown")),
        "load": " / ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
