"""The chaos run's own PostgreSQL cluster and Redis server, in a temporary directory, so that
restarting them (the faults) hurts nobody else on the machine."""

from __future__ import annotations

import asyncio
import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import asyncpg
from redis.asyncio import Redis

from shared.db import alembic_config
from shared.security.roles import as_service_role, create_owned_database
from shared.settings import SERVICES
from tests.infra import free_port

PG_USER = "postgres"  # initdb refuses to run as root: the cluster belongs to this OS user


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError(f"no PostgreSQL server binaries (/usr/lib/postgresql/*/bin/{name})")
    return found[-1]


def _as_postgres(*args: str) -> list[str]:
    return ["runuser", "-u", PG_USER, "--", *args] if os.geteuid() == 0 else list(args)


class PrivatePostgres:
    """initdb into a temporary directory, trust authentication, a free port."""

    def __init__(self, root: Path) -> None:
        self.data, self.port = root / "pg", free_port()
        self.log = root / "pg.log"

    def start(self) -> None:
        if not self.data.exists():
            self.data.mkdir()
            if os.geteuid() == 0:
                shutil.chown(self.data.parent, PG_USER)
                shutil.chown(self.data, PG_USER)
            subprocess.run(_as_postgres(_pg_bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
                                        "--no-sync", "-E", "UTF8", "--locale=C.UTF-8"), check=True, capture_output=True)
        self._ctl("start", "-w", "-o", f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c max_connections=300")

    def restart_immediate(self) -> None:
        """A crash as PostgreSQL sees one: no checkpoint, recovery from the WAL at start."""
        self._ctl("restart", "-m", "immediate", "-w", "-o",
                  f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c max_connections=300")

    def stop(self) -> None:
        if self.data.exists():
            self._ctl("stop", "-m", "fast", "-w", check=False)

    def _ctl(self, *args: str, check: bool = True) -> None:
        subprocess.run(_as_postgres(_pg_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.log), *args),
                       check=check, capture_output=True)

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def database_url(self, service: str) -> str:
        """The service's database as the superuser (the checker reads everything)."""
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/chaos_{service}"

    async def create_service_databases(self) -> dict[str, str]:
        """Each service's database, owned by its own role and migrated as it, as deployed (the services
        connect as their roles too: shared/security/roles.py); returns the superuser's URLs."""
        conn = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{self.port}/postgres")
        try:
            for service in SERVICES:
                await create_owned_database(conn, f"chaos_{service}", service)
        finally:
            await conn.close()
        urls = {s: self.database_url(s) for s in SERVICES}
        # Alembic's env.py runs its own event loop
        await asyncio.to_thread(_migrate, {s: as_service_role(u, s) for s, u in urls.items()})
        return urls


def _migrate(urls: dict[str, str]) -> None:
    from alembic import command

    for service, url in urls.items():
        command.upgrade(alembic_config(service, url), "heads")


class PrivateRedis:
    """redis-server with the append-only file on, fsync every second: what production runs."""

    def __init__(self, root: Path) -> None:
        self.dir, self.port = root / "redis", free_port()
        self.dir.mkdir()
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--appendonly", "yes",
             "--appendfsync", "everysec", "--save", "", "--dir", str(self.dir)],
            stdout=open(self.dir / "redis.log", "ab"), stderr=subprocess.STDOUT,
        )

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                async with Redis.from_url(self.url) as r:
                    if await r.ping():
                        return
            except Exception:
                if time.monotonic() > deadline:
                    raise
            await asyncio.sleep(0.1)


def workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="shouhu-chaos-"))
