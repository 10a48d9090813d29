"""Assessment windows (考核周期): calendar month, quarter, year, the county's
school terms (学期) with their start, middle and end parts (期初、期中、期末), and
rolling windows (滚动周期) of N days that follow a child's contacts.

Dates are local (China Standard Time, no daylight saving); a window's deadline
is the midnight after its last day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone

from shared.contracts.visits_v1 import WindowKind

CHINA = timezone(timedelta(hours=8), "CST")


def today_local(now: datetime | None = None) -> date:
    return (now or datetime.now(UTC)).astimezone(CHINA).date()


@dataclass(frozen=True, order=True)
class Term:
    """A school term of a county; ``end`` is its last day."""

    start: date
    end: date


@dataclass(frozen=True)
class Window:
    kind: WindowKind
    start: date
    end: date  # last day, inclusive

    @property
    def key(self) -> str:
        """Names the window for its timer and its overdue guard; a rolling window also by its length,
        so a county changing N gives the child a new window rather than the old one's key."""
        key = f"{self.kind.value}:{self.start.isoformat()}"
        return f"{key}+{(self.end - self.start).days + 1}d" if self.kind is WindowKind.rolling else key

    @property
    def deadline(self) -> datetime:
        """When the window has ended: the local midnight after its last day."""
        return datetime.combine(self.end + timedelta(days=1), time(0), CHINA)

    def contains(self, day: date) -> bool:
        return self.start <= day <= self.end


def default_terms(year: int) -> list[Term]:
    """Used where a county has not set its term dates: spring 20 Feb - 10 Jul, autumn 1 Sep - 20 Jan."""
    return [Term(date(year, 2, 20), date(year, 7, 10)), Term(date(year, 9, 1), date(year + 1, 1, 20))]


def county_terms(explicit: list[Term], around: date) -> list[Term]:
    """The county's own terms, and the default ones (years around ``around``) that none of them overlaps."""
    defaults = [t for y in range(around.year - 2, around.year + 3) for t in default_terms(y)]
    kept = [d for d in defaults if not any(d.start <= e.end and e.start <= d.end for e in explicit)]
    return sorted([*explicit, *kept])


def _month_end(year: int, month: int) -> date:
    return (date(year + month // 12, month % 12 + 1, 1)) - timedelta(days=1)


def _term_parts(term: Term) -> list[tuple[date, date]]:
    days = (term.end - term.start).days + 1
    cuts = [term.start + timedelta(days=days * i // 3) for i in range(4)]
    return [(cuts[i], cuts[i + 1] - timedelta(days=1)) for i in range(3)]


def rolling_window(anchor: date, days: int) -> Window:
    """滚动周期: the ``days`` days after ``anchor`` (the last qualifying contact, or the day the rule began
    to bind the child); a contact on the last of them still keeps the rule."""
    return Window(WindowKind.rolling, anchor + timedelta(days=1), anchor + timedelta(days=days))


def window_at_or_after(kind: WindowKind, day: date, terms: list[Term]) -> Window:
    """The calendar window of ``kind`` that contains ``day``; for terms, the next one when ``day`` is in a
    holiday. A rolling window depends on the child's contacts: see ``rolling_window``."""
    if kind is WindowKind.rolling:
        raise ValueError("a rolling window follows the child's contacts, not the calendar")
    if kind is WindowKind.month:
        return Window(kind, day.replace(day=1), _month_end(day.year, day.month))
    if kind is WindowKind.quarter:
        first = 3 * ((day.month - 1) // 3) + 1
        return Window(kind, date(day.year, first, 1), _month_end(day.year, first + 2))
    if kind is WindowKind.year:
        return Window(kind, date(day.year, 1, 1), date(day.year, 12, 31))
    for term in terms:
        if term.end < day:
            continue
        if kind is WindowKind.term:
            return Window(kind, term.start, term.end)
        for start, end in _term_parts(term):
            if end >= day:
                return Window(kind, start, end)
    raise ValueError(f"no term on or after {day}")


def window_containing(kind: WindowKind, day: date, terms: list[Term]) -> Window | None:
    """The window of ``kind`` that contains ``day``; None in a school holiday."""
    window = window_at_or_after(kind, day, terms)
    return window if window.contains(day) else None


def next_window(window: Window, terms: list[Term]) -> Window:
    return window_at_or_after(window.kind, window.end + timedelta(days=1), terms)


def previous_window(window: Window, terms: list[Term]) -> Window | None:
    """The window of the same kind that ended before ``window`` began (None before the first known term)."""
    day = window.start - timedelta(days=1)
    if window.kind in (WindowKind.term, WindowKind.term_part):
        earlier = [t for t in terms if t.start <= day]
        if not earlier:
            return None
        day = min(day, earlier[-1].end)
    return window_containing(window.kind, day, terms)
