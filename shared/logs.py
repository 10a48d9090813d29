"""Structured logging. JSON in production; personal data is never logged.

Code logs ids and event types, never payloads. As a second line of defence a
filter masks anything shaped like a resident ID number or a mainland phone.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime

from shared.correlation import correlation_id

_ID_NUMBER = re.compile(r"(?<!\d)\d{17}[\dXx](?!\d)")
_PHONE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")


def redact(text: str) -> str:
    return _PHONE.sub("[phone]", _ID_NUMBER.sub("[id-number]", text))


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if (flow := correlation_id.get()) is not None:
            entry["correlation_id"] = str(flow)
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return redact(json.dumps(entry, ensure_ascii=False, default=str))


class _ConsoleFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = " ".join(f"{k}={v}" for k, v in getattr(record, "fields", {}).items())
        return redact(f"{super().format(record)} {fields}".rstrip())


def configure_logging(fmt: str = "json", level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        _JsonFormatter()
        if fmt == "json"
        else _ConsoleFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def log_fields(**fields: object) -> dict[str, dict[str, object]]:
    """``log.info("applied", extra=log_fields(event_id=...))``."""
    return {"fields": fields}
