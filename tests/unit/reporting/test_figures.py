"""Reporting's counting rules (统计口径), without I/O."""

from collections import Counter
from datetime import date

import pytest

from services.reporting.domain.figures import (
    ChildState, deltas, enrolment_after_transfer, labels, median_from_counts, missing_fields, moves, previous_quarter,
    quarter,
)
from services.reporting.domain.places import child_places, next_level

CHILD = ChildState.of(
    village_code="410523100001", left_behind_type="both_parents_out", gender="female", school_id="s1",
    father_status="migrant_worker", mother_status="migrant_worker", guardian_relationship="grandparent",
    risk_categories=["orphan"],
)


def test_a_child_counts_in_every_division_and_its_school():
    assert child_places("410523100001", "s1") == ["41", "4105", "410523", "410523100", "410523100001", "410523.school.s1"]
    assert next_level("410523") == 9 and next_level("410523100001") is None


def test_an_archive_is_complete_with_guardian_school_and_both_parents_known():
    assert "complete" in labels(CHILD) and missing_fields(CHILD) == []
    unknown = CHILD.changed(mother_status="unknown", guardian_relationship=None)
    assert missing_fields(unknown) == ["guardian_relationship", "mother_status"]
    assert "complete" not in labels(unknown) and "guardian:none" in labels(unknown)


def test_a_closed_archive_counts_nowhere_and_a_transfer_moves_every_label():
    assert labels(CHILD.changed(closed=True)) == set()
    moved = deltas(CHILD, CHILD.changed(village_code="410523200002", school_id=None))
    assert moved[("410523", "children")] == 0 and ("410523", "children") not in moved
    assert moved[("410523100", "risk:orphan")] == -1 and moved[("410523200", "risk:orphan")] == 1
    assert moved[("410523.school.s1", "children")] == -1


def test_the_moves_of_many_children_add_up_their_deltas():
    moved = CHILD.changed(village_code="410523200002", school_id=None)
    sibling = CHILD.changed(risk_categories=[], guardian_relationship=None)
    changes = [(None, CHILD), (None, sibling), (CHILD, moved), (sibling, sibling.changed(unguarded_since=date(2026, 1, 2)))]
    total = Counter()
    for before, after in changes:
        total.update(deltas(before, after))
    assert moves(changes) == Counter({k: v for k, v in total.items() if v})
    # CHILD counted in and moved out again: its old township keeps none of it, its school only the sibling
    assert ("410523100", "risk:orphan") not in moves(changes) and moves(changes)[("410523.school.s1", "children")] == 1
    assert moves(changes)[("410523", "children")] == 2 and moves(changes)[("410523200002", "risk:orphan")] == 1


def test_dropout_and_guardianship_labels():
    out = CHILD.changed(enrolment_status="dropped_out", unguarded_since=date(2026, 1, 2))
    assert {"out_of_school", "unguarded"} <= labels(out)
    assert enrolment_after_transfer("dropped_out", None) == "not_enrolled"
    assert enrolment_after_transfer("not_enrolled", "s2") == "in_school"
    assert enrolment_after_transfer("dropped_out", "s2") == "dropped_out"


def test_median_from_counts_of_days():
    assert median_from_counts({}) is None
    assert median_from_counts({3: 1, 10: 1, 20: 1}) == 10
    assert median_from_counts({3: 2, 10: 2}) == 6.5


def test_quarters():
    q = quarter("2026q4")
    assert (q.start, q.end, q.label) == (date(2026, 10, 1), date(2026, 12, 31), "2026Q4")
    assert [m.month for m in q.months] == [10, 11, 12]
    assert previous_quarter(quarter("2026Q1")).label == "2025Q4"
    with pytest.raises(ValueError):
        quarter("2026Q5")


def _labels_restated(child: ChildState) -> set[str]:
    """The counting rules as written before labels were looked up by what they depend on."""
    if child.closed:
        return set()
    out = {"children", f"type:{child.left_behind_type}", f"guardian:{child.guardian_relationship or 'none'}",
           f"gender:{child.gender}", *(f"risk:{r}" for r in child.risk_categories)}
    if all(getattr(child, f) not in (None, "", "unknown") for f in
           ("guardian_relationship", "school_id", "father_status", "mother_status")):
        out.add("complete")
    if child.unguarded_since is not None:
        out.add("unguarded")
    if child.agreement_until is not None:
        out.add("agreement")
    if child.enrolment_status == "dropped_out":
        out.add("out_of_school")
    return out


def test_labels_looked_up_by_what_they_depend_on_are_the_rules_for_every_kind_of_child():
    import itertools

    kinds = itertools.product(
        (False, True), (None, "", "unknown", "grandparent"), (None, "s1", "unknown"), (None, "migrant_worker", "unknown"),
        ("", "deceased"), ((), ("orphan",), ("orphan", "disabled")), (None, date(2026, 1, 2)),
        (None, date(2026, 9, 1)), (None, "in_school", "dropped_out"),
    )
    seen = 0
    for closed, guardian, school, father, mother, risks, unguarded, agreement, enrolment in kinds:
        child = CHILD.changed(closed=closed, guardian_relationship=guardian, school_id=school, father_status=father,
                              mother_status=mother, risk_categories=risks, unguarded_since=unguarded,
                              agreement_until=agreement, enrolment_status=enrolment)
        assert labels(child) == _labels_restated(child), child
        seen += 1
    assert seen == 2 * 4 * 3 * 3 * 2 * 3 * 2 * 2 * 3
    # moves spreads them over each place of a child's home, as deltas one child at a time do
    many = [CHILD.changed(village_code=f"4105{c}100{v:03d}", school_id=s, risk_categories=r)
            for c in (22, 23) for v in (1, 2) for s in (None, "s1") for r in ((), ("orphan",))]
    total = Counter()
    for child in many:
        total.update({(p, label): 1 for p in child_places(child.village_code, child.school_id)
                      for label in _labels_restated(child)})
    assert moves([(None, c) for c in many]) == total
