"""One settings object for every service (pydantic-settings, prefix ``SHOUHU_``)."""

from __future__ import annotations

import os
import socket
from functools import lru_cache
from typing import Literal

from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SERVICES = ("registry", "visits", "notifications", "reporting")
SERVICE_PORTS = {"registry": 8001, "visits": 8002, "notifications": 8003, "reporting": 8004}

# Only for SHOUHU_ENV=dev: `make run` on a laptop must work without a secret.
DEV_JWT_SECRET = "shouhu-development-key-not-for-production"


def _default_db(service: str) -> str:
    return f"postgresql+asyncpg://postgres@localhost:5432/shouhu_{service}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SHOUHU_", extra="ignore")

    env: Literal["dev", "test", "prod"] = "dev"
    redis_url: str = "redis://localhost:6379/0"
    registry_database_url: str = _default_db("registry")
    visits_database_url: str = _default_db("visits")
    notifications_database_url: str = _default_db("notifications")
    reporting_database_url: str = _default_db("reporting")

    jwt_secret: str = ""
    jwt_issuer: str = "shouhu"
    jwt_audience: str = "shouhu"
    # Tokens live at most this long (exp - iat): a stolen token is worth a working day, not a month.
    jwt_max_ttl_minutes: int = 480
    # An OIDC issuer's key set (JWKS URL): tokens are then verified with its keys (RS256/ES256), not the secret.
    jwt_jwks_url: str = ""
    # Keys the registry's HMAC of resident ID numbers (lookup without storing them in clear).
    id_hash_key: str = ""
    # Seal resident ID numbers at rest in the registry (shared.crypto.KeyRing: "id:base64key,...", oldest
    # first, the newest seals); unset outside production: one key derived from the JWT secret.
    id_encryption_keys: str = ""
    # Closed archives are de-identified this many days after closing (`shouhu registry purge-closed`).
    retention_days: int = 1095
    # Requests per minute one user (token subject) may make to a service; 0: no limit.
    rate_limit_per_minute: int = 600

    http_host: str = "127.0.0.1"
    http_port: int | None = None  # default: the service's own port (8001-8004)
    log_format: Literal["json", "console"] = "json"
    log_level: str = "INFO"

    # Browser origins that may call the APIs (the field app, served by visits at /app/, calls the
    # registry and reporting from its own origin): comma-separated. Unset: the app's local origin
    # outside production, none in production.
    cors_origins: str | None = None
    # Where the field app finds the APIs it calls cross-origin: "registry=URL,reporting=URL".
    # Unset ones are the page's own host on the service's port (8001, 8004).
    field_app_apis: str = ""

    # Prepended to every stream name: isolates tests and demo runs sharing one Redis.
    stream_namespace: str = ""
    consumer_name: str = ""
    consumer_batch_size: int = 200
    consumer_block_ms: int = 200
    # Pending entries idle this long belong to a dead or stuck consumer and are claimed.
    claim_min_idle_ms: int = 30_000
    claim_interval_ms: int = 500
    # Deliveries (XPENDING times_delivered) before an entry goes to <stream>.dlq.
    max_deliveries: int = 5

    outbox_batch_size: int = 500
    # A commit that writes to the outbox wakes its relay at once: the poll only finds what no wake announced
    # (rows left by a process that died), so it can be slow and cost an idle service nothing much.
    outbox_poll_ms: int = 500
    timer_poll_ms: int = 1000

    @model_validator(mode="after")
    def _secrets(self) -> "Settings":
        if not self.jwt_secret and not self.jwt_jwks_url:
            if self.env != "dev":
                raise ValueError("SHOUHU_JWT_SECRET must be set unless SHOUHU_ENV=dev")
            self.jwt_secret = DEV_JWT_SECRET
        if self.env == "prod" and self.jwt_secret == DEV_JWT_SECRET:
            raise ValueError("SHOUHU_JWT_SECRET: the development key is refused in production")
        if not self.id_hash_key and self.env != "prod":
            self.id_hash_key = self.jwt_secret  # in production only the registry needs it: its spec requires it
        return self

    @property
    def allowed_origins(self) -> list[str]:
        if self.cors_origins is None:
            if self.env == "prod":
                return []
            port = SERVICE_PORTS["visits"]
            return [f"http://127.0.0.1:{port}", f"http://localhost:{port}"]
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]

    def database_url(self, service: str) -> str:
        if service not in SERVICES:
            raise ValueError(f"unknown service {service!r}; expected one of {SERVICES}")
        return getattr(self, f"{service}_database_url")

    def stream(self, name: str) -> str:
        return f"{self.stream_namespace}{name}"

    def consumer(self, service: str) -> str:
        return self.consumer_name or f"{service}-{socket.gethostname()}-{os.getpid()}"


@lru_cache
def get_settings() -> Settings:
    return Settings()
