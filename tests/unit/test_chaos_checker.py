"""The chaos checker's arithmetic: what counts as lost, duplicated and unexpected."""

import json

from chaos.checker import Ledger, Snapshot, check, compare, totals


def test_compare_counts_lost_duplicated_and_unexpected_but_allows_unanswered_writes():
    c = compare("x", ["a", "b", "c"], ["a", "a", "c", "d", "e"], may_exist=["e"])
    assert (c.lost, c.duplicated, c.unexpected) == (["b"], ["a"], ["d"])


def _event(event_id: str, type_: str = "registry.child.registered", aggregate_id: str = "c1", **data) -> str:
    return json.dumps({"event_id": event_id, "type": type_, "aggregate_id": aggregate_id, "data": data})


def _snapshot(**over) -> Snapshot:
    base = dict(
        registry_children=[("c1", "n1"), ("c2", "n2")],
        registry_absences=[("a1", "c1")],
        outbox={"registry": [("registry.events", "registry.child.registered", _event("e1")),
                             ("registry.events", "registry.child.registered", _event("e2", aggregate_id="c2"))],
                "visits": [("visits.events", "visits.referral.deadline_missed",
                            _event("e3", "visits.referral.deadline_missed", referral_id="r1", step="reminder"))]},
        groups={"registry.events": ["reporting", "visits"], "visits.events": ["reporting"]},
        inbox={"visits": ["e1", "e2"], "reporting": ["e1", "e2", "e3"]},
        stores={"visits children": ["c1", "c2"]},
        visit_records=[("v1", "c1")], reporting_records=["v1"], county_children_figure=2,
        dropout_cases=[("r1", "c1")],
        timeline=[("r1", s) for s in ("persuasion_deadline_passed", "reported", "reminded", "escalated")],
        unfired_due_timers=[], dlq={"registry.events.dlq": 0}, unsettled={"registry.events:visits": 0},
    )
    return Snapshot(**base | over)


def _ledger() -> Ledger:
    return Ledger(children={"c1": "n1", "c2": "n2"}, absences={"a1": "c1"}, records={"v1": "c1"})


def test_a_consistent_run_is_zero_zero_zero():
    assert totals(check(_ledger(), _snapshot())) == (0, 0, 0)


def test_an_event_a_group_never_applied_is_lost_and_one_from_nowhere_is_unexpected():
    checks = check(_ledger(), _snapshot(inbox={"visits": ["e1", "e9"], "reporting": ["e1", "e2", "e3"]}))
    [bad] = [c for c in checks if not c.clean]
    assert (bad.name.split(":")[0], bad.lost, bad.unexpected) == ("visits", ["e2"], ["e9"])


def test_a_registration_without_an_answer_may_exist_but_an_unknown_child_is_unexpected():
    ledger = _ledger()
    del ledger.children["c2"]
    ledger.unanswered["child"].append("n2")
    assert totals(check(ledger, _snapshot())) == (0, 0, 0)
    ledger.unanswered["child"].clear()
    assert totals(check(ledger, _snapshot())) == (0, 0, 1)


def test_a_deadline_fired_twice_or_counted_twice_is_duplicated():
    snap = _snapshot(county_children_figure=3)
    snap.timeline.append(("r1", "reminded"))
    lost, duplicated, unexpected = totals(check(_ledger(), snap))
    assert (lost, duplicated, unexpected) == (0, 2, 0)


def test_an_unfired_due_timer_a_pending_entry_and_a_dead_letter_are_counted():
    snap = _snapshot(unfired_due_timers=["visits:referral.deadline:r1:ack"], dlq={"registry.events.dlq": 2},
                     unsettled={"registry.events:visits": 3})
    assert totals(check(_ledger(), snap)) == (2, 0, 1)
