"""A probe consumer whose effect is NOT idempotent (it counts applications), so a
double application shows up as n = 2. It uses the same ReliableConsumer and
service runtime as the real services, and runs in process or as a process
(``python -m tests.probe``) for the crash tests. It lives in the reporting
test database, beside reporting's inbox."""

from __future__ import annotations

import uuid

from sqlalchemy import BigInteger, Column, Integer, MetaData, Table, Text, text
from sqlalchemy.dialects.postgresql import UUID

from services.reporting.adapters.orm import inbox, positions
from shared.contracts import EventEnvelope
from shared.messaging import Subscription
from shared.outbox import DATA_FIELD
from shared.service import ServiceSpec

PROBE_STREAM = "probe.events"
probe_metadata = MetaData()
probe_applied = Table(
    "probe_applied",
    probe_metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=True),
    Column("event_id", UUID(as_uuid=True), nullable=False, unique=True),
    Column("aggregate_id", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("n", Integer, nullable=False),
)


class PoisonError(RuntimeError):
    pass


async def bump(uow, event: EventEnvelope) -> None:
    if event.data.get("poison"):
        flag = await uow.session.scalar(text("SELECT count(*) FROM probe_cured WHERE event_id = :id"), {"id": event.event_id})
        if not flag:
            raise PoisonError("this event always fails (until cured)")
    await uow.session.execute(
        text(
            "INSERT INTO probe_applied (event_id, aggregate_id, version, n) VALUES (:id, :agg, :v, 1) "
            "ON CONFLICT (event_id) DO UPDATE SET n = probe_applied.n + 1"
        ),
        {"id": event.event_id, "agg": event.aggregate_id, "v": event.aggregate_version},
    )


SPEC = ServiceSpec(
    name="reporting",
    description="probe consumer for tests",
    metadata=probe_metadata,
    subscriptions=lambda: [Subscription(PROBE_STREAM, {"probe.bumped": bump})],
    consumer_tables=(inbox, positions),
)


async def create_probe_tables(engine) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(probe_metadata.create_all)
        await conn.execute(text("CREATE TABLE IF NOT EXISTS probe_cured (event_id uuid PRIMARY KEY)"))


def probe_event(aggregate: str, version: int, **data) -> tuple[uuid.UUID, bytes]:
    env = EventEnvelope[dict](
        type="probe.bumped", producer="tests", aggregate_id=aggregate, aggregate_version=version,
        region_code="410523100201", data=data,
    )
    return env.event_id, env.model_dump_json().encode()


async def publish(redis, stream: str, payloads: list[bytes]) -> list[bytes]:
    async with redis.pipeline(transaction=False) as pipe:
        for p in payloads:
            pipe.xadd(stream, {DATA_FIELD: p})
        return await pipe.execute()


def interleaved(aggregates: int, versions: int, prefix: str) -> list[tuple[uuid.UUID, bytes]]:
    """Versions 1..n of each aggregate, interleaved as they would be on a busy stream."""
    return [probe_event(f"{prefix}-{a}", v) for v in range(1, versions + 1) for a in range(aggregates)]


if __name__ == "__main__":
    from shared.service import serve

    serve(SPEC)
