"""无人监护: when a child has no valid guardian, as a pure rule (domain/guardianship.py)."""

from datetime import date
from uuid import uuid4

import pytest

from services.registry.domain.guardianship import check_agreement_dates, parents_returned, unguarded_cause
from services.registry.domain.model import Child
from services.registry.domain.rules import RuleViolation, check_village_code
from shared.contracts.registry_v1 import UnguardedCause as U

GRANDMA = {"name": "奶奶", "relationship": "grandparent", "capacity": "limited"}


def child(guardian=GRANDMA, flagged: str | None = None, father="migrant_worker", mother="migrant_worker") -> Child:
    return Child(
        id=uuid4(), name="小明", gender="male", birth_date=date(2014, 1, 1), hukou_status="registered",
        village_code="410523100201", left_behind_type="both_parents_out", father={"status": father},
        mother={"status": mother}, guardian=guardian, unguarded_cause=flagged,
    )


@pytest.mark.parametrize(("kid", "in_force", "lapse", "cause"), [
    (child(), False, None, None),  # a guardian, the agreement not signed yet: not flagged
    (child(), True, None, None),
    (child(guardian=None), False, None, U.no_guardian),
    (child(guardian={**GRANDMA, "capacity": "none"}), True, None, U.no_guardian),  # no capacity is no guardian
    (child(), False, U.agreement_expired, U.agreement_expired),
    (child(), False, U.agreement_revoked, U.agreement_revoked),
    (child(guardian=None), False, U.guardian_removed, U.guardian_removed),
    (child(flagged="agreement_expired"), False, None, U.agreement_expired),  # a guardian alone does not lower it
    (child(flagged="guardian_removed"), False, U.agreement_revoked, U.guardian_removed),  # the first cause stands
    (child(flagged="no_guardian"), True, None, None),  # guardian and agreement: cleared
])
def test_unguarded_cause(kid, in_force, lapse, cause):
    assert unguarded_cause(kid, agreement_in_force=in_force, lapse=lapse) == cause


def test_both_parents_at_home_ends_being_left_behind():
    assert parents_returned(child(father="at_home", mother="at_home"))
    assert not parents_returned(child(father="at_home"))
    assert not parents_returned(child(father="at_home", mother="deceased"))


def test_agreement_dates_are_ordered_and_not_in_the_future():
    check_agreement_dates(date(2026, 1, 1), date(2027, 1, 1), today=date(2026, 6, 1))
    for signed, until, field in [(date(2026, 7, 1), date(2027, 1, 1), "signed_on"), (date(2026, 1, 1), date(2026, 1, 1), "valid_until")]:
        with pytest.raises(RuleViolation) as err:
            check_agreement_dates(signed, until, today=date(2026, 6, 1))
        assert err.value.field == field and err.value.zh and err.value.en


def test_a_village_code_needs_a_known_county():
    assert check_village_code("410523100201") == "410523100201"
    with pytest.raises(RuleViolation) as err:
        check_village_code("410599100201")
    assert err.value.code == "county_unknown" and "410599" in err.value.zh
