"""Local servers for the channels (SMTP, SMS provider, webhook receiver), an
agencies file pointing at them, and a notifier driven with a clock the test sets."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import text

from services.notifications.adapters.orm import outbox, timers
from services.notifications.adapters.signing import DELIVERY_HEADER, verify
from services.notifications.app import build_notifier
from services.notifications.config import NotificationsConfig
from services.notifications.service_layer.handlers import ATTEMPT, URGENT_ATTEMPT
from services.notifications.service_layer.unit_of_work import NotificationsUnitOfWork
from services.notifications.sms_simulator import SmsSimulator
from shared.db import make_sessionmaker
from shared.outbox import Outbox
from shared.timers import BatchTimerPoller
from tests.infra import free_port
from tests.integration.notifications.helpers import AGENCY_KEY, CIVIL_AFFAIRS, COUNTY, EDUCATION, POLICE



class Mailbox:
    """aiosmtpd handler: keeps what it accepts; refuses recipients at bounce.example."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], bytes]] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.endswith("@bounce.example"):
            return "550 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


class WebhookReceiver:
    """An agency's HTTP endpoint: answers ``script`` statuses in turn (then 200),
    records every request and whether its signature verified."""

    def __init__(self, secret: str) -> None:
        self.secret, self.script, self.requests = secret, [], []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = receiver.script.pop(0) if receiver.script else 200
                receiver.requests.append({
                    "status": status, "body": json.loads(body), "delivery": self.headers[DELIVERY_HEADER],
                    "verified": verify(receiver.secret, dict(self.headers), body),
                })
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/shouhu"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def accepted(self) -> list[dict]:
        return [r for r in self.requests if r["status"] == 200]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def mailbox():
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    box.port = controller.port
    yield box
    controller.stop()


@pytest.fixture
def sms():
    sim = SmsSimulator(key="test-sms-key").start()
    yield sim
    sim.stop()


@pytest.fixture
def webhook():
    receiver = WebhookReceiver(NotificationsConfig(agency_key=AGENCY_KEY).agency_secret("webhook", POLICE))
    yield receiver
    receiver.close()


@pytest.fixture
def config(tmp_path, mailbox, sms, webhook) -> NotificationsConfig:
    """Three agencies of the county: education by stream then e-mail, police by webhook then
    e-mail, civil affairs by e-mail only (to a mailbox that refuses)."""
    agencies = tmp_path / "agencies.json"
    agencies.write_text(json.dumps([
        {"code": EDUCATION, "kind": "education_bureau", "region": COUNTY, "name": "汤阴县教育局",
         "channels": ["agency_stream", "email"], "email": "jyj@edu.example"},
        {"code": POLICE, "kind": "public_security", "region": COUNTY, "name": "汤阴县公安局",
         "channels": ["webhook", "email"], "webhook_url": webhook.url, "email": "gaj@police.example"},
        {"code": CIVIL_AFFAIRS, "kind": "civil_affairs", "region": COUNTY, "name": "汤阴县民政局",
         "channels": ["email"], "email": "mz@bounce.example"},
    ], ensure_ascii=False), encoding="utf-8")
    return NotificationsConfig(
        smtp_port=mailbox.port, sms_url=sms.url, sms_key="test-sms-key", agency_key=AGENCY_KEY, send_timeout_s=5,
        agencies_file=agencies,
    )


SHANGHAI = ZoneInfo("Asia/Shanghai")


def local_time(hour: int, minute: int = 0) -> datetime:
    """Yesterday at hour:minute in China: daytime or night as a test needs, and
    already past, so timers due then are due for the service's own poller too."""
    yesterday = datetime.now(SHANGHAI) - timedelta(days=1)
    return yesterday.replace(hour=hour, minute=minute, second=0, microsecond=0)


@pytest.fixture
def clock() -> Clock:
    return Clock(local_time(10))


@pytest.fixture
async def driven(config, clock, settings, engines):
    """The notifier with the test's clock, its unit of work and a poller of attempts on the same clock.
    Timers other tests left in this worker's database are put aside first."""
    engine = engines["notifications"]
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE timers SET fired_at = now() WHERE fired_at IS NULL"))
    notifier = build_notifier(config, clock)
    sessions = make_sessionmaker(engine)

    def uow() -> NotificationsUnitOfWork:
        return NotificationsUnitOfWork(sessions, Outbox(outbox, "notifications", settings.stream_namespace))

    return notifier, uow, attempts(notifier, uow, clock)


def attempts(notifier, uow, clock) -> BatchTimerPoller:
    """Both lanes' attempts, fired on the test's clock."""
    return BatchTimerPoller(timers, uow, [ATTEMPT, URGENT_ATTEMPT], notifier.attempter(), now=clock)
