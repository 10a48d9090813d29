"""Notifications (通知): messages rendered and handed to channels per second, and
the time from an urgent event on the stream to the agency's signed webhook while
other traffic flows; each beside a raw redis-py + asyncpg (+ httpx) pipeline.

The service runs as a real process (``python -m services.notifications``) with
the SMS simulator as another; the webhook receiver, the producers and the raw
pipelines run in the bench process."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
from redis.asyncio import Redis

from bench.config import ROOT, BenchConfig
from bench.consume import _group, prefill
from bench.infra import connected, db_name, recreate_databases, service_settings, truncate
from bench.report import results
from bench.measure import LOG_DIR, Figure, cpu_seconds, poll, service_process
from services.notifications.adapters.signing import signed_headers, verify
from services.notifications.config import NotificationsConfig
from services.notifications.domain.templates import Templates
from shared.contracts.notifications_v1 import (
    NOTIFICATION_REQUESTS, NOTIFICATION_URGENT_REQUESTS, Channel, MessageRequested, message_requested,
)
from shared.contracts.registry_v1 import CHILD_CONTACTS, REGISTRY_CONTACTS, ContactCard, Person
from shared.messaging import dlq_name
from shared.outbox import DATA_FIELD
from shared.settings import Settings
from tests.infra import free_port

SERVICE = "notifications"
COUNTY, VILLAGE = "410523", "410523100201"
POLICE = f"gaj-{COUNTY}"
AGENCY_KEY = "bench-agency-key"
SMS_KEY = "bench-sms-key"
SINCE = "2026-11-20"
# What a run starts from (contacts stay: the same children each run).
TABLES = ("deliveries", "requests", "timers", "inbox", "aggregate_positions", "outbox", "agency_rejections")


def _float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


@dataclass(frozen=True)
class NotifConfig:
    """``BENCH_NOTIF_*``: sizes and durations of the notifications bench."""

    messages: int = int(_float("BENCH_NOTIF_MESSAGES", 1000))  # requests per throughput run, one SMS each
    seconds: float = _float("BENCH_NOTIF_SECONDS", 40)  # a throughput run stops after this long
    rate: float = _float("BENCH_NOTIF_RATE", 1000)  # other traffic, events/s, during the latency runs
    requests_share: float = _float("BENCH_NOTIF_REQUESTS_SHARE", 0.1)  # of it: message requests (the rest contact cards)
    urgent: int = int(_float("BENCH_NOTIF_URGENT", 100))  # urgent events per latency run
    urgent_every: float = _float("BENCH_NOTIF_URGENT_EVERY", 0.2)  # seconds between them
    goal_ms: float = _float("BENCH_NOTIF_GOAL_MS", 200)  # p99 goal from the issue
    # 1: urgent requests on the stream message_requested() names (notifications.requests.urgent), as a sender
    # does; 0: on notifications.requests with the others, as a sender not yet moved to the urgent stream.
    urgent_stream: bool = bool(int(_float("BENCH_NOTIF_URGENT_STREAM", 1)))


class Latency(Figure):
    """A time (lower is better) with an absolute goal, beside the raw pipeline's."""

    def __init__(self, name: str, goal_ms: float | None = None) -> None:
        super().__init__(name, "ms")
        self.limit = goal_ms

    @property
    def verdict(self) -> str:
        if self.limit is None:
            return "-"
        return f"{'met' if self.shouhu_median < self.limit else 'MISSED'} (< {self.limit:.0f} ms)"


# --- the outside world: an agency's webhook receiver, the SMS provider -------------------


