"""Composition of one service: its HTTP API, its consumers, its outbox relay.

Each service's ``app.py`` describes itself with a ``ServiceSpec``; this module
builds the same runtime for all four (one way to do each thing).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import math
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import jwt
import uvicorn
from fastapi import APIRouter, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from faststream.redis import RedisBroker, RedisRouter
from faststream.specification import AsyncAPI
from redis.asyncio import Redis
from sqlalchemy import MetaData, Table, text

from shared import tracing
from shared.auth import verify_token
from shared.contracts.envelope import EventType
from shared.correlation import flow
from shared.db import make_engine, make_sessionmaker
from shared.errors import install_error_handlers
from shared.logs import configure_logging
from shared.messaging import ReliableConsumer, Subscription, dlq_name
from shared.metrics import ServiceMetrics, group_status, timers_due, unsent
from shared.outbox import Outbox, OutboxRelay
from shared.security import audit
from shared.security.access import Access, accessing
from shared.settings import SERVICE_PORTS, Settings, get_settings
from shared.timers import TimerHandler, TimerPoller
from shared.uow import SqlUnitOfWork

log = logging.getLogger("shouhu.service")


@dataclass
class ServiceSpec:
    name: str
    description: str
    metadata: MetaData
    uow_class: type[SqlUnitOfWork] = SqlUnitOfWork
    outbox: Table | None = None  # the service's outbox table, when it publishes
    publishes: Sequence[EventType] = ()
    subscriptions: Callable[[], Sequence[Subscription]] = lambda: ()
    routers: Sequence[APIRouter] = ()
    consumer_tables: tuple[Table, Table] | None = None
    timers: Table | None = None  # the service's timers table (shared.timers), when it has deadlines
    timer_handlers: dict[str, TimerHandler] = field(default_factory=dict)
    # Long-running workers of the service (e.g. the census importer): each makes, from the runtime,
    # a loop that runs until the stop event is set.
    background: Sequence[Callable[["Runtime"], Callable[[asyncio.Event], Awaitable[None]]]] = ()
    # Settings this service cannot run without in production (each container gets only what it needs).
    required_settings: Sequence[str] = ()
    # A built web app (static files) served at /app/ on the same origin as this service's API.
    web_app: Path | None = None


@dataclass
class Runtime:
    """What a running service holds; tests reach in through ``app.state.runtime``."""

    spec: ServiceSpec
    settings: Settings
    engine: Any = None  # for requests (and probes)
    sessionmaker: Any = None
    # For the service's own work: consumers, timers, the relay (no pre-ping, system scope: db.make_engine).
    worker_engine: Any = None
    worker_sessionmaker: Any = None
    redis: Redis | None = None
    broker: RedisBroker | None = None
    consumer: ReliableConsumer | None = None
    relay: OutboxRelay | None = None
    timer_poller: TimerPoller | None = None
    metrics: ServiceMetrics | None = None
    tasks: list[asyncio.Task] = field(default_factory=list)

    def uow(self) -> SqlUnitOfWork:
        return self._uow(self.sessionmaker)

    def worker_uow(self) -> SqlUnitOfWork:
        """A unit of work of the service's own work (a consumer's batch, a timer), on the workers' engine."""
        return self._uow(self.worker_sessionmaker)

    def _uow(self, sessionmaker) -> SqlUnitOfWork:
        outbox = Outbox(
            self.spec.outbox, self.spec.name, self.settings.stream_namespace,
            wake=self.relay.wake if self.relay is not None else None,  # published on commit, not at the next poll
        ) if self.spec.outbox is not None else None
        return self.spec.uow_class(sessionmaker, outbox)


def build_broker(spec: ServiceSpec, settings: Settings, runtime: Runtime) -> RedisBroker:
    broker = RedisBroker(settings.redis_url, logger=logging.getLogger(f"shouhu.{spec.name}.broker"))
    router = RedisRouter()
    if runtime.consumer is not None:
        runtime.consumer.attach(router)
    # Publishers are declared for the AsyncAPI document; the outbox relay does the XADDs.
    by_stream: dict[str, list[EventType]] = {}
    for et in spec.publishes:
        by_stream.setdefault(et.stream, []).append(et)
    for stream, types in by_stream.items():
        router.publisher(
            settings.stream(stream),
            title=settings.stream(stream),
            description="Events: " + ", ".join(f"{t.name} v{t.version}" for t in types)
            + ". Each entry's __data__ field holds the event envelope as JSON.",
            schema=Union[tuple(t.envelope_model for t in types)] if len(types) > 1 else types[0].envelope_model,
        )
    broker.include_router(router)
    return broker


