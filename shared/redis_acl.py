"""Redis ACL file for a deployment (docker compose runs it once before Redis starts).

The default user is off. Each service gets a user that may touch only the streams its spec names:
append to what it publishes, read in its consumer group what it subscribes to, and move entries to
those streams' DLQs. Reporting, which must never see a name, cannot read ``registry.contacts``.
Each agency's user comes from ``services.notifications.acl`` (its own ``to-agency.<code>`` to read,
``from-agency.<code>`` to write). Passwords are read from the environment
(``REDIS_<SERVICE>_PASSWORD``; the agencies' are derived from the agency key) and written only
as SHA-256 hashes.

    python -m shared.redis_acl --out /run/shouhu-acl/users.acl
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import os
import sys

from shared.settings import SERVICES

# (CLIENT SETINFO is Redis 7.2; redis-py carries on when 7.0 refuses it.)
CONNECT = ("+ping", "+hello", "+auth", "+client|setname", "+info")
# A consumer group's reader, with the claimer (XAUTOCLAIM) and what metrics and `shouhu status` read.
READ = ("+xreadgroup", "+xack", "+xautoclaim", "+xclaim", "+xpending", "+xgroup|create", "+xgroup|createconsumer",
        "+xinfo|groups", "+xinfo|stream", "+xlen", "+xrange")
# The DLQ: entries moved in, listed and replayed (`shouhu dlq`).
DLQ = ("+xadd", "+xlen", "+xrange", "+xdel")


def password_variable(service: str) -> str:
    return f"REDIS_{service.upper()}_PASSWORD"


def service_streams(service: str) -> tuple[list[str], list[str]]:
    """(streams it reads, streams it writes) from the service's spec; a per-agency stream becomes a pattern."""
    spec = importlib.import_module(f"services.{service}.app").SPEC
    reads = sorted({sub.stream for sub in spec.subscriptions()})
    writes = sorted({et.stream.replace("{agency_code}", "*") for et in spec.publishes})
    return reads, writes


def service_rules(service: str, password: str, namespace: str = "") -> tuple[str, ...]:
    reads, writes = service_streams(service)
    selectors = [f"(~{namespace}{s} {' '.join(READ)})" for s in reads]
    selectors += [f"(~{namespace}{s}.dlq {' '.join(DLQ)})" for s in reads]
    if writes:
        selectors.append(f"({' '.join('~' + namespace + s for s in writes)} +xadd +xlen)")
    return ("reset", "on", "#" + hashlib.sha256(password.encode()).hexdigest(), "-@all", *CONNECT, *selectors)


def acl_lines(passwords: dict[str, str], namespace: str = "") -> list[str]:
    from services.notifications.acl import agency_users
    from services.notifications.config import NotificationsConfig

    lines = ["user default off resetpass -@all"]
    lines += [f"user {s} {' '.join(service_rules(s, passwords[s], namespace))}" for s in SERVICES]
    lines += [u.line() for u in agency_users(NotificationsConfig(), namespace=namespace)]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description="Write the Redis ACL file (default user off, a user per service and agency).")
    parser.add_argument("--out", help="file to write (default: standard output)")
    parser.add_argument("--namespace", default="", help="stream-name prefix (SHOUHU_STREAM_NAMESPACE), if any")
    args = parser.parse_args()
    missing = [password_variable(s) for s in SERVICES if not os.environ.get(password_variable(s))]
    if missing:
        sys.exit(f"set {', '.join(missing)} (see .env.example)")
    text = "\n".join(acl_lines({s: os.environ[password_variable(s)] for s in SERVICES}, args.namespace)) + "\n"
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
