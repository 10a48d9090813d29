"""Windows, rules as data, and compliance: pure functions, no I/O."""

from datetime import date
from uuid import uuid4

import pytest

from services.visits.domain.compliance import Contact, PairingSpan, Status, evaluate, score, statuses_on, statuses_within
from services.visits.domain.errors import Refusal
from services.visits.domain.model import Helper, check_may_record, check_visit_date
from services.visits.domain.rules import DEFAULTS_BY_CODE, new_version, rule_in_force
from services.visits.domain.windows import Term, Window, county_terms, previous_window, window_at_or_after, window_containing
from shared.contracts.visits_v1 import ContactKind as K
from shared.contracts.visits_v1 import HelperRole as R
from shared.contracts.visits_v1 import WindowKind as W

TERMS = county_terms([Term(date(2026, 9, 1), date(2027, 1, 15))], date(2026, 10, 1))
MOTHER, TEACHER = uuid4(), uuid4()
VISITS = DEFAULTS_BY_CODE["companion_monthly_visits"]


def test_windows_month_quarter_year_and_term_parts():
    assert window_containing(W.month, date(2026, 12, 15), TERMS) == Window(W.month, date(2026, 12, 1), date(2026, 12, 31))
    assert window_containing(W.quarter, date(2026, 5, 2), TERMS) == Window(W.quarter, date(2026, 4, 1), date(2026, 6, 30))
    parts = [window_containing(W.term_part, d, TERMS) for d in (date(2026, 9, 1), date(2026, 11, 1), date(2027, 1, 15))]
    assert [p.start for p in parts] == [date(2026, 9, 1), date(2026, 10, 16), date(2026, 12, 1)]
    assert parts[2].end == date(2027, 1, 15)
    # A holiday has no term window; the next one is the spring term (default dates: the county set none).
    assert window_containing(W.term, date(2026, 8, 10), TERMS) is None
    assert window_at_or_after(W.term, date(2027, 2, 1), TERMS).start == date(2027, 2, 20)
    assert previous_window(window_at_or_after(W.term, date(2027, 2, 1), TERMS), TERMS).start == date(2026, 9, 1)
    # The county's own autumn term replaces the default one it overlaps.
    assert Term(date(2026, 9, 1), date(2027, 1, 20)) not in TERMS
    assert Window(W.month, date(2026, 1, 1), date(2026, 1, 31)).deadline.isoformat() == "2026-02-01T00:00:00+08:00"


def test_a_changed_number_applies_from_the_next_window_and_a_new_rule_now():
    from dataclasses import replace

    changed = new_version([], replace(VISITS, count=3), date(2026, 3, 17), TERMS)
    assert (changed.effective_from, changed.version) == (date(2026, 4, 1), 1)
    assert rule_in_force([changed], VISITS.code, date(2026, 3, 31)).count == 2
    assert rule_in_force([changed], VISITS.code, date(2026, 4, 1)).count == 3
    again = new_version([changed], replace(VISITS, count=4), date(2026, 3, 20), TERMS)
    assert rule_in_force([changed, again], VISITS.code, date(2026, 4, 1)).count == 4
    added = new_version([], replace(VISITS, code="extra_rule", window=W.quarter), date(2026, 5, 9), TERMS)
    assert added.effective_from == date(2026, 4, 1)


def _mother_from(day: date) -> list[PairingSpan]:
    return [PairingSpan(MOTHER, R.caring_mother, day, None)]


def test_one_of_two_visits_is_due_in_the_month_and_overdue_after_it():
    march = Window(W.month, date(2026, 3, 1), date(2026, 3, 31))
    contacts = [Contact(date(2026, 3, 5), K.home_visit, MOTHER, R.caring_mother),
                Contact(date(2026, 3, 6), K.home_visit, TEACHER, R.class_teacher),  # not the mother's rule
                Contact(date(2026, 4, 1), K.home_visit, MOTHER, R.caring_mother)]  # next month
    pairings = _mother_from(date(2026, 1, 1))
    during = evaluate(VISITS, march, pairings, contacts, date(2026, 3, 20))
    after = evaluate(VISITS, march, pairings, contacts, date(2026, 4, 1))
    assert (during.done, during.status, after.status) == (1, Status.due, Status.overdue)
    assert after.helper_ids == (MOTHER,)
    # Not bound when no caring mother is paired at the window's end.
    ended = [PairingSpan(MOTHER, R.caring_mother, date(2026, 1, 1), date(2026, 3, 15))]
    assert evaluate(VISITS, march, ended, contacts, date(2026, 4, 1)) is None


def test_five_ones_of_a_term_and_activities_counting_as_contacts():
    tutor = uuid4()
    pairings = [PairingSpan(tutor, R.volunteer_tutor, date(2026, 9, 1), None)]
    contacts = [Contact(date(2026, 9, 10), k, tutor, R.volunteer_tutor) for k in (K.home_visit, K.talk, K.letter)]
    contacts.append(Contact(date(2026, 8, 30), K.school_contact, tutor, R.volunteer_tutor))  # before the term
    contacts.append(Contact(date(2026, 10, 1), K.parent_contact))  # a family call at the children's home
    statuses = statuses_on([], date(2026, 10, 8), TERMS, pairings, contacts, date(2026, 10, 8))
    five = {s.rule.code: s.status for s in statuses if s.rule.group == "五个一"}
    assert five == {"five_ones_home_visit": Status.done, "five_ones_talk": Status.done, "five_ones_letter": Status.done,
                    "five_ones_school_contact": Status.due, "five_ones_guardian_contact": Status.due}
    monthly = {s.rule.code: s.status for s in statuses if s.window.kind is W.month}
    assert monthly["monthly_parent_contact"] is Status.done


def test_scores_cap_each_rule_and_a_helper_counts_only_their_own_contacts():
    other = uuid4()
    pairings = _mother_from(date(2026, 1, 1)) + [PairingSpan(other, R.caring_mother, date(2026, 1, 1), None)]
    contacts = [Contact(date(2026, 3, d), K.home_visit, other, R.caring_mother) for d in (2, 3, 4, 5)]
    child = statuses_within([], date(2026, 3, 1), date(2026, 3, 31), TERMS, pairings, contacts, date(2026, 4, 2))
    by_code = {s.rule.code: s for s in child}
    assert by_code["companion_monthly_visits"].done == 4
    # visits 2 of 2 (4 done, capped), monthly contact 1 of 1, parent 0 of 1, guardian 0 of 1: 3 of 5
    assert score(child) == 0.6
    mine = statuses_within([], date(2026, 3, 1), date(2026, 3, 31), TERMS, pairings, contacts, date(2026, 4, 2), MOTHER)
    assert score(mine) == 0.0


def test_record_checks_backdating_and_pairing():
    with pytest.raises(Refusal) as err:
        check_visit_date(date(2026, 1, 1), date(2026, 3, 1))
    assert (err.value.field, err.value.code) == ("visited_on", "backdated_too_far")
    check_visit_date(date(2026, 2, 1), date(2026, 3, 1))
    mother = Helper(uuid4(), "x", R.caring_mother, "妇联", "410523")
    supervisor = Helper(uuid4(), "y", R.village_supervisor, "村委会", "410523100001")
    with pytest.raises(Refusal):
        check_may_record(mother, paired_on_day=False)
    check_may_record(supervisor, paired_on_day=False)
