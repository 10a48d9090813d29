"""The channels behind one interface: ``send`` returns when the message is handed
over, raises ``SendError`` (permanent or not) when it is not.

SMS, e-mail and webhooks talk to the outside; the agency stream and the inbox
write into the delivery's own transaction (the outbox, the delivery row).
"""

from __future__ import annotations

import asyncio
import smtplib
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Protocol
from uuid import UUID

import httpx

from services.notifications.adapters.signing import signed_headers
from shared.contracts.agency_v1 import AGENCY_MESSAGE, AgencyMessage, for_agency
from shared.contracts.notifications_v1 import Channel


class SendError(Exception):
    def __init__(self, reason: str, *, permanent: bool) -> None:
        super().__init__(reason)
        self.reason, self.permanent = reason, permanent


@dataclass(frozen=True)
class Outgoing:
    delivery_id: UUID
    address: str  # phone, e-mail address, webhook URL, agency code or user id, by channel
    subject: str
    text: str
    agency_message: AgencyMessage | None = None  # for agencies: the structured message


# Channels that write into the attempts' own transaction: one at a time (its session is not shared
# between tasks); the others are handed messages concurrently.
IN_TRANSACTION = frozenset({Channel.agency_stream, Channel.inbox})


class ChannelAdapter(Protocol):
    async def send(self, uow, message: Outgoing) -> None: ...


def _classify(response: httpx.Response, what: str) -> None:
    """2xx: handed over. 408, 429 and 5xx: try again later. Any other 4xx: the
    request itself is refused (a bad number, a rejected body), so retrying is useless."""
    if response.is_success:
        return
    status = response.status_code
    permanent = 400 <= status < 500 and status not in (408, 429)
    detail = ""
    if permanent and response.headers.get("content-type", "").startswith("application/json"):
        detail = f" {response.json().get('error', '')}".rstrip()
    raise SendError(f"{what} answered {status}{detail}", permanent=permanent)


class HttpPoster:
    """One HTTP client for the channels that POST, kept: building a client loads the CA bundle
    (tens of milliseconds), which per message was most of a delivery's time."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._client: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def post(self, url: str, what: str, **kwargs) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a client's connections belong to the event loop that opened them
            self._client, self._loop = httpx.AsyncClient(timeout=self.timeout), loop
        try:
            response = await self._client.post(url, **kwargs)
        except httpx.HTTPError as exc:
            raise SendError(f"{what} unreachable: {type(exc).__name__}", permanent=False) from None
        _classify(response, what)


class SmsChannel:
    """A provider's HTTP API: POST {url}/v1/messages {"to", "text", "ref"} with a bearer key."""

    def __init__(self, url: str, key: str, http: HttpPoster) -> None:
        self.url, self.key, self.http = url.rstrip("/") + "/v1/messages", key, http

    async def send(self, uow, message: Outgoing) -> None:
        body = {"to": message.address, "text": message.text, "ref": str(message.delivery_id)}
        await self.http.post(self.url, "SMS provider", json=body, headers={"Authorization": f"Bearer {self.key}"})


class WebhookChannel:
    """POST the AgencyMessage as JSON, signed with the agency's secret (adapters/signing.py)."""

    def __init__(self, secret_for: Callable[[str], str], http: HttpPoster) -> None:
        self.secret_for, self.http = secret_for, http

    async def send(self, uow, message: Outgoing) -> None:
        agency = message.agency_message
        body = agency.model_dump_json().encode()
        headers = signed_headers(self.secret_for(agency.agency_code), body, str(message.delivery_id))
        await self.http.post(message.address, "webhook", content=body, headers=headers)


class EmailChannel:
    """SMTP with the standard library, in a thread (no async SMTP client is installed)."""

    def __init__(self, host: str, port: int, sender: str, timeout: float) -> None:
        self.host, self.port, self.sender, self.timeout = host, port, sender, timeout

    async def send(self, uow, message: Outgoing) -> None:
        mail = EmailMessage()
        mail["From"], mail["To"], mail["Subject"] = self.sender, message.address, message.subject
        # One Message-ID per delivery: a retry after a lost reply is recognisable as the same mail.
        mail["Message-ID"] = make_msgid(idstring=str(message.delivery_id), domain="shouhu")
        mail.set_content(message.text)
        await asyncio.to_thread(self._send, mail)

    def _send(self, mail: EmailMessage) -> None:
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                smtp.send_message(mail)
        except smtplib.SMTPRecipientsRefused as exc:
            code = next(iter(exc.recipients.values()))[0]
            raise SendError(f"SMTP refused the recipient ({code})", permanent=code >= 500) from None
        except smtplib.SMTPResponseException as exc:
            raise SendError(f"SMTP answered {exc.smtp_code}", permanent=exc.smtp_code >= 500) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise SendError(f"SMTP unreachable: {type(exc).__name__}", permanent=False) from None


class AgencyStreamChannel:
    """XADD to ``to-agency.<code>`` through the outbox, in the delivery's transaction."""

    async def send(self, uow, message: Outgoing) -> None:
        agency = message.agency_message
        await uow.emit(
            for_agency(AGENCY_MESSAGE, agency.agency_code), agency, aggregate_id=str(message.delivery_id),
            aggregate_version=1, region_code=agency.region_code,
        )


class InboxChannel:
    """The delivery row, with its rendered text, is the inbox entry: nothing more to hand over."""

    async def send(self, uow, message: Outgoing) -> None:
        return None


def build_channels(config, secret_for: Callable[[str], str]) -> dict[Channel, ChannelAdapter]:
    t = config.send_timeout_s
    # A client (a pool of connections) per channel: httpcore looks at every connection of its pool on each
    # request, so the webhooks (agencies, urgent reports) do not pay for the dozens of SMS connections kept
    # open, nor wait for the pool behind them.
    return {
        Channel.sms: SmsChannel(config.sms_url, config.sms_key, HttpPoster(t)),
        Channel.email: EmailChannel(config.smtp_host, config.smtp_port, config.smtp_sender, t),
        Channel.webhook: WebhookChannel(secret_for, HttpPoster(t)),
        Channel.agency_stream: AgencyStreamChannel(),
        Channel.inbox: InboxChannel(),
    }
