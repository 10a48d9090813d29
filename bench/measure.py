"""Small helpers shared by the measurements."""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from shared.security.roles import as_service_roles
from shared.settings import Settings
from tests.support import ServiceProcess

LOG_DIR = Path(tempfile.gettempdir()) / "shouhu-bench"


@dataclass
class Figure:
    """One measured quantity: its runs, Shouhu's and the raw baseline's, in units per second."""

    name: str
    unit: str
    shouhu: list[float] = field(default_factory=list)
    raw: list[float] = field(default_factory=list)
    goal: float | None = None  # minimum Shouhu/raw ratio, where the issue sets one
    notes: list[str] = field(default_factory=list)

    @property
    def shouhu_median(self) -> float:
        return statistics.median(self.shouhu)

    @property
    def raw_median(self) -> float:
        return statistics.median(self.raw)

    @property
    def ratio(self) -> float:
        return self.shouhu_median / self.raw_median

    @property
    def verdict(self) -> str:
        if self.goal is None:
            return "-"
        return f"{'met' if self.ratio >= self.goal else 'MISSED'} (>= {self.goal:.2f})"


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


async def poll(check: Callable[[], Awaitable[bool]], *, timeout: float, what: str, every: float = 0.01) -> float:
    """Wait until ``check`` is true; returns the perf_counter() at which it was seen true."""
    deadline = time.perf_counter() + timeout
    while True:
        if await check():
            return time.perf_counter()
        if time.perf_counter() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(every)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used (Linux /proc), to tell CPU-bound from waiting."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def service_process(service: str, settings: Settings, port: int) -> ServiceProcess:
    """``python -m services.<service>`` with the bench's settings, connecting as its own role (not the bench's
    superuser: see ``service_role``); its log goes to a temp dir."""
    proc = ServiceProcess(service, as_service_roles(settings), port)
    LOG_DIR.mkdir(exist_ok=True)
    proc.log_path = LOG_DIR / f"{service}-{port}-{time.time_ns()}.log"
    return proc
