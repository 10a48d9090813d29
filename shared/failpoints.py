"""Failpoints: named places where a test can make this process die with SIGKILL.

``SHOUHU_FAILPOINTS="outbox.before_xadd"`` kills the process the first time it
reaches that place; ``name@3`` on the third time. This makes the crash tests
deterministic (kill -9 exactly between commit and XADD) instead of racing a
timer; unset, a failpoint costs one dict lookup.
"""

from __future__ import annotations

import os
import signal
import sys

_armed: dict[str, int] = {}
for _spec in filter(None, os.environ.get("SHOUHU_FAILPOINTS", "").split(",")):
    _name, _, _nth = _spec.strip().partition("@")
    _armed[_name] = int(_nth or 1)


def failpoint(name: str) -> None:
    remaining = _armed.get(name)
    if remaining is None:
        return
    if remaining > 1:
        _armed[name] = remaining - 1
        return
    print(f"failpoint {name}: SIGKILL", file=sys.stderr, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
