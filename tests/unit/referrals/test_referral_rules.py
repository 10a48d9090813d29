"""Referral policies, working days and the dropout threshold, as pure rules."""

from datetime import date, datetime, timedelta

import pytest

from services.visits.domain.errors import Refusal
from services.visits.domain.referrals import Absence, county_policies, dropout_threshold_reached, policy_for_concern
from services.visits.domain.workdays import Calendar, working_days_after
from shared.clock import CHINA
from shared.contracts.notifications_v1 import AgencyKind
from shared.contracts.referrals_v1 import ReferralPolicyCode as P
from shared.contracts.visits_v1 import ConcernKind

POLICIES = county_policies({})
DROPOUT = POLICIES[P.dropout]
WEEKDAYS = Calendar()
# 2026: Thursday 1 October to Wednesday 7 October is the national-day holiday; Saturday 10 October is worked.
NATIONAL_DAY = Calendar(frozenset(date(2026, 10, d) for d in range(1, 8)), frozenset({date(2026, 10, 10)}))


def at(day: date, hour: int = 10) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=CHINA)


def test_working_days_skip_weekends():
    friday = date(2026, 11, 27)
    assert working_days_after(at(friday), 2, WEEKDAYS) == datetime(2026, 12, 2, tzinfo=CHINA)  # Mon, Tue: due at Tue's end


def test_working_days_skip_holidays_and_count_working_weekend_days():
    wednesday = date(2026, 9, 30)
    # Oct 1-7 off, Oct 8 (Thu) and 9 (Fri) work, Oct 10 (Sat) is a working day: the 3rd working day.
    assert working_days_after(at(wednesday), 3, NATIONAL_DAY) == datetime(2026, 10, 11, tzinfo=CHINA)
    assert working_days_after(at(wednesday), 3, WEEKDAYS) == datetime(2026, 10, 6, tzinfo=CHINA)


def test_the_dropout_acknowledgement_is_due_in_working_days_across_a_holiday():
    reported = at(date(2026, 9, 30), 16)
    assert DROPOUT.ack_due(reported, NATIONAL_DAY) == datetime(2026, 10, 10, tzinfo=CHINA)  # Thu 8, Fri 9
    assert DROPOUT.outcome_due(reported) == reported + timedelta(days=30)


@pytest.mark.parametrize(("absences", "reached"), [
    ([Absence(date(2026, 11, 2), date(2026, 11, 3), 2, False)], False),
    ([Absence(date(2026, 11, 2), date(2026, 11, 4), 3, False)], True),
    # Friday then Monday: the weekend does not break the run.
    ([Absence(date(2026, 11, 5), date(2026, 11, 6), 2, False), Absence(date(2026, 11, 9), date(2026, 11, 9), 1, False)], True),
    # A school day attended between them breaks it.
    ([Absence(date(2026, 11, 2), date(2026, 11, 3), 2, False), Absence(date(2026, 11, 5), date(2026, 11, 5), 1, False)], False),
    # Excused days do not count.
    ([Absence(date(2026, 11, 2), date(2026, 11, 4), 3, True)], False),
    # Five in a month, none consecutive with another.
    ([Absence(date(2026, 11, d), date(2026, 11, d), 1, False) for d in (2, 4, 10, 12, 16)], True),
    ([Absence(date(2026, 10, 29), date(2026, 10, 29), 1, False)]
     + [Absence(date(2026, 11, d), date(2026, 11, d), 1, False) for d in (2, 4, 10, 12)], False),
])
def test_the_dropout_threshold(absences, reached):
    assert dropout_threshold_reached(absences, DROPOUT, WEEKDAYS) is reached


def test_each_concern_kind_finds_its_policy_and_agency():
    found = {k: policy_for_concern(POLICIES, k) for k in ConcernKind}
    assert found[ConcernKind.violence_signs].report_to == (AgencyKind.public_security,)
    assert found[ConcernKind.violence_signs].ack_minutes == 30
    assert found[ConcernKind.injury].code is P.medical
    assert found[ConcernKind.hardship].code is P.hardship
    assert found[ConcernKind.psychological_distress].code is P.psychological
    assert found[ConcernKind.other] is None


def test_each_policy_discloses_only_what_it_lists():
    facts = {"school_id": "s1", "class_name": "三班", "village_code": "410523100201", "school_days": 4, "concern": "x"}
    assert POLICIES[P.dropout].disclosed(facts) == {"school_id": "s1", "class_name": "三班", "school_days": 4}
    assert POLICIES[P.hardship].disclosed(facts) == {"village_code": "410523100201", "concern": "x"}


def test_a_county_overrides_a_policy_and_bad_values_are_named():
    mine = county_policies({"dropout": {"persuasion_days": 5, "report_to": ["education_bureau"]}})[P.dropout]
    assert (mine.persuasion_days, mine.report_to) == (5, (AgencyKind.education_bureau,))
    for bad, code in [({"persuasion_dayz": 5}, "policy_unknown_key"), ({"report_to": ["police"]}, "policy_invalid"),
                      ({"ack_minutes": 30}, "policy_ack_deadline")]:
        with pytest.raises(Refusal) as err:
            county_policies({"dropout": bad})
        assert err.value.code == code and err.value.zh and err.value.en