class WebhookReceiver:
    """An agency's HTTP endpoint (plain asyncio, keep-alive): notes when each message's
    request arrived and whether its signature verified."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.arrived: dict[str, float] = {}
        self.unverified = 0
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/shouhu"

    async def stop(self) -> None:
        self.server.close()
        await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.readline():
                headers = {}
                while (h := await reader.readline()) not in (b"\r\n", b""):
                    k, _, v = h.decode().partition(":")
                    headers[k.strip()] = v.strip()
                body = await reader.readexactly(int(headers.get("Content-Length", headers.get("content-length", 0))))
                now = time.perf_counter()
                if not verify(self.secret, headers, body):
                    self.unverified += 1
                self.arrived.setdefault(json.loads(body)["request_id"], now)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


class SmsProvider:
    """``python -m services.notifications.sms_simulator`` as its own process."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        LOG_DIR.mkdir(exist_ok=True)
        self.log = open(LOG_DIR / f"sms-simulator-{self.port}.log", "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "services.notifications.sms_simulator", "--port", str(self.port), "--key", SMS_KEY],
            cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT,
        )

    async def received(self) -> int:
        async with httpx.AsyncClient() as c:
            return len((await c.get(f"{self.url}/v1/messages", timeout=30)).json())

    async def ready(self) -> None:
        async def up() -> bool:
            try:
                await self.received()
                return True
            except httpx.HTTPError:
                return False

        await poll(up, timeout=30, what="the SMS simulator", every=0.1)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        self.log.close()


# --- data ------------------------------------------------------------------------------


class Traffic:
    """Children with contact cards, and the events about them."""

    def __init__(self, children: int) -> None:
        self.children = [(uuid.uuid4(), f"张{'小明晓红丽华'[i % 6]}{i}", f"139{i:08d}") for i in range(children)]

    def cards(self) -> list[tuple]:
        cards = [ContactCard(child_id=c, child_name=n, guardian=Person(name="奶奶", phone=p),
                             guardian_relationship="grandparent") for c, n, p in self.children]
        return [(c.child_id, json.dumps(c.model_dump(mode="json"), ensure_ascii=False)) for c in cards]

    @staticmethod
    def request(kind: str, recipients: list[dict], *, child_id=None, urgency="normal", **data) -> bytes:
        req = MessageRequested(request_id=uuid.uuid4(), kind=kind, urgency=urgency, child_id=child_id,
                               region_code=VILLAGE, recipients=recipients, data=data)
        return message_requested(req).envelope(req, producer="visits", aggregate_id=str(req.request_id), aggregate_version=1,
                                               region_code=VILLAGE).model_dump_json().encode()

    def absence(self, i: int) -> bytes:
        child = self.children[i % len(self.children)][0]
        return self.request("absence_notice", [{"role": "guardian"}], child_id=child, since=SINCE, school_days=3)

    def violence(self, i: int) -> tuple[str, bytes]:
        child = self.children[i % len(self.children)][0]
        raw = self.request("violence_report", [{"role": "agency", "agency": "public_security"}], child_id=child,
                           urgency="urgent", reported_by="班主任", observed_on=SINCE, case_id=f"BENCH-{i}")
        return json.loads(raw)["data"]["request_id"], raw

    @staticmethod
    def card(i: int) -> bytes:
        """A new child's contact card (another child's each time: an upsert each)."""
        child = uuid.uuid4()
        card = ContactCard(child_id=child, child_name=f"王{i}", guardian=Person(name="爷爷", phone=f"138{i % 10**8:08d}"))
        return CHILD_CONTACTS.envelope(card, producer="registry", aggregate_id=str(child), aggregate_version=1,
                                       region_code=VILLAGE).model_dump_json().encode()


# --- setup -----------------------------------------------------------------------------


async def store_contacts(url: str, traffic: Traffic) -> None:
    async with connected(url) as conn:
        await conn.execute("TRUNCATE contacts")
        await conn.executemany("INSERT INTO contacts (child_id, card, version) VALUES ($1, $2::jsonb, 1)", traffic.cards())


def agencies_file(webhook_url: str) -> Path:
    """The county's police reached by signed webhook only (the urgent path measured)."""
    path = Path(tempfile.mkdtemp(prefix="shouhu-bench-")) / "agencies.json"
    path.write_text(json.dumps([{"code": POLICE, "kind": "public_security", "region": COUNTY, "name": "汤阴县公安局",
                                 "channels": ["webhook"], "webhook_url": webhook_url}], ensure_ascii=False), encoding="utf-8")
    return path


