"""What a child counts towards (统计口径), as pure rules on its current facts.

A child's facts give a set of labels (its left-behind type, guardian type, risk categories,
whether its archive is complete...). When an event changes the facts, the labels lost are
subtracted from every place the child counted in and the labels gained are added to every place
it counts in now: the rollups follow the events and a figure never scans history.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache

from services.reporting.domain.places import child_places

# 建档率: an archive is complete (档案完整) when it records each of these. The registry emits no
# sign of an ID number (it never leaves the registry), so the ID number cannot be one of them.
REQUIRED_FIELDS = {
    "guardian_relationship": ("监护人", "guardian"),
    "school_id": ("就读学校", "school"),
    "father_status": ("父亲去向", "father's whereabouts"),
    "mother_status": ("母亲去向", "mother's whereabouts"),
}
_UNKNOWN = (None, "", "unknown")


@dataclass(frozen=True)
class ChildState:
    """A child as reporting holds it (child_facts): no name, phone or ID number."""

    village_code: str
    left_behind_type: str
    gender: str = ""
    hukou_status: str = ""
    school_id: str | None = None
    father_status: str | None = None
    mother_status: str | None = None
    guardian_relationship: str | None = None
    risk_categories: tuple[str, ...] = ()
    enrolment_status: str | None = None
    out_since: date | None = None  # a registered dropout (辍学) not yet back
    unguarded_since: date | None = None
    agreement_until: date | None = None
    closed: bool = False

    @classmethod
    def of(cls, **values) -> "ChildState":
        risks = tuple(values.pop("risk_categories", None) or ())
        return cls(**values, risk_categories=risks)

    def changed(self, **values) -> "ChildState":
        if "risk_categories" in values:
            values["risk_categories"] = tuple(values["risk_categories"] or ())
        return ChildState(**{**self.__dict__, **values})  # replace() costs three times as much, per child of a run


def missing_fields(child: ChildState) -> list[str]:
    return [f for f in REQUIRED_FIELDS if getattr(child, f) in _UNKNOWN]


def labels(child: ChildState) -> set[str]:
    """The figures this child adds one to, in each of its places (none when closed or merged)."""
    return set(_labels(_label_key(child)))


def _label_key(child: ChildState) -> tuple:
    """What of a child its labels depend on: children of a census share a few dozen of these."""
    return (child.closed, child.left_behind_type, child.guardian_relationship, child.gender, child.risk_categories,
            child.school_id in _UNKNOWN, child.father_status in _UNKNOWN, child.mother_status in _UNKNOWN,
            child.unguarded_since is not None, child.agreement_until is not None,
            child.enrolment_status == "dropped_out")


@lru_cache(maxsize=4096)
def _labels(key: tuple) -> tuple[str, ...]:
    (closed, left_behind_type, guardian, gender, risks, no_school, no_father, no_mother,
     unguarded, agreement, out_of_school) = key
    if closed:
        return ()
    out = ["children", f"type:{left_behind_type}", f"guardian:{guardian or 'none'}", f"gender:{gender}",
           *(f"risk:{r}" for r in risks)]
    if not (guardian in _UNKNOWN or no_school or no_father or no_mother):  # missing_fields: none
        out.append("complete")
    if unguarded:
        out.append("unguarded")
    if agreement:
        out.append("agreement")
    if out_of_school:
        out.append("out_of_school")
    return tuple(dict.fromkeys(out))  # a risk named twice counts once, as in a set


def deltas(before: ChildState | None, after: ChildState | None) -> Counter[tuple[str, str]]:
    """(place, label) -> change in count, from a child's state before an event to after it."""
    return moves([(before, after)])


def moves(changes: Iterable[tuple[ChildState | None, ChildState | None]]) -> Counter[tuple[str, str]]:
    """(place, label) -> change in count, from many children's states before to after (None: not counted).
    Added up per home (village and school) first: a batch's children share homes, and each home's labels
    are spread over its places once. A child's labels are looked up by what they depend on (``_labels``)."""
    homes: dict[tuple[str, str | None], dict[str, int]] = {}  # plain dicts: a Counter's misses cost a call each
    for before, after in changes:
        for state, sign in ((after, 1), (before, -1)):
            if state is not None:
                home = homes.get((state.village_code, state.school_id))
                if home is None:
                    home = homes[state.village_code, state.school_id] = {}
                for label in _labels(_label_key(state)):
                    home[label] = home.get(label, 0) + sign
    change: dict[tuple[str, str], int] = {}
    for (village, school), counted in homes.items():
        places = _places(village, school)
        for label, n in counted.items():
            if n:
                for place in places:
                    key = place, label
                    change[key] = change.get(key, 0) + n
    return Counter({k: v for k, v in change.items() if v})


@lru_cache(maxsize=16384)
def _places(village: str, school: str | None) -> tuple[str, ...]:
    return tuple(child_places(village, school))


def enrolment_after_transfer(status: str | None, to_school_id: str | None) -> str | None:
    """The registry's rule: no school is 未入学; a new school puts a child not in one back in school."""
    if to_school_id is None:
        return "not_enrolled"
    if status in (None, "not_enrolled", "transferred"):
        return "in_school"
    return status


def month_of(day: date) -> date:
    return day.replace(day=1)


def median_from_counts(counts: dict[int, int]) -> float | None:
    """The median of values given as value -> how many times (the rollup keeps days to return so)."""
    total = sum(counts.values())
    if not total:
        return None
    ordered = sorted(counts.items())

    def nth(k: int) -> int:  # the k-th value, 0-based
        seen = 0
        for value, n in ordered:
            seen += n
            if k < seen:
                return value
        raise IndexError(k)

    return (nth((total - 1) // 2) + nth(total // 2)) / 2


@dataclass(frozen=True)
class Period:
    """A run of whole months, e.g. a quarter (季度) 2026Q4 = 2026-10-01 .. 2026-12-31."""

    start: date
    end: date  # last day
    label: str = field(default="")

    @property
    def months(self) -> list[date]:
        out, m = [], month_of(self.start)
        while m <= self.end:
            out.append(m)
            m = (m + timedelta(days=32)).replace(day=1)
        return out


def quarter(label: str) -> Period:
    """``2026Q4`` -> its period; a ValueError names what is wrong."""
    year, sep, q = label.upper().partition("Q")
    if not (sep and year.isdigit() and len(year) == 4 and q in ("1", "2", "3", "4")):
        raise ValueError("quarter must look like 2026Q4")
    first = date(int(year), 3 * int(q) - 2, 1)
    last = (first + timedelta(days=95)).replace(day=1) - timedelta(days=1)
    return Period(first, last, f"{year}Q{q}")


def previous_quarter(p: Period) -> Period:
    prior = p.start - timedelta(days=1)
    return quarter(f"{prior.year}Q{(prior.month - 1) // 3 + 1}")


def share(part: int, whole: int | None) -> float | None:
    return round(part / whole, 4) if whole else None
