"""What every export (xlsx, csv) does to its cells: text a spreadsheet would run as a formula is written
as text (CSV/formula injection, OWASP), so a name like "=HYPERLINK(...)" stays a name."""

from __future__ import annotations

from typing import Any

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: Any) -> Any:
    """A text cell starting like a formula, prefixed with ' (shown as typed, never evaluated)."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value
