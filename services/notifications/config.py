"""Configuration of notifications: channels, quiet hours, retries, and the agencies.

Environment variables ``SHOUHU_NOTIFICATIONS_*``. The agencies (per county:
code, kind, channels, webhook URL, e-mail) and the templates are data files,
edited without code; the defaults describe a demo county (汤阴县, 410523).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import time
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.notifications.domain.model import QuietHours, RetryPolicy
from shared.contracts.agency_v1 import CODE_PATTERN
from shared.contracts.notifications_v1 import AgencyKind, Channel

# Only outside production: demos and tests must run without a secret.
DEV_AGENCY_KEY = "shouhu-development-agency-key"
DEFAULTS = Path(__file__).resolve().parent / "defaults"

DEFAULT_RETRIES = {
    Channel.sms: RetryPolicy(max_attempts=4, first_delay_s=60),
    Channel.email: RetryPolicy(max_attempts=5, first_delay_s=120),
    Channel.webhook: RetryPolicy(max_attempts=6, first_delay_s=30),
    # Writes into our own database: a failure is an outage, retried soon.
    Channel.agency_stream: RetryPolicy(max_attempts=10, first_delay_s=10),
    Channel.inbox: RetryPolicy(max_attempts=10, first_delay_s=10),
}


class Agency(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=CODE_PATTERN)
    kind: AgencyKind
    region: str = Field(pattern=r"^(\d{6}|\d{9})$", description="county (6 digits) or township (9) served")
    name: str
    channels: list[Channel] = Field(min_length=1, description="in order of preference")
    webhook_url: str | None = None
    email: str | None = None

    @model_validator(mode="after")
    def _reachable(self) -> "Agency":
        if Channel.webhook in self.channels and not self.webhook_url:
            raise ValueError(f"agency {self.code}: channel webhook needs webhook_url")
        if Channel.email in self.channels and not self.email:
            raise ValueError(f"agency {self.code}: channel email needs email")
        if not set(self.channels) <= {Channel.agency_stream, Channel.webhook, Channel.email}:
            raise ValueError(f"agency {self.code}: agencies are reached by agency_stream, webhook or email")
        return self


class Agencies:
    """The agencies of every county served, by code and by (kind, county)."""

    def __init__(self, agencies: list[Agency]) -> None:
        self.by_code = {a.code: a for a in agencies}
        if len(self.by_code) != len(agencies):
            raise ValueError("agency codes must be unique")
        self._by_place = {(a.kind, a.region): a for a in agencies}

    @classmethod
    def load(cls, path: Path) -> "Agencies":
        return cls([Agency.model_validate(a) for a in json.loads(path.read_text(encoding="utf-8"))])

    def find(self, kind: AgencyKind, region_code: str) -> Agency | None:
        """The agency of that kind for the place: the township's when there is one, else the county's."""
        return self._by_place.get((kind, region_code[:9])) or self._by_place.get((kind, region_code[:6]))

    def streaming(self) -> list[Agency]:
        return [a for a in self.by_code.values() if Channel.agency_stream in a.channels]


class NotificationsConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SHOUHU_NOTIFICATIONS_", extra="ignore")

    agencies_file: Path = DEFAULTS / "agencies.json"
    templates_file: Path = DEFAULTS / "templates.toml"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_sender: str = "shouhu@localhost"
    sms_url: str = "http://127.0.0.1:8090"
    sms_key: str = "dev-sms-key"
    send_timeout_s: float = 10
    # Messages handed at once to a channel that talks to the outside (SMS, e-mail, webhooks), per lane.
    send_concurrency: int = Field(16, ge=1)
    env: str = Field("dev", validation_alias="SHOUHU_ENV")
    # Keys each agency's webhook secret and Redis password (no secret sits in the agencies file).
    agency_key: str = ""
    timezone: str = "Asia/Shanghai"
    quiet_start: time = time(22, 0)
    quiet_end: time = time(7, 0)
    retries: dict[Channel, RetryPolicy] = DEFAULT_RETRIES

    def quiet_hours(self) -> QuietHours:
        return QuietHours(self.quiet_start, self.quiet_end, ZoneInfo(self.timezone))

    def agencies(self) -> Agencies:
        return Agencies.load(self.agencies_file)

    @model_validator(mode="after")
    def _key(self) -> "NotificationsConfig":
        if not self.agency_key:
            if self.env == "prod":
                raise ValueError("SHOUHU_NOTIFICATIONS_AGENCY_KEY must be set in production")
            self.agency_key = DEV_AGENCY_KEY
        return self

    def agency_secret(self, purpose: str, code: str) -> str:
        """The agency's ``webhook`` secret or ``redis`` password."""
        return hmac.new(self.agency_key.encode(), f"{purpose}:{code}".encode(), hashlib.sha256).hexdigest()
