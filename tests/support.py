"""Helpers for tests: services in process or as real processes, waiting, sample data."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from shared.auth import Role, issue_token
from shared.service import ServiceSpec, create_app
from shared.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"


async def wait_until(check: Callable[[], Awaitable[bool]], *, timeout: float = 20, what: str = "condition") -> None:
    """Poll ``check`` until it is true; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if await check():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


def token(settings: Settings, role: Role = Role.admin, region: str = "", school: str | None = None) -> dict[str, str]:
    """``school``: a school token's ``school`` claim (without one it reaches no child)."""
    return {"Authorization": f"Bearer {issue_token(settings, role=role, region=region, school=school)}"}


@asynccontextmanager
async def running_app(spec: ServiceSpec, settings: Settings):
    """The service in this process: its API (through httpx), consumers and relay."""
    app = create_app(spec, settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield app, client


def env_for(settings: Settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOUHU_")}
    for name, value in settings.model_dump().items():
        if value is not None:
            env[f"SHOUHU_{name.upper()}"] = str(value)
    env.update(extra)
    return env


class ServiceProcess:
    """A service as a real OS process (``python -m services.<name>``), for crash tests."""

    def __init__(self, service: str, settings: Settings, port: int, *, module: str | None = None, **env: str) -> None:
        self.service, self.port, self.module = service, port, module or f"services.{service}"
        self.env = env_for(settings, SHOUHU_HTTP_PORT=str(port), SHOUHU_LOG_FORMAT="json", **env)
        ARTIFACTS.mkdir(exist_ok=True)
        self.log_path = ARTIFACTS / f"{service}-{port}-{time.time_ns()}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "ServiceProcess":
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", self.module], cwd=ROOT, env=self.env, stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def ready(self, timeout: float = 30) -> "ServiceProcess":
        async def up() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.service} exited with {self.proc.returncode}; log: {self.log_path}")
            try:
                async with httpx.AsyncClient() as c:
                    return (await c.get(f"{self.url}/health", timeout=1)).status_code == 200
            except httpx.HTTPError:
                return False

        await wait_until(up, timeout=timeout, what=f"{self.service} /health")
        return self

    async def died(self, timeout: float = 30) -> int:
        async def gone() -> bool:
            return self.proc.poll() is not None

        await wait_until(gone, timeout=timeout, what=f"{self.service} to die")
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


_COUNTIES: list[str] = []


def fresh_county() -> str:
    """A real county code (the registry refuses unknown ones) that no other test of this process
    has had. Tests of one process share its databases and scope by county; the fixed places the
    tests name are all in Henan (41), so the draw is from the other provinces."""
    if not _COUNTIES:
        from services.registry.domain.divisions import counties

        _COUNTIES.extend(c for c in counties() if not c.startswith("41"))
        random.shuffle(_COUNTIES)
    return _COUNTIES.pop()


def child_payload(n: int = 0, **over) -> dict:
    """A valid registration; ``n`` varies the village so tests can scope by place."""
    body = {
        "name": f"测试儿童{n}",
        "gender": "female",
        "birth_date": "2014-06-01",
        "hukou_status": "registered",
        "village_code": f"410523100{n % 1000:03d}",
        "school_id": "school-1",
        "class_name": "三年级二班",
        "left_behind_type": "both_parents_out",
        "father": {"name": "父亲", "status": "migrant_worker", "work_place": "广东东莞", "phone": "13800138000"},
        "mother": {"name": "母亲", "status": "migrant_worker", "phone": "13700137000"},
        "guardian": {"name": "奶奶", "relationship": "grandparent", "capacity": "limited", "phone": "13900139000"},
        "risk_categories": [],
    }
    body.update(over)
    return body
