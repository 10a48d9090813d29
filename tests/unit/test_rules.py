from datetime import date

import pytest

from services.registry.domain import rules


def test_id_number_check_character_standard_example():
    assert rules.id_check_char("11010519491231002") == "X"
    assert rules.check_id_number("11010519491231002x") == "11010519491231002X"


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("11010519491231002Y", "id_number_format"),
        ("1101051949123100", "id_number_format"),
        ("110105194912310021", "id_number_check"),
        ("110105194913310029", "id_number_check"),
    ],
)
def test_id_number_refusals_say_which_check_failed(value, code):
    with pytest.raises(rules.RuleViolation) as err:
        rules.check_id_number(value)
    assert err.value.code == code
    assert err.value.zh and err.value.en


def test_id_number_must_agree_with_birth_date_and_gender():
    v = "11010519491231002X"  # born 1949-12-31, 17th digit 2: female
    assert rules.check_id_number(v, birth_date=date(1949, 12, 31), gender="female") == v
    with pytest.raises(rules.RuleViolation, match="birth date"):
        rules.check_id_number(v, birth_date=date(1950, 1, 1))
    with pytest.raises(rules.RuleViolation, match="gender"):
        rules.check_id_number(v, gender="male")


def test_mask_keeps_only_the_ends():
    assert rules.mask_id_number("11010519491231002X") == "1101**********002X"


@pytest.mark.parametrize("phone", ["13800138000", "0371-65432100", "01087654321"])
def test_phones_accepted(phone):
    assert rules.check_phone(phone) == phone


@pytest.mark.parametrize("phone", ["123", "12800138000", "138001380001", "phone"])
def test_phones_refused(phone):
    with pytest.raises(rules.RuleViolation):
        rules.check_phone(phone)


def test_birth_date_not_future_and_under_18():
    today = date(2026, 11, 23)
    assert rules.check_birth_date(date(2010, 1, 1), today)
    with pytest.raises(rules.RuleViolation, match="future"):
        rules.check_birth_date(date(2026, 11, 24), today)
    with pytest.raises(rules.RuleViolation, match="under 18"):
        rules.check_birth_date(date(2008, 11, 23), today)
    assert rules.check_birth_date(date(2008, 11, 24), today)


def test_village_code_is_twelve_digits():
    assert rules.check_village_code("410523100201") == "410523100201"
    for bad in ("4105231002", "41052310020a", ""):
        with pytest.raises(rules.RuleViolation):
            rules.check_village_code(bad)
