"""What a service is doing, for Prometheus (``GET /metrics``) and for ``shouhu status``.

Counters move as work happens (events consumed, sent to the DLQ, HTTP requests); the backlog
figures (outbox rows not yet published, entries pending per group, their oldest idle time, the
group's lag, DLQ length, timers due and not fired) are read from PostgreSQL and Redis when asked,
so they are true at that moment. Labels carry stream, group, route and kind only: never an id of
a child or a person.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from redis.asyncio import Redis
from redis.exceptions import ResponseError
from sqlalchemy import Table, func, select
from sqlalchemy.ext.asyncio import AsyncEngine


@dataclass
class GroupStatus:
    """消费组状态: one group on one stream."""

    stream: str
    group: str
    pending: int  # delivered, not acknowledged
    oldest_pending_idle_s: float  # how long the oldest pending entry has waited since its last delivery
    lag: int | None  # entries not yet delivered to the group (None: Redis cannot tell)
    dlq: int  # entries in the stream's dead-letter queue


async def group_status(redis: Redis, stream: str, group: str, dlq: str) -> GroupStatus:
    try:
        groups = {g["name"].decode(): g for g in await redis.xinfo_groups(stream)}
    except ResponseError:  # no such stream yet
        groups = {}
    info = groups.get(group, {})
    oldest = await redis.xpending_range(stream, group, min="-", max="+", count=1) if info else []
    return GroupStatus(
        stream=stream, group=group, pending=int(info.get("pending", 0)),
        oldest_pending_idle_s=oldest[0]["time_since_delivered"] / 1000 if oldest else 0.0,
        lag=info.get("lag"), dlq=await redis.xlen(dlq),
    )


async def unsent(engine: AsyncEngine, outbox: Table) -> int:
    """Outbox rows the relay has not published yet."""
    async with engine.connect() as conn:
        return await conn.scalar(select(func.count()).select_from(outbox).where(outbox.c.published_at.is_(None)))


async def timers_due(engine: AsyncEngine, timers: Table) -> int:
    """Deadlines that have come and not fired yet (the poller is behind, or a handler keeps failing)."""
    async with engine.connect() as conn:
        return await conn.scalar(
            select(func.count()).select_from(timers).where(timers.c.fired_at.is_(None), timers.c.due_at <= func.now())
        )


class ServiceMetrics:
    """One service's metrics, in a registry of its own (several services can run in one test process)."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.registry = CollectorRegistry()
        r = self.registry
        self.consumed = Counter(
            "shouhu_events_consumed", "Events handled, by outcome (done, waiting for a predecessor, failed)",
            ["stream", "group", "outcome"], registry=r,
        )
        self.dead_lettered = Counter("shouhu_events_dead_lettered", "Events moved to the DLQ", ["stream", "group"], registry=r)
        self.batch_seconds = Histogram(
            "shouhu_batch_seconds", "Time to apply one batch of events", ["stream", "group"], registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.http_requests = Counter(
            "shouhu_http_requests", "HTTP requests, by route template and status", ["method", "route", "status"], registry=r
        )
        self.http_seconds = Histogram("shouhu_http_request_seconds", "HTTP request latency", ["method", "route"], registry=r)
        self.pending = Gauge("shouhu_stream_pending", "Entries delivered and not acknowledged", ["stream", "group"], registry=r)
        self.oldest_pending = Gauge(
            "shouhu_stream_oldest_pending_seconds", "Idle time of the oldest pending entry", ["stream", "group"], registry=r
        )
        self.lag = Gauge("shouhu_stream_lag", "Entries not yet delivered to the group", ["stream", "group"], registry=r)
        self.dlq = Gauge("shouhu_dlq_length", "Entries in the stream's dead-letter queue", ["stream"], registry=r)
        self.outbox_backlog = Gauge("shouhu_outbox_backlog", "Outbox rows not yet published", registry=r)
        self.timers_due = Gauge("shouhu_timers_due", "Deadlines due and not fired yet", registry=r)
        # Deadlines (timers) reached: how late each fired after its due time (the count is how many fired), and the
        # handlers that failed and were put back; a deadline missed shows as lateness or as timers_due staying up.
        self.deadline_lateness = Histogram(
            "shouhu_deadline_lateness_seconds", "Time from a deadline's due time to its firing, by timer kind", ["kind"],
            registry=r, buckets=(1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 24 * 3600),
        )
        self.deadline_failures = Counter(
            "shouhu_deadline_failures", "Deadline handlers that failed and were put back, by timer kind", ["kind"], registry=r
        )

    def set_group(self, s: GroupStatus) -> None:
        self.pending.labels(s.stream, s.group).set(s.pending)
        self.oldest_pending.labels(s.stream, s.group).set(s.oldest_pending_idle_s)
        if s.lag is not None:
            self.lag.labels(s.stream, s.group).set(s.lag)
        self.dlq.labels(s.stream).set(s.dlq)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
