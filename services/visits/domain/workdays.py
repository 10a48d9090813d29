"""Working days (工作日) of a county: deadlines in working days skip weekends and the county's
holidays, and count the weekend days the State Council's holiday notice makes working days (调休).
The calendar is data: each county's holidays and working weekend days are rows, set by its office."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from shared.clock import CHINA, end_of_day


@dataclass(frozen=True)
class Calendar:
    holidays: frozenset[date] = field(default_factory=frozenset)
    working_weekend_days: frozenset[date] = field(default_factory=frozenset)  # 调休上班

    def is_working_day(self, day: date) -> bool:
        if day in self.holidays:
            return False
        return day.weekday() < 5 or day in self.working_weekend_days


def working_days_after(start: datetime, n: int, calendar: Calendar) -> datetime:
    """The end (local midnight) of the ``n``-th working day after the day of ``start``."""
    day = start.astimezone(CHINA).date()
    counted = 0
    while counted < n:
        day += timedelta(days=1)
        if calendar.is_working_day(day):
            counted += 1
    return end_of_day(day)
