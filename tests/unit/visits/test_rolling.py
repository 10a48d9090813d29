"""Rolling windows (滚动周期): N days after the last qualifying contact, or after the rule began to bind."""

from dataclasses import replace
from datetime import date
from uuid import uuid4

import pytest

from services.visits.domain.compliance import Contact, PairingSpan, Status, recent, rolling_window_of, statuses_within
from services.visits.domain.errors import Refusal
from services.visits.domain.rules import VisitRule, check_rule, new_version, rule_in_force
from services.visits.domain.windows import Term, Window, county_terms, rolling_window, window_at_or_after
from shared.contracts.visits_v1 import ContactKind as K
from shared.contracts.visits_v1 import HelperRole as R
from shared.contracts.visits_v1 import WindowKind as W

TERMS = county_terms([Term(date(2026, 9, 1), date(2027, 1, 15))], date(2026, 10, 1))
MOTHER = uuid4()
ANY_30_DAYS = VisitRule("contact_any_30_days", "任意30天内至少联系1次", (R.caring_mother,), (K.phone, K.home_visit), 1,
                        W.rolling, days=30, effective_from=date(2026, 3, 1), version=1)
PAIRED = [PairingSpan(MOTHER, R.caring_mother, date(2026, 2, 10), None)]


def _call(day: date, kind: K = K.phone) -> Contact:
    return Contact(day, kind, MOTHER, R.caring_mother)


def test_a_rolling_window_is_the_n_days_after_its_anchor_with_its_length_in_the_key():
    w = rolling_window(date(2026, 3, 1), 30)
    assert (w.start, w.end) == (date(2026, 3, 2), date(2026, 3, 31))
    assert w.deadline.isoformat() == "2026-04-01T00:00:00+08:00"
    assert w.key == "rolling:2026-03-02+30d"
    assert rolling_window(date(2026, 3, 1), 20).key != w.key  # a county changing N gives a new window
    with pytest.raises(ValueError):
        window_at_or_after(W.rolling, date(2026, 3, 1), TERMS)


def test_the_deadline_runs_from_the_rule_or_pairing_start_and_each_contact_moves_it():
    # The rule began on 1 March, after the pairing: the first window runs from then, whatever came before.
    before_rule = [_call(date(2026, 2, 20))]
    assert rolling_window_of(ANY_30_DAYS, PAIRED, before_rule, date(2026, 3, 5)) == rolling_window(date(2026, 3, 1), 30)
    late_pairing = [PairingSpan(MOTHER, R.caring_mother, date(2026, 3, 10), None)]
    assert rolling_window_of(ANY_30_DAYS, late_pairing, [], date(2026, 3, 12)).start == date(2026, 3, 11)
    # A contact that counts moves the window; one of another kind, or in the future of ``day``, does not.
    contacts = [_call(date(2026, 3, 20)), _call(date(2026, 3, 25), K.letter), _call(date(2026, 4, 10))]
    assert rolling_window_of(ANY_30_DAYS, PAIRED, contacts, date(2026, 4, 1)) == rolling_window(date(2026, 3, 20), 30)
    assert rolling_window_of(ANY_30_DAYS, PAIRED, contacts, date(2026, 4, 10)) == rolling_window(date(2026, 4, 10), 30)
    # Unbound: no caring mother paired on the day.
    assert rolling_window_of(ANY_30_DAYS, [], contacts, date(2026, 4, 10)) is None


def test_a_rule_asking_several_contacts_counts_from_the_count_th_last():
    twice = replace(ANY_30_DAYS, count=2)
    contacts = [_call(date(2026, 3, d)) for d in (3, 10, 18)]
    window = rolling_window_of(twice, PAIRED, contacts, date(2026, 3, 20))
    assert window == rolling_window(date(2026, 3, 10), 30)  # the 18th alone does not keep it: it needs a second
    [status] = [s for s in recent([twice], date(2026, 3, 20), TERMS, PAIRED, contacts) if s.rule.code == twice.code]
    assert (status.status, status.required, status.done) == (Status.due, 2, 1)


def test_due_while_running_overdue_once_lapsed_and_left_out_of_period_scores():
    contacts = [_call(date(2026, 3, 5))]

    def status_on(day):
        return next(s for s in recent([ANY_30_DAYS], day, TERMS, PAIRED, contacts) if s.rule.code == ANY_30_DAYS.code)
    running, lapsed = status_on(date(2026, 4, 4)), status_on(date(2026, 4, 5))
    assert running.window == lapsed.window == Window(W.rolling, date(2026, 3, 6), date(2026, 4, 4))
    assert (running.status, lapsed.status, lapsed.done, lapsed.helper_ids) == (Status.due, Status.overdue, 0, (MOTHER,))
    scored = statuses_within([ANY_30_DAYS], date(2026, 3, 1), date(2026, 3, 31), TERMS, PAIRED, contacts, date(2026, 4, 2))
    assert ANY_30_DAYS.code not in {s.rule.code for s in scored}


def test_rolling_rules_are_data_checked_and_in_force_from_the_day_they_change():
    check_rule(ANY_30_DAYS)
    for bad, field in ((replace(ANY_30_DAYS, days=None), "days"), (replace(ANY_30_DAYS, days=0), "days"),
                       (replace(ANY_30_DAYS, window=W.month), "days")):
        with pytest.raises(Refusal) as err:
            check_rule(bad)
        assert err.value.field == field and err.value.zh and err.value.en
    added = new_version([], replace(ANY_30_DAYS, effective_from=None, version=0), date(2026, 3, 17), TERMS)
    assert (added.effective_from, added.version) == (date(2026, 3, 17), 1)
    shorter = new_version([added], replace(added, days=20), date(2026, 3, 20), TERMS)
    assert rule_in_force([added, shorter], ANY_30_DAYS.code, date(2026, 3, 20)).days == 20
    assert rule_in_force([added, shorter], ANY_30_DAYS.code, date(2026, 3, 19)).days == 30
    # From a calendar window to a rolling one: at once, too.
    monthly = new_version([], replace(ANY_30_DAYS, code="monthly_x", window=W.month, days=None), date(2026, 3, 17), TERMS)
    assert new_version([monthly], replace(monthly, window=W.rolling, days=30), date(2026, 3, 17),
                       TERMS).effective_from == date(2026, 3, 17)
