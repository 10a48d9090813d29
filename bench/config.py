"""Knobs, from the environment, so a quick run and a long one use the same code."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from shared.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


@dataclass(frozen=True)
class BenchConfig:
    children: int = field(default_factory=lambda: _int("BENCH_CHILDREN", 2000))  # registry ingest, per run
    clients: int = field(default_factory=lambda: _int("BENCH_CLIENTS", 16))  # concurrent HTTP clients / raw writers
    events: int = field(default_factory=lambda: _int("BENCH_EVENTS", 10000))  # pre-filled entries per consumer run
    # A consumer run stops after this long even if the stream is not drained (rate over what it acknowledged).
    consumer_seconds: float = field(default_factory=lambda: float(os.environ.get("BENCH_CONSUMER_SECONDS", 20)))
    # Same batch size for Shouhu's consumer and the raw one; defaults to the service default.
    batch_size: int = field(default_factory=lambda: _int("BENCH_BATCH_SIZE", Settings(env="dev").consumer_batch_size))
    repeat: int = field(default_factory=lambda: _int("BENCH_REPEAT", 3))  # runs per figure; the median is reported
    # cProfile the Shouhu consumer in process on this many events after the measurements (0: no profile).
    profile_events: int = field(default_factory=lambda: _int("BENCH_PROFILE", 0))
    # Which parts to run: "ingest", "consumers", "notifications", "visits", "census", "reporting" (all by
    # default); the report covers what ran.
    only: tuple[str, ...] = field(
        default_factory=lambda: tuple(
            os.environ.get("BENCH_ONLY", "ingest,consumers,notifications,visits,census,reporting").replace(" ", "").split(",")
        )
    )
    redis_url: str = field(default_factory=lambda: os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"))
    # A superuser-ish URL on the server: the bench creates and drops its own databases there.
    pg_url: str = field(
        default_factory=lambda: os.environ.get("BENCH_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
    )
    output: Path = field(default_factory=lambda: Path(os.environ.get("BENCH_OUTPUT", ROOT / "docs" / "benchmarks.md")))

    def database_url(self, name: str) -> str:
        base, _, _ = self.pg_url.rpartition("/")
        return f"{base}/{name}"
