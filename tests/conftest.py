"""Fixtures: real Redis and PostgreSQL (see tests/infra.py), one set of service
databases per xdist worker, a fresh stream namespace per test."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest
from redis.asyncio import Redis
from sqlalchemy import text

from shared.db import alembic_config, make_engine
from shared.settings import SERVICES, Settings
from tests.infra import Infra

TEST_SECRET = "test-secret-for-the-test-suite-only"


@pytest.fixture(scope="session")
def infra():
    try:
        infra = Infra()
    except RuntimeError as exc:
        pytest.exit(str(exc), returncode=3)
    yield infra
    infra.close()


@pytest.fixture(scope="session")
def database_urls(infra, worker_id, testrun_uid) -> dict[str, str]:
    """Fresh, migrated databases for this worker of this run (runs side by side never
    share one): shouhu_test_<run>_<worker>_<service>, dropped at the end."""
    from alembic import command

    urls = {s: infra.database_url(f"shouhu_test_{testrun_uid[:8]}_{worker_id}_{s}") for s in SERVICES}

    async def each_database(*statements: str) -> None:
        conn = await asyncpg.connect(infra.pg_url.replace("+asyncpg", ""))
        try:
            for url in urls.values():
                for statement in statements:
                    await conn.execute(statement.format(name=url.rpartition("/")[2]))
        finally:
            await conn.close()

    drop = 'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
    asyncio.run(each_database(drop, 'CREATE DATABASE "{name}"'))
    for service, url in urls.items():
        command.upgrade(alembic_config(service, url), "heads")
    yield urls
    asyncio.run(each_database(drop))


@pytest.fixture
def settings(infra, database_urls) -> Settings:
    """Settings for one test: its own stream namespace, short claim and retry times."""
    return Settings(
        env="test",
        jwt_secret=TEST_SECRET,
        redis_url=infra.redis_url,
        stream_namespace=f"t{uuid.uuid4().hex[:10]}.",
        claim_min_idle_ms=500,
        claim_interval_ms=100,
        consumer_block_ms=100,
        max_deliveries=3,
        outbox_poll_ms=20,
        rate_limit_per_minute=0,  # tests drive services far faster than a person; test_rate_limit sets its own
        **{f"{s}_database_url": url for s, url in database_urls.items()},
    )


@pytest.fixture
async def redis(infra):
    client = Redis.from_url(infra.redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def engines(database_urls):
    """One engine per service database, for looking into the stores from a test."""
    made = {s: make_engine(url, pool_size=2, application_name="shouhu-tests") for s, url in database_urls.items()}
    yield made
    for e in made.values():
        await e.dispose()


async def scalar(engine, sql: str, **params):
    async with engine.connect() as conn:
        return await conn.scalar(text(sql), params)
