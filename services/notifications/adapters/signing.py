"""Signed webhooks: how notifications signs, and how an agency verifies.

Agencies may copy this file as it is: it needs only the Python standard library.
The signature is HMAC-SHA256, keyed with the agency's webhook secret, over
``<timestamp>.<body>`` (the exact bytes received); the timestamp (Unix seconds)
is signed too, so that a captured request cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

TIMESTAMP_HEADER = "X-Shouhu-Timestamp"
SIGNATURE_HEADER = "X-Shouhu-Signature"  # "v1=<hex>"
DELIVERY_HEADER = "X-Shouhu-Delivery"  # the message id: the same on every retry, for de-duplication


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def signed_headers(secret: str, body: bytes, delivery_id: str, now: float | None = None) -> dict[str, str]:
    ts = int(time.time() if now is None else now)
    return {
        TIMESTAMP_HEADER: str(ts),
        SIGNATURE_HEADER: signature(secret, ts, body),
        DELIVERY_HEADER: delivery_id,
        "Content-Type": "application/json; charset=utf-8",
    }


def verify(secret: str, headers: Mapping[str, str], body: bytes, *, tolerance_s: int = 300, now: float | None = None) -> bool:
    """True when ``body`` was signed with ``secret`` less than ``tolerance_s`` ago."""
    lower = {k.lower(): v for k, v in headers.items()}
    try:
        ts = int(lower[TIMESTAMP_HEADER.lower()])
        given = lower[SIGNATURE_HEADER.lower()]
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - ts) > tolerance_s:
        return False
    return hmac.compare_digest(given, signature(secret, ts, body))