# --- the bench --------------------------------------------------------------------------


class NotificationsBench:
    def __init__(self, cfg: BenchConfig, rid: str, redis: Redis, say) -> None:
        self.cfg, self.rid, self.redis, self.say = cfg, rid, redis, say
        self.n = NotifConfig()
        self.secret = NotificationsConfig(agency_key=AGENCY_KEY).agency_secret("webhook", POLICE)
        self.traffic = Traffic(max(self.n.messages, 1000))
        self.templates = Templates.load(NotificationsConfig().templates_file)

    async def run(self) -> list[Figure]:
        n = self.n
        urls = await recreate_databases(self.cfg, (SERVICE,))
        self.url, self.raw_url = urls[db_name(SERVICE)], urls[db_name(SERVICE, raw=True)]
        for url in (self.url, self.raw_url):
            await store_contacts(url, self.traffic)
        self.receiver = WebhookReceiver(self.secret)
        self.sms = SmsProvider()
        self.env = {
            "SHOUHU_NOTIFICATIONS_AGENCIES_FILE": str(agencies_file(await self.receiver.start())),
            "SHOUHU_NOTIFICATIONS_SMS_URL": self.sms.url, "SHOUHU_NOTIFICATIONS_SMS_KEY": SMS_KEY,
            "SHOUHU_NOTIFICATIONS_AGENCY_KEY": AGENCY_KEY,
            # No quiet hours: the bench may run at night in China, and held SMS would measure nothing.
            "SHOUHU_NOTIFICATIONS_QUIET_START": "00:00", "SHOUHU_NOTIFICATIONS_QUIET_END": "00:00",
        }
        rate = Figure("notifications: messages rendered and handed to channels", "messages/s")
        p50 = Latency("notifications: urgent event to signed webhook, p50")
        p99 = Latency(f"notifications: urgent event to signed webhook, p99, with {n.rate:,.0f} events/s of other traffic", n.goal_ms)
        try:
            await self.sms.ready()
            for i in range(self.cfg.repeat):
                for side in ("shouhu", "raw") if i % 2 == 0 else ("raw", "shouhu"):
                    settings = self._settings(f"{self.rid}.notif{i}{side}.")
                    r = await (self.throughput(settings) if side == "shouhu" else self.raw_throughput(settings))
                    getattr(rate, side).append(r)
                    self.say(f"  run {i + 1}/{self.cfg.repeat} throughput {side:<6} {r:8.0f} messages/s")
                for side in ("shouhu", "raw") if i % 2 == 0 else ("raw", "shouhu"):
                    settings = self._settings(f"{self.rid}.urgent{i}{side}.")
                    times, notes = await self.latency(settings, side)
                    getattr(p50, side).append(_pct(times, 50))
                    getattr(p99, side).append(_pct(times, 99))
                    p99.notes += notes
                    self.say(f"  run {i + 1}/{self.cfg.repeat} urgent     {side:<6} p50 {_pct(times, 50):6.1f} ms, "
                             f"p99 {_pct(times, 99):6.1f} ms, max {max(times):6.1f} ms over {len(times)} events")
        finally:
            self.sms.stop()
            await self.receiver.stop()
        if self.receiver.unverified:
            raise RuntimeError(f"{self.receiver.unverified} webhooks failed signature verification")
        return [rate, p50, p99]

    def _settings(self, namespace: str) -> Settings:
        s = service_settings(self.cfg, namespace)
        return s.model_copy(update={"notifications_database_url": self.url})

    # --- throughput ------------------------------------------------------------------

    async def throughput(self, settings: Settings) -> float:
        """Messages/s of the service: requests pre-filled on notifications.requests, the clock
        from the first delivery to the last SMS accepted by the simulator (status delivered)."""
        n, stream = self.n.messages, settings.stream(NOTIFICATION_REQUESTS)
        await truncate(self.url, *TABLES)
        await prefill(self.redis, stream, [self.traffic.absence(i) for i in range(n)])
        await self.redis.xgroup_create(stream, SERVICE, id="$")
        before = await self.sms.received()
        proc = service_process(SERVICE, settings, free_port())
        proc.env.update(self.env)
        proc.start()
        try:
            async with connected(self.url) as conn:
                await proc.ready(timeout=60)
                await self.redis.xgroup_setid(stream, SERVICE, "0")
                done, t_done = 0, 0.0

                async def delivered() -> bool:
                    return (await _group(self.redis, stream, SERVICE))["last-delivered-id"] != b"0-0"

                async def all_sent() -> bool:
                    nonlocal done, t_done
                    now = await conn.fetchval("SELECT count(*) FROM deliveries WHERE status = 'delivered'")
                    if now > done:
                        done, t_done = now, time.perf_counter()
                    return done == n or time.perf_counter() - t_first > self.n.seconds

                t_first = await poll(delivered, timeout=30, what="the first delivery")
                await poll(all_sent, timeout=self.n.seconds + 30, what="every SMS handed over", every=0.05)
        finally:
            proc.stop()
        sent = await self.sms.received() - before
        if sent < done or await self.redis.xlen(dlq_name(stream)):
            raise RuntimeError(f"{sent} SMS at the simulator for {done} delivered; log {proc.log_path}")
        return done / (t_done - t_first)

    def _raw_text(self) -> str:
        """The absence notice's short text as str.format (the template, by hand), checked against the service's."""
        fmt = ("【守护】{child_name}于{since}起未到校{school_days}天，请与班主任联系。\n\n"
               "[Shouhu] {child_name} has not been at school since {since}; please call the class teacher.")
        context = {"child_name": "某", "data": {"since": SINCE, "school_days": 3}, "region_code": VILLAGE,
                   "agency_name": "", "urgent": False}
        if fmt.format(child_name="某", since=SINCE, school_days=3) != self.templates.render("absence_notice", Channel.sms, context).text:
            raise RuntimeError("the raw baseline's text differs from the template's")
        return fmt

    async def raw_throughput(self, settings: Settings) -> float:
        """XREADGROUP (same batch size) -> one SELECT of the batch's names and str.format of the same
        text -> one INSERT per batch (requests and deliveries, delivered) -> XACK. No hand-over."""
        n, stream, group, fmt = self.n.messages, settings.stream(NOTIFICATION_REQUESTS), "raw-notifications", self._raw_text()
        await truncate(self.raw_url, *TABLES)
        await prefill(self.redis, stream, [self.traffic.absence(i) for i in range(n)])
        await self.redis.xgroup_create(stream, group, id="0")
        async with connected(self.raw_url) as conn:
            done, t0 = 0, time.perf_counter()
            while done < n:
                reply = await self.redis.xreadgroup(group, "raw-1", {stream: ">"}, count=self.cfg.batch_size, block=200)
                if not reply:
                    continue
                entries = reply[0][1]
                events = [json.loads(f[DATA_FIELD.encode()])["data"] for _, f in entries]
                names = dict(await conn.fetch(
                    "SELECT child_id::text, card->>'child_name' FROM contacts WHERE child_id = ANY($1::uuid[])",
                    [e["child_id"] for e in events]))
                texts = [fmt.format(child_name=names[e["child_id"]], **e["data"]) for e in events]
                await conn.execute(_RAW_INSERT, [e["request_id"] for e in events], [e["child_id"] for e in events],
                                   [json.dumps(e["data"]) for e in events], texts)
                await self.redis.xack(stream, group, *(i for i, _ in entries))
                done += len(entries)
            elapsed = time.perf_counter() - t0
        return n / elapsed

    # --- urgent latency -----------------------------------------------------------------

    async def latency(self, settings: Settings, side: str) -> tuple[list[float], list[str]]:
        """Milliseconds from the XADD of each urgent request to the signed webhook's arrival, while a
        paced producer puts ``rate`` events/s of other traffic on the streams the service reads."""
        requests, contacts = settings.stream(NOTIFICATION_REQUESTS), settings.stream(REGISTRY_CONTACTS)
        # Where a sender puts an urgent request (the stream message_requested() names), or with the others.
        urgent = settings.stream(NOTIFICATION_URGENT_REQUESTS) if self.n.urgent_stream else requests
        stop = asyncio.Event()
        proc, raw = None, None
        if side == "shouhu":
            await truncate(self.url, *TABLES)
            proc = service_process(SERVICE, settings, free_port())
            proc.env.update(self.env)
            proc.start()
            await proc.ready(timeout=60)
        else:
            raw = asyncio.create_task(self._raw_urgent([requests, contacts, urgent], stop))
        sent: dict[str, float] = {}
        producer = asyncio.create_task(self._background(requests, contacts, stop))
        cpu0 = cpu_seconds(proc.proc.pid) if proc else 0.0
        try:
            await asyncio.sleep(2)  # the other traffic flowing first
            t0 = time.perf_counter()
            for i in range(self.n.urgent):
                request_id, body = self.traffic.violence(i)
                sent[request_id] = time.perf_counter()
                await self.redis.xadd(urgent, {DATA_FIELD: body})
                await asyncio.sleep(max(0.0, t0 + (i + 1) * self.n.urgent_every - time.perf_counter()))

            async def all_arrived() -> bool:
                return all(r in self.receiver.arrived for r in sent)

            await poll(all_arrived, timeout=60, what=f"every urgent webhook ({side})", every=0.05)
            elapsed = time.perf_counter() - t0 + 2
            phases = await self._phases(urgent) if proc else ""
        finally:
            stop.set()
            produced = await producer
            if raw is not None:
                await raw
            if proc is not None:
                cpu = cpu_seconds(proc.proc.pid) - cpu0
                proc.stop()
        times = [1000 * (self.receiver.arrived[r] - t) for r, t in sent.items()]
        label = "Shouhu" if side == "shouhu" else "raw"
        notes = [f"{label}: other traffic achieved {produced / elapsed:,.0f} events/s"
                 + (f", service CPU {100 * cpu / elapsed:.0f}% of a core{phases}" if proc else "")]
        return times, notes

    async def _phases(self, stream: str) -> str:
        """Where an urgent request's time went (medians, wall clock): from its XADD (the entry id) until the
        consumer's transaction began (requests.created_at), until the transaction that attempts it began
        (timers.fired_at: the same transaction, 0 ms, when the first attempt is made where it is planned; the
        urgent lane's otherwise), until the attempt began (delivered_at: the planning, or the lane's claim),
        until the webhook arrived (the delivery read, rendered and POSTed)."""
        offset = time.time() - time.perf_counter()
        added = {}
        for entry_id, fields in await self.redis.xrange(stream):
            data = json.loads(fields[DATA_FIELD.encode()])["data"]
            if data["urgency"] == "urgent":
                added[data["request_id"]] = int(entry_id.split(b"-")[0]) / 1000
        async with connected(self.url) as conn:
            rows = await conn.fetch(
                "SELECT r.request_id::text, extract(epoch FROM r.created_at), extract(epoch FROM t.fired_at),"
                " extract(epoch FROM d.delivered_at) FROM requests r JOIN deliveries d USING (request_id)"
                " JOIN timers t ON t.key = d.id::text || ':1' WHERE r.urgency = 'urgent'")
        steps = [[1000 * (b - a) for a, b in itertools.pairwise(
            (added[r], float(consumed), float(fired), float(attempted), self.receiver.arrived[r] + offset))]
            for r, consumed, fired, attempted in rows]
        names = ("stream to consumer", "consumer to the attempt's transaction", "until the attempt",
                 "delivery read, render and POST")
        return "; medians: " + ", ".join(f"{n} {statistics.median(s[i] for s in steps):.0f} ms" for i, n in enumerate(names))

    async def _background(self, requests: str, contacts: str, stop: asyncio.Event) -> int:
        """``rate`` events/s in ticks of 10 ms: contact cards and, a share of them, normal requests."""
        tick, produced, t0 = 0.01, 0, time.perf_counter()
        while not stop.is_set():
            due = int((time.perf_counter() - t0) * self.n.rate)
            async with self.redis.pipeline(transaction=False) as pipe:
                for i in range(produced, due):
                    if (i * self.n.requests_share) % 1 + self.n.requests_share >= 1:
                        pipe.xadd(requests, {DATA_FIELD: self.traffic.absence(i)})
                    else:
                        pipe.xadd(contacts, {DATA_FIELD: self.traffic.card(i)})
                await pipe.execute()
            produced = due
            await asyncio.sleep(tick)
        return produced

    async def _raw_urgent(self, streams: list[str], stop: asyncio.Event) -> None:
        """XREADGROUP on the streams (the urgent one too, when it is another) -> for an urgent request, the
        signed POST -> XACK."""
        group = "raw-notifications"
        streams = list(dict.fromkeys(streams))
        for s in streams:
            await self.redis.xgroup_create(s, group, id="$", mkstream=True)
        webhook = json.loads(Path(self.env["SHOUHU_NOTIFICATIONS_AGENCIES_FILE"]).read_text())[0]["webhook_url"]
        async with httpx.AsyncClient(timeout=10) as client:
            while not stop.is_set():
                reply = await self.redis.xreadgroup(group, "raw-1", {s: ">" for s in streams},
                                                    count=self.cfg.batch_size, block=100)
                for stream, entries in reply or []:
                    for _, fields in entries:
                        event = json.loads(fields[DATA_FIELD.encode()])
                        if event["data"].get("urgency") == "urgent":
                            body = json.dumps(event["data"]).encode()
                            await client.post(webhook, content=body,
                                              headers=signed_headers(self.secret, body, event["data"]["request_id"]))
                    await self.redis.xack(stream, group, *(i for i, _ in entries))