def create_app(spec: ServiceSpec, settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    missing = [name for name in spec.required_settings if settings.env == "prod" and not getattr(settings, name)]
    if missing:
        raise ValueError(f"{spec.name} needs " + ", ".join(f"SHOUHU_{n.upper()}" for n in missing) + " in production")
    runtime = Runtime(spec=spec, settings=settings, metrics=ServiceMetrics(spec.name))
    runtime.engine = make_engine(settings.database_url(spec.name), application_name=f"shouhu-{spec.name}")
    runtime.sessionmaker = make_sessionmaker(runtime.engine)
    runtime.worker_engine = make_engine(
        settings.database_url(spec.name), application_name=f"shouhu-{spec.name}-worker", worker=True
    )
    runtime.worker_sessionmaker = make_sessionmaker(runtime.worker_engine)
    runtime.redis = Redis.from_url(settings.redis_url)
    subscriptions = spec.subscriptions()
    if subscriptions:
        if spec.consumer_tables is None:
            raise ValueError(f"{spec.name}: a consuming service declares consumer_tables(metadata) in its orm")
        inbox, positions = spec.consumer_tables
        runtime.consumer = ReliableConsumer(
            service=spec.name, settings=settings, redis=runtime.redis, uow_factory=runtime.worker_uow,
            inbox=inbox, positions=positions, metrics=runtime.metrics,
        )
        for sub in subscriptions:
            runtime.consumer.subscribe(sub)
    runtime.broker = build_broker(spec, settings, runtime)
    if spec.outbox is not None:
        runtime.relay = OutboxRelay(
            runtime.worker_engine, runtime.redis, spec.outbox, service=spec.name, batch_size=settings.outbox_batch_size,
            poll_ms=settings.outbox_poll_ms,
        )
    if spec.timers is not None:
        runtime.timer_poller = TimerPoller(
            spec.timers, runtime.worker_uow, spec.timer_handlers, poll_ms=settings.timer_poll_ms, metrics=runtime.metrics
        )
    asyncapi = AsyncAPI(runtime.broker, title=f"Shouhu {spec.name}", version="1.0.0", description=spec.description)

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        stop = asyncio.Event()
        if runtime.consumer is not None:
            await runtime.consumer.ensure_groups()
        await runtime.broker.start()
        if runtime.consumer is not None:
            runtime.tasks += runtime.consumer.start_claimers(stop)
        if runtime.relay is not None:
            runtime.tasks.append(asyncio.create_task(runtime.relay.run(stop), name="outbox-relay"))
        if runtime.timer_poller is not None:
            runtime.tasks.append(asyncio.create_task(runtime.timer_poller.run(stop), name="timer-poller"))
        for make in spec.background:
            runtime.tasks.append(asyncio.create_task(make(runtime)(stop), name="background"))
        log.info("service started", extra={"fields": {"service": spec.name}})
        try:
            yield
        finally:
            stop.set()
            await asyncio.gather(*runtime.tasks, return_exceptions=True)
            await runtime.broker.stop()
            await runtime.redis.aclose()
            await runtime.engine.dispose()
            await runtime.worker_engine.dispose()

    app = FastAPI(title=f"Shouhu {spec.name}", description=spec.description, lifespan=lifespan)
    app.state.runtime = runtime
    app.state.settings = settings
    install_error_handlers(app)
    for router in spec.routers:
        app.include_router(router)
    app.include_router(audit.router)
    if settings.allowed_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.allowed_origins, allow_methods=["*"],
            allow_headers=["Authorization", "Content-Type", "If-Match", "X-Correlation-ID"],
            expose_headers=["X-Correlation-ID"],
        )
    if spec.web_app is not None:
        _serve_web_app(app, spec.web_app, settings)

    @app.get("/health", tags=["operations"], summary="State of the Redis and PostgreSQL connections")
    async def health() -> JSONResponse:
        state = {"service": spec.name, "redis": "ok", "postgres": "ok"}
        try:
            await asyncio.wait_for(runtime.redis.ping(), 2)
        except Exception as exc:
            state["redis"] = f"down: {type(exc).__name__}"
        try:
            async with runtime.engine.connect() as conn:
                await asyncio.wait_for(conn.execute(text("SELECT 1")), 2)
        except Exception as exc:
            state["postgres"] = f"down: {type(exc).__name__}"
        healthy = state["redis"] == state["postgres"] == "ok"
        state["status"] = "ok" if healthy else "degraded"
        return JSONResponse(state, status_code=200 if healthy else 503)

    if settings.rate_limit_per_minute:
        limiter = RateLimiter(settings.rate_limit_per_minute)

        @app.middleware("http")
        async def limit_rate(request: Request, call_next):
            """Each user (the verified token's subject; without one, the client's address) has a bucket of
            a minute's requests, refilled continuously; an empty bucket answers 429. Probes are not counted."""
            if request.url.path in ("/health", "/metrics"):
                return await call_next(request)
            wait = limiter.take(await _requester(settings, request))
            if wait:
                return JSONResponse(status_code=429, headers={"Retry-After": str(wait)}, content={
                    "message_zh": f"请求过于频繁，请 {wait} 秒后再试", "message_en": f"too many requests: retry in {wait} s",
                })
            return await call_next(request)

    @app.middleware("http")
    async def observe_requests(request: Request, call_next):
        """Each request is a flow (its X-Correlation-ID, or a new one) and is counted and timed."""
        started = time.perf_counter()
        # Until a verified token says otherwise, the request's transactions see no protected row.
        access = Access(None, request.client.host if request.client else None)
        correlation = _uuid_or_none(request.headers.get("x-correlation-id")) or uuid.uuid4()
        with accessing(access), flow(correlation), tracing.server_span(request.method, request.headers) as span:
            response = await call_next(request)
            # The route's template (/api/v1/children/{child_id}), never the path with its ids.
            route = getattr(request.scope.get("route"), "path", "(unmatched)")
            span.update_name(f"{request.method} {route}")
            span.set_attributes({"http.route": route, "http.response.status_code": response.status_code})
        response.headers["X-Correlation-ID"] = str(correlation)
        runtime.metrics.http_requests.labels(request.method, route, str(response.status_code)).inc()
        runtime.metrics.http_seconds.labels(request.method, route).observe(time.perf_counter() - started)
        return response

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics: events, backlogs, DLQ, HTTP")
    async def metrics() -> Response:
        m = runtime.metrics
        for sub in subscriptions:
            stream = settings.stream(sub.stream)
            m.set_group(await group_status(runtime.redis, stream, spec.name, dlq_name(stream)))
        if spec.outbox is not None:
            m.outbox_backlog.set(await unsent(runtime.engine, spec.outbox))
        if spec.timers is not None:
            m.timers_due.set(await timers_due(runtime.engine, spec.timers))
        return Response(m.exposition(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/asyncapi", tags=["operations"], summary="AsyncAPI document generated from this service's code")
    async def asyncapi_document() -> JSONResponse:
        return JSONResponse(asyncapi.to_specification().to_jsonable())

    return app


def _serve_web_app(app: FastAPI, directory: Path, settings: Settings) -> None:
    @app.get("/app/config.json", include_in_schema=False)
    async def web_app_config() -> JSONResponse:
        """Where the app finds the APIs of the other services (see Settings.field_app_apis)."""
        pairs = (p.partition("=") for p in settings.field_app_apis.split(",") if p.strip())
        return JSONResponse({"apis": {name.strip(): url.strip() for name, _, url in pairs}})

    if (directory / "index.html").exists():
        app.mount("/app", StaticFiles(directory=directory, html=True), name="web-app")
        return

    @app.get("/app/{rest:path}", include_in_schema=False)
    async def web_app_missing(rest: str) -> JSONResponse:
        # The build output is not committed: say how to make it rather than answering a bare 404.
        return JSONResponse(status_code=503, content={
            "message_zh": "前端应用尚未构建：请运行 make field-app", "message_en": "the app is not built: run make field-app",
        })


class RateLimiter:
    """Token buckets in this process, one per requester: ``per_minute`` at once, then ``per_minute`` a minute."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity, self.per_second, self.clock = per_minute, per_minute / 60, clock
        self.buckets: dict[str, tuple[float, float]] = {}  # requester -> (tokens, when counted)

    def take(self, requester: str) -> int:
        """0 when the request may go; else the whole seconds until it may."""
        now = self.clock()
        tokens, then = self.buckets.get(requester, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - then) * self.per_second)
        if tokens < 1:
            self.buckets[requester] = (tokens, now)
            return math.ceil((1 - tokens) / self.per_second)
        self.buckets[requester] = (tokens - 1, now)
        if len(self.buckets) > 100_000:  # forget the idle ones: a full bucket is the same as none
            self.buckets = {k: v for k, v in self.buckets.items() if v[0] + (now - v[1]) * self.per_second < self.capacity}
        return 0


async def _requester(settings: Settings, request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token:
        try:
            return "user:" + (await verify_token(settings, token)).subject
        except (jwt.PyJWTError, ValueError):
            pass  # an invalid token is limited as its address: a made-up subject must not get a fresh bucket
    return "address:" + (request.client.host if request.client else "unknown")


def _uuid_or_none(value: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(value) if value else None
    except ValueError:
        return None  # a caller's malformed id starts a new flow rather than failing the request


def serve(spec: ServiceSpec) -> None:
    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level)
    tracing.configure(spec.name)
    app = create_app(spec, settings)
    # The modules, models and compiled statements loaded by now live as long as the process: out of the
    # collector's sight, each collection of the objects a batch makes no longer walks them (issue 10: ~20%
    # less CPU per registration in reporting's consumer).
    gc.freeze()
    uvicorn.run(
        app, host=settings.http_host, port=settings.http_port or SERVICE_PORTS[spec.name],
        log_config=None, access_log=False,
    )
