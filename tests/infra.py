"""Where the tests find Redis and PostgreSQL (architecture.md, "Tests").

1. ``TEST_REDIS_URL`` / ``TEST_DATABASE_URL`` when set;
2. else testcontainers, when a Docker engine answers;
3. else local servers on the default ports;
4. else the run fails, saying how to provide one. Nothing is skipped.
"""

from __future__ import annotations

import asyncio
import os
import socket

import asyncpg
from redis import Redis

LOCAL_REDIS = "redis://127.0.0.1:6379/0"
LOCAL_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
HOW = (
    "Provide one: set TEST_REDIS_URL=redis://HOST:PORT/0 and TEST_DATABASE_URL="
    "postgresql+asyncpg://USER@HOST:5432/postgres, or run a Docker engine (testcontainers), or start local "
    "servers (PostgreSQL with trust auth on 127.0.0.1:5432, Redis on 127.0.0.1:6379; `bash .ci/run` starts them)."
)


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
        return True
    except Exception:
        return False


def _redis_ok(url: str) -> bool:
    try:
        return Redis.from_url(url, socket_connect_timeout=2).ping()
    except Exception:
        return False


def _pg_ok(url: str) -> bool:
    async def probe() -> bool:
        conn = await asyncpg.connect(url.replace("+asyncpg", ""), timeout=3)
        await conn.close()
        return True

    try:
        return asyncio.run(probe())
    except Exception:
        return False


class Infra:
    def __init__(self) -> None:
        self._containers: list = []
        self.redis_url = self._redis()
        self.pg_url = self._pg()

    def _redis(self) -> str:
        if url := os.environ.get("TEST_REDIS_URL"):
            if not _redis_ok(url):
                raise RuntimeError(f"TEST_REDIS_URL={url} does not answer PING. {HOW}")
            return url
        if _docker_answers():
            from testcontainers.redis import RedisContainer

            c = RedisContainer("redis:7.0").start()
            self._containers.append(c)
            return f"redis://{c.get_container_host_ip()}:{c.get_exposed_port(6379)}/0"
        if _redis_ok(LOCAL_REDIS):
            return LOCAL_REDIS
        raise RuntimeError(f"No Redis for the tests. {HOW}")

    def _pg(self) -> str:
        if url := os.environ.get("TEST_DATABASE_URL"):
            if not _pg_ok(url):
                raise RuntimeError(f"TEST_DATABASE_URL={url} does not accept connections. {HOW}")
            return url
        if _docker_answers():
            from testcontainers.postgres import PostgresContainer

            c = PostgresContainer("postgres:15", driver="asyncpg").start()
            self._containers.append(c)
            return c.get_connection_url()
        if _pg_ok(LOCAL_PG):
            return LOCAL_PG
        raise RuntimeError(f"No PostgreSQL for the tests. {HOW}")

    def database_url(self, name: str) -> str:
        base, _, _ = self.pg_url.rpartition("/")
        return f"{base}/{name}"

    def close(self) -> None:
        for c in self._containers:
            c.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
