"""``shouhu reporting rebuild``: the read models again from the streams (重建统计数据)."""

from __future__ import annotations

import asyncio

import typer
from redis.asyncio import Redis
from sqlalchemy import text

from services.reporting.adapters.orm import PROJECTIONS, inbox, positions
from services.reporting.entrypoints.consumers import subscriptions
from shared.db import make_engine, make_sessionmaker
from shared.messaging import ReliableConsumer
from shared.settings import Settings, get_settings
from shared.uow import SqlUnitOfWork

app = typer.Typer(help="Reporting (统计报表): rebuild the figures from the streams.", no_args_is_help=True)
CHUNK = 1000


async def rebuild(settings: Settings) -> dict[str, int]:
    """Empty every projection (the reference data stays), then apply every entry of every stream
    reporting reads, from the first (XRANGE from 0), through the same consumer as the live service:
    the figures end as if the service had consumed the streams from the start. Entries per stream.
    Run it with the reporting service stopped: its figures are partial until the replay ends."""
    engine = make_engine(settings.database_url("reporting"), pool_size=2, application_name="shouhu-rebuild")
    redis = Redis.from_url(settings.redis_url)
    sessionmaker = make_sessionmaker(engine)
    consumer = ReliableConsumer(service="reporting", settings=settings, redis=redis,
                                uow_factory=lambda: SqlUnitOfWork(sessionmaker), inbox=inbox, positions=positions)
    replayed: dict[str, int] = {}
    try:
        async with engine.begin() as conn:
            await conn.execute(text("TRUNCATE " + ", ".join(t.name for t in PROJECTIONS)))
        for sub in subscriptions():
            stream, start, n = settings.stream(sub.stream), "-", 0
            while entries := await redis.xrange(stream, min=start, count=CHUNK):
                outcome = await consumer.process(sub, entries)
                if outcome.waiting or outcome.failed:
                    raise RuntimeError(f"{stream}: {len(outcome.waiting)} entries out of order, "
                                       f"{len(outcome.failed)} failed (see {stream}.dlq)")
                n += len(entries)
                start = "(" + entries[-1][0].decode()
            replayed[sub.stream] = n
    finally:
        await redis.aclose()
        await engine.dispose()
    return replayed


@app.command("rebuild")
def rebuild_command() -> None:
    """Replay registry.events and visits.events into emptied reporting tables (stop the service first)."""
    for stream, n in asyncio.run(rebuild(get_settings())).items():
        typer.echo(f"{stream}: {n} entries replayed")