_RAW_INSERT = """
WITH r AS (
    INSERT INTO requests (request_id, kind, urgency, child_id, region_code, data)
    SELECT id, 'absence_notice', 'normal', child, '410523100201', d::jsonb
    FROM unnest($1::uuid[], $2::uuid[], $3::text[]) AS t(id, child, d)
)
INSERT INTO deliveries (id, request_id, kind, recipient, recipient_role, channels, channel, status, text)
SELECT gen_random_uuid(), id, 'absence_notice', 'guardian:' || child, 'guardian', '{sms}', 'sms', 'delivered', txt
FROM unnest($1::uuid[], $2::uuid[], $4::text[]) AS t(id, child, txt)
"""


# Profiles of the service (cProfile in process on 1,000 SMS requests; py-spy on the service process during a
# latency run; the urgent path's phases timed in process): what the figures above come from.
FINDINGS = [
    "Found by profiling (2026-12-01; the machine shared, load average 3 to 24: compare ratios):",
    "",
    "- Before (commit 52fb0fc): 15.6 SQL statements per SMS delivered, each awaited in turn: per request 4",
    "  (request, delivery, its attempt number, its timer), per attempt 9 and a commit (claim one timer,",
    "  SAVEPOINT, the delivery, the child's card twice for name and phone, two UPDATEs, the timer fired,",
    "  RELEASE), then one SMS at a time; cProfile: 700 delivered in 60 s, CPU 37% of a core, the rest waiting",
    "  on round trips. Its bench at load 11 (one run): 14 messages/s (raw 4,718: 0.003); of the 100 urgent",
    "  reports, not all had reached the webhook 60 s after the last was sent (at load 3.7: 38 messages/s, 0.010",
    "  of raw; p50 17,886 ms, p99 23,259 ms).",
    "- Now: contact cards and message requests are applied a run at a time (one multi-row upsert; four",
    "  statements per run of requests); attempts fire in batches of up to 100 per lane (normal, urgent),",
    "  claimed with SKIP LOCKED, read in one SELECT with the card and the user, handed over concurrently (16 at",
    "  once per outside channel and lane) and recorded in two UPDATEs: 0.43 statements per delivery. The SMS",
    "  simulator opened a connection and a thread per message; it now keeps connections alive.",
    "- On 2026-12-01 the urgent p99 goal was missed (p50 2,666 ms, p99 4,455 ms at load 11). py-spy, latency run",
    "  (load 8): its thread busy in 95% of samples while using 52% of a core, i.e. mostly waiting on the",
    "  machine: handing SMS to the simulator 37% of samples (httpx; socket writes alone 22%; httpcore retries",
    "  `import sniffio`, not installed, searching sys.path on every request), the stream consumer 16%. Timed",
    "  in process, an urgent request's time splits over the consumer's lag behind the stream, its batch's",
    "  transaction, the wait from that commit until the urgent lane has claimed it, and the POST, each hundreds",
    "  of milliseconds under load: the urgent lane has its own timers and channel bounds but shares the",
    "  process's one event loop, its database and the 2 cores with the normal lane, which at these loads does",
    "  not keep up with 100 SMS/s (49 messages/s then) and so never pauses. With no SMS traffic (1,000",
    "  contact cards/s only) one run gave p50 312 ms, p99 762 ms, service CPU 21% (load 9).",
    "- 2026-12-04: sniffio installed (httpcore no longer searches sys.path on every request), the outbox relay",
    "  woken on commit instead of at its next poll, and the urgent lane first (the normal lane holds back its",
    "  hand-overs, at most 0.5 s each, while an urgent request is due). Three runs at load 2.5: p50 39 ms, p99",
    "  98 ms (runs 98, 46, 713 ms: one of three still over the goal); before, without sniffio, at load 3: p99",
    "  162 ms (780, 121, 162). The urgent path is about 14 database round trips in a row (the consumer's batch,",
    "  planning, the lane's claim, the POST): at load 7 each took 10-15 ms and the p99 passed a second. The",
    "  bench puts urgent requests straight on `notifications.requests`, so the relay's wake-up is not in them.",
    "- 2026-12-04 20:00: planning in one statement (requests, deliveries, first timers; was three), a batch's",
    "  outcomes in two, a transaction's outbox rows in one INSERT at commit, and the urgent lane's transaction",
    "  begun while the urgent request still commits (check-out ping, BEGIN, scope: three round trips off the",
    "  path). At load 11-15 round trips took 20-60 ms and the runs said little: p99 1,236, 2,341, 2,290 ms",
    "  beside HEAD's 15,237, 2,946, 1,894 in the same hour. The medians in the notes split each run's time.",
    "  At load 1-1.7, back to back: p99 77, 154, 48 ms (p50 27, 47, 19) beside HEAD's 107, 289, 48 (p50 29,",
    "  57, 28): the goal met in all three runs. The longest phase is the consumer's (11-22 ms from the XADD",
    "  to its transaction): urgent requests queue behind the batch of normal ones in flight on the stream.",
    "- 2026-12-04 22:00-22:45: urgent requests on `notifications.requests.urgent` (the bench XADDs them where",
    "  `message_requested()` puts them; `BENCH_NOTIF_URGENT_STREAM=0`: with the others), their first attempt made",
    "  in the consumer's transaction (no commit, wake-up and claim by the urgent lane on the way), webhooks in an",
    "  HTTP pool of their own, the idle timer poller gone, and contact cards and ordinary requests waiting while",
    "  urgent work is under way. py-spy at load 1.7: the main thread's samples 24% the consumers (shared/messaging),",
    "  21% SMS hand-overs (httpx), 18% FastStream's reads; the service's CPU 55% of a core (HEAD 56-71% in the same",
    "  hour). At load 3-4 the goal is met before and after (HEAD p99 137 ms, median of three); at load 11-15 it is",
    "  missed by both (the service gets 16-23% of a core): the medians of the phases then add up to 233-499 ms",
    "  (HEAD 347-999 ms at load 13), still mostly the event loop's queue, shared with ordinary traffic. Last",
    "  run (22:45, load 7.8 falling to 5.1): p99 566, 109, 64 ms (p50 110, 27, 14), 181 messages/s.",
]


