"""After the faults: compare, by id, what the load generator was told was accepted and what each
producer's outbox says it published with what every store holds. Each check counts lost (expected,
absent), duplicated (present more than once) and unexpected (present, never expected)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass
class Check:
    name: str
    expected: int = 0
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.lost or self.duplicated or self.unexpected)


def compare(name: str, expected: Iterable[str], found: Iterable[str], *, may_exist: Iterable[str] = ()) -> Check:
    """``found`` may repeat ids (rows, events); ``may_exist`` are ids of writes whose answer never came
    (the process died mid-request): present or absent, both are right."""
    want, seen = set(expected), Counter(found)
    allowed = set(may_exist)
    return Check(
        name, len(want),
        lost=sorted(want - seen.keys()),
        duplicated=sorted(i for i, n in seen.items() if n > 1),
        unexpected=sorted(seen.keys() - want - allowed),
    )


@dataclass
class Ledger:
    """What the API accepted (ids from its answers), and the writes left without an answer."""

    children: dict[str, str] = field(default_factory=dict)  # id -> the unique name sent
    absences: dict[str, str] = field(default_factory=dict)  # absence id -> child id
    records: dict[str, str] = field(default_factory=dict)  # record id -> child id
    unanswered: dict[str, list[str]] = field(default_factory=lambda: {"child": [], "absence": [], "record": []})
    refused: Counter = field(default_factory=Counter)  # kind -> writes definitely not applied (4xx, no connection)


@dataclass
class Snapshot:
    """Everything the checker reads, gathered once the system has settled."""

    registry_children: list[tuple[str, str]]  # (id, name)
    registry_absences: list[tuple[str, str]]  # (id, child id)
    outbox: dict[str, list[tuple[str, str, str]]]  # producer -> [(stream, event type, payload)]
    groups: dict[str, list[str]]  # stream -> consumer groups on it
    inbox: dict[str, list[str]]  # group -> event ids
    stores: dict[str, list[str]]  # store -> child ids (visits children, notifications contacts, reporting facts)
    visit_records: list[tuple[str, str]]  # visits' (record id, child id)
    reporting_records: list[str]
    county_children_figure: int  # reporting's running count of the county's children
    dropout_cases: list[tuple[str, str]]  # (case id, child id)
    timeline: list[tuple[str, str]]  # (case id, step)
    unfired_due_timers: list[str]  # "service:kind:key" due before the load stopped, still unfired
    dlq: dict[str, int]  # dlq stream -> entries
    unsettled: dict[str, int]  # "stream:group" -> pending + lag


# The steps every dropout case takes in a chaos run (persuasion 0 days, acknowledgement 0.1 min,
# escalation at once): each deadline fires once, one after the other.
DEADLINE_STEPS = ("persuasion_deadline_passed", "reported", "reminded", "escalated")


def check(ledger: Ledger, snap: Snapshot) -> list[Check]:
    checks: list[Check] = []
    unanswered_names = set(ledger.unanswered["child"])
    checks.append(compare(
        "accepted registrations in the registry", ledger.children, [i for i, _ in snap.registry_children],
        may_exist=[i for i, name in snap.registry_children if name in unanswered_names],
    ))
    checks.append(compare(
        "accepted absences in the registry", ledger.absences, [i for i, _ in snap.registry_absences],
        may_exist=[i for i, c in snap.registry_absences if c in set(ledger.unanswered["absence"])],
    ))
    unanswered_records = set(ledger.unanswered["record"])
    checks.append(compare(
        "accepted visit records in visits", ledger.records, [i for i, _ in snap.visit_records],
        may_exist=[i for i, c in snap.visit_records if c in unanswered_records],
    ))

    published: dict[str, list[str]] = {}  # stream -> event ids its producers' outboxes hold
    for rows in snap.outbox.values():
        for stream, _, payload in rows:
            published.setdefault(stream, []).append(json.loads(payload)["event_id"])
    for stream, ids in published.items():
        checks.append(compare(f"{stream}: one outbox row per event", ids, ids))
    for group in sorted({g for gs in snap.groups.values() for g in gs}):
        expected = [i for s, gs in snap.groups.items() if group in gs for i in published.get(s, [])]
        checks.append(compare(f"{group}: inbox holds each event of its streams once", expected, snap.inbox.get(group, [])))

    registered = [i for i, _ in snap.registry_children]
    for store, ids in snap.stores.items():
        checks.append(compare(f"{store}: each registered child once", registered, ids))
    checks.append(compare("reporting visit_records: each visit record once", [i for i, _ in snap.visit_records],
                          snap.reporting_records))
    figure = Check("reporting's county children figure = children registered", len(registered))
    if snap.county_children_figure < len(registered):
        figure.lost = [f"{len(registered) - snap.county_children_figure} children not counted"]
    elif snap.county_children_figure > len(registered):
        figure.duplicated = [f"{snap.county_children_figure - len(registered)} children counted twice"]
    checks.append(figure)

    absent_children = {c for _, c in snap.registry_absences}
    checks.append(compare("one dropout case per child with a recorded absence", absent_children,
                          [c for _, c in snap.dropout_cases]))
    for step in DEADLINE_STEPS:
        checks.append(compare(f"dropout cases: deadline step {step!r} once", [r for r, _ in snap.dropout_cases],
                              [r for r, s in snap.timeline if s == step]))
    missed = [json.loads(p)["data"] for _, t, p in snap.outbox.get("visits", []) if t == "visits.referral.deadline_missed"]
    steps = [f"{d['referral_id']}:{d['step']}" for d in missed]
    checks.append(compare("visits.referral.deadline_missed once per case and step", set(steps), steps))
    overdue = [json.loads(p)["aggregate_id"] for _, t, p in snap.outbox.get("visits", []) if t == "visits.visit.overdue"]
    checks.append(compare("visits.visit.overdue once per child, rule and window", set(overdue), overdue))
    checks.append(Check("timers due before the end have fired", lost=list(snap.unfired_due_timers)))
    checks.append(Check("dead-letter streams empty", unexpected=[f"{s}: {n}" for s, n in snap.dlq.items() if n]))
    checks.append(Check("every group has read and acknowledged everything",
                        lost=[f"{k}: {n}" for k, n in snap.unsettled.items() if n]))
    return checks


def totals(checks: list[Check]) -> tuple[int, int, int]:
    return (sum(len(c.lost) for c in checks), sum(len(c.duplicated) for c in checks),
            sum(len(c.unexpected) for c in checks))
