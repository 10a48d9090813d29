"""cProfile of a Shouhu consumer (reporting, visits), in process, on a pre-filled stream.

The same runtime as ``python -m services.<service>`` (create_app + its lifespan),
so the profile shows where a batch's time goes: envelope parsing, the
per-event handlers' SQL through SQLAlchemy, asyncpg, FastStream."""

from __future__ import annotations

import cProfile
import importlib
import io
import pstats
import time
from collections import Counter

from redis.asyncio import Redis
from sqlalchemy import event

from bench.config import BenchConfig
from bench.consume import TABLES, _group, prefill
from bench.data import Population
from bench.infra import truncate
from bench.measure import LOG_DIR, poll
from shared.contracts.registry_v1 import REGISTRY_EVENTS
from shared.security.roles import as_service_roles
from shared.service import create_app
from shared.settings import Settings


async def profile_consumer(service: str, cfg: BenchConfig, settings: Settings, pop: Population, redis: Redis) -> str:
    """Profile until the stream is drained or ``cfg.consumer_seconds`` have passed; print and return the summary."""
    n = cfg.profile_events
    stream = settings.stream(REGISTRY_EVENTS)
    ids = await prefill(redis, stream, [pop.registered_event() for _ in range(n)])
    position = {entry_id: i + 1 for i, entry_id in enumerate(ids)}
    await truncate(settings.database_url(service), *TABLES[service])
    await redis.xgroup_create(stream, service, id="$")
    app = create_app(importlib.import_module(f"services.{service}.app").SPEC, as_service_roles(settings))
    statements: Counter[str] = Counter()

    @event.listens_for(app.state.runtime.worker_engine.sync_engine, "before_cursor_execute")  # the consumer's
    def count(conn, cursor, statement, parameters, context, executemany):  # noqa: ARG001
        statements[statement.split()[0].upper() + " " + _table(statement)] += 1

    profiler = cProfile.Profile()
    acked = 0
    async with app.router.lifespan_context(app):
        await redis.xgroup_setid(stream, service, "0")
        cpu0, t0 = time.process_time(), time.perf_counter()
        profiler.enable()

        async def drained_or_late() -> bool:
            nonlocal acked
            g = await _group(redis, stream, service)
            acked = position.get(g["last-delivered-id"], 0) - g["pending"]
            return acked == n or time.perf_counter() - t0 > cfg.consumer_seconds

        await poll(drained_or_late, timeout=cfg.consumer_seconds + 60, what="the profiled consumer", every=0.05)
        profiler.disable()
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
    LOG_DIR.mkdir(exist_ok=True)
    path = LOG_DIR / f"{service}-consumer-{time.time_ns()}.prof"
    profiler.dump_stats(path)
    buf = io.StringIO()
    print(f"{service}: {acked} of {n} events in {wall:.2f} s ({acked / wall:.0f}/s under cProfile), process CPU "
          f"{cpu:.2f} s ({100 * cpu / wall:.0f}% of one core); profile in {path}", file=buf)
    total = sum(statements.values())
    print(f"SQL statements: {total} ({total / max(acked, 1):.2f} per event acknowledged):", file=buf)
    for stmt, c in statements.most_common(12):
        print(f"  {c:7d}  {stmt}", file=buf)
    stats = pstats.Stats(profiler, stream=buf).strip_dirs().sort_stats("tottime")
    stats.print_stats(25)
    stats.sort_stats("cumulative").print_stats(40)
    report = buf.getvalue()
    print(report)
    return report


def _table(sql: str) -> str:
    words = sql.replace("(", " ").split()
    for i, w in enumerate(words):
        if w.upper() in ("INTO", "FROM", "UPDATE") and i + 1 < len(words):
            return words[i + 1]
    return ""