def _pct(values: list[float], p: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1] if p < 100 else max(values)


async def figures(cfg: BenchConfig, rid: str, redis: Redis, say) -> list[Figure]:
    n = NotifConfig()
    say(f"notifications: {cfg.repeat} x ({n.messages} SMS requests; {n.urgent} urgent events every "
        f"{n.urgent_every:.2f} s with {n.rate:,.0f} events/s of other traffic)")
    return await NotificationsBench(cfg, rid, redis, say).run()


def section(cfg: BenchConfig, figs: list[Figure], started: datetime, seconds: float, load: str) -> str:
    """This bench's part of docs/benchmarks.md, kept apart so that a run of it alone leaves the rest."""
    n = NotifConfig()
    out = [
        "## Notifications",
        "",
        f"Run of {started.astimezone(UTC):%Y-%m-%d %H:%M} UTC ({seconds:.0f} s, load average at start {load}); "
        f"medians of {cfg.repeat} runs, Shouhu and raw interleaved.",
        "",
        *results(figs),
        "",
        *FINDINGS,
        "",
        "What is measured:",
        "",
        f"- **Messages rendered and handed to channels**: {n.messages:,} `notifications.message.requested` envelopes",
        "  (`absence_notice` to a child's guardian, one SMS each) pre-filled on a fresh namespaced",
        "  `notifications.requests`; the contact cards are in the service's database beforehand. The service",
        "  (`python -m services.notifications`, production settings, quiet hours off) starts with its group at the",
        "  end of the stream, which is rewound to 0 once it answers `/health`. The clock runs from the first delivery",
        "  until every delivery is `delivered`: planned, its attempt fired, the template rendered, the SMS accepted by",
        "  the SMS simulator (`python -m services.notifications.sms_simulator`, its own process), the row updated;",
        f"  at most {n.seconds:.0f} s. Raw baseline, in the bench process on the same entries: XREADGROUP (batch",
        f"  {cfg.batch_size}), one SELECT of the batch's children's names, `str.format` of the same text (checked equal",
        "  to the template's), one INSERT per batch (requests and deliveries rows, in a database migrated with the",
        "  service's schema), XACK. It hands nothing to a channel: no HTTP call, no attempt bookkeeping.",
        f"- **Urgent event to signed webhook**: {n.urgent} `violence_report` requests (urgency `urgent`, to the",
        f"  county's public security, reached by signed webhook) XADDed every {n.urgent_every:.2f} s; the time from",
        "  just before each XADD until a webhook receiver in the bench process (plain asyncio HTTP, keep-alive)",
        "  has the request, its signature verified. Meanwhile a paced producer puts",
        f"  {n.rate:,.0f} events/s on the streams the service reads ({100 * n.requests_share:.0f}% normal",
        "  `absence_notice` requests, SMS to guardians; the rest `registry.child.contacts` cards). Raw baseline:",
        "  the same traffic and urgent events, XREADGROUP on both streams, for an urgent one the same signed POST",
        "  (httpx, one kept connection), XACK.",
        "",
        f"Knobs: `BENCH_NOTIF_MESSAGES` ({n.messages}), `BENCH_NOTIF_SECONDS` ({n.seconds:.0f}), `BENCH_NOTIF_RATE`",
        f"({n.rate:.0f}), `BENCH_NOTIF_REQUESTS_SHARE` ({n.requests_share}), `BENCH_NOTIF_URGENT` ({n.urgent}),",
        f"`BENCH_NOTIF_URGENT_EVERY` ({n.urgent_every}), `BENCH_NOTIF_GOAL_MS` ({n.goal_ms:.0f}), and `BENCH_REPEAT`;",
        "`BENCH_ONLY=notifications` runs this part alone and rewrites only this section.",
    ]
    return "\n".join(out)
