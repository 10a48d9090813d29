"""Redis ACL users for the agencies, generated from the agencies file.

Each agency's user may read (and acknowledge, in its own consumer groups) only
its ``to-agency.<code>`` stream, and append only to its ``from-agency.<code>``
stream; nothing else. Passwords are derived from the agency key and appear in
the file only as SHA-256 hashes.

    python -m services.notifications.acl > agencies.acl     # then: aclfile / ACL LOAD
    python -m services.notifications.acl --password-for edu-410523
"""

from __future__ import annotations

import argparse
import hashlib
from dataclasses import dataclass

from services.notifications.config import Agency, NotificationsConfig
from shared.contracts.agency_v1 import from_agency, to_agency

# Reading a stream in a consumer group (XREADGROUP, XACK, claiming) writes only group state.
READ_COMMANDS = (
    "+xreadgroup", "+xack", "+xread", "+xrange", "+xrevrange", "+xlen", "+xpending", "+xclaim", "+xautoclaim",
    "+xinfo|stream", "+xinfo|groups", "+xinfo|consumers", "+xgroup|create", "+xgroup|createconsumer",
)


@dataclass(frozen=True)
class AclUser:
    name: str
    rules: tuple[str, ...]

    def line(self) -> str:
        return f"user {self.name} {' '.join(self.rules)}"


def agency_user(agency: Agency, password: str, *, namespace: str = "", user_prefix: str = "agency-") -> AclUser:
    read_key, write_key = namespace + to_agency(agency.code), namespace + from_agency(agency.code)
    return AclUser(
        name=f"{user_prefix}{agency.code}",
        rules=(
            "reset", "on", "#" + hashlib.sha256(password.encode()).hexdigest(),
            "-@all", "+ping", "+hello", "+client|setname",
            # Selectors (Redis 7): each grants its commands on its key only.
            f"({' '.join(('~' + read_key, *READ_COMMANDS))})",
            f"(%W~{write_key} +xadd)",
        ),
    )


def agency_users(config: NotificationsConfig, *, namespace: str = "", user_prefix: str = "agency-") -> list[AclUser]:
    return [
        agency_user(a, config.agency_secret("redis", a.code), namespace=namespace, user_prefix=user_prefix)
        for a in config.agencies().streaming()
    ]


def main() -> None:
    from shared.settings import get_settings

    parser = argparse.ArgumentParser(description="Redis ACL users for the agencies (from the agencies file).")
    parser.add_argument("--password-for", metavar="CODE", help="print this agency's Redis password instead")
    args = parser.parse_args()
    config = NotificationsConfig()
    if args.password_for:
        print(config.agency_secret("redis", args.password_for))
        return
    for user in agency_users(config, namespace=get_settings().stream_namespace):
        print(user.line())


if __name__ == "__main__":
    main()
