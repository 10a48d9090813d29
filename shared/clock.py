"""Local time of the people using Shouhu: China Standard Time (UTC+8, no daylight saving).

Days (a deadline's last day, an agreement's valid-until date) are local days; a day has ended at
the local midnight after it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone

CHINA = timezone(timedelta(hours=8), "CST")


def today_local(now: datetime | None = None) -> date:
    return (now or datetime.now(UTC)).astimezone(CHINA).date()


def end_of_day(day: date) -> datetime:
    """The local midnight after ``day``: when a deadline on that day has passed."""
    return datetime.combine(day + timedelta(days=1), time(0), CHINA)
