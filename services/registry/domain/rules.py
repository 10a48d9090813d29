"""Validation rules of the archive (pure functions, no I/O).

Each returns nothing or raises ``RuleViolation`` with the words a clerk needs,
in Chinese and English.
"""

from __future__ import annotations

import re
from datetime import date
from operator import mul

from services.registry.domain.divisions import known_county

ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK_CHARS = "10X98765432"
# [0-9], not \d: \d also matches other scripts' digits (full-width ４, Arabic-Indic ٤...), which int()
# reads as the same number: such a number would pass and then miss its duplicate.
_MOBILE = re.compile(r"^1[3-9][0-9]{9}$")
_LANDLINE = re.compile(r"^0[0-9]{2,3}-?[0-9]{7,8}$")
_ID_NUMBER = re.compile(r"[0-9]{17}[0-9X]")
_VILLAGE_CODE = re.compile(r"[0-9]{12}")


class RuleViolation(ValueError):
    def __init__(self, code: str, zh: str, en: str) -> None:
        super().__init__(en)
        self.code, self.zh, self.en = code, zh, en
        self.field: str | None = None

    def at(self, field: str) -> "RuleViolation":
        """The same violation, naming the field it concerns."""
        self.field = field
        return self


def id_check_char(first17: str) -> str:
    return ID_CHECK_CHARS[sum(map(mul, map(int, first17), ID_WEIGHTS)) % 11]


def check_id_number(value: str, *, birth_date: date | None = None, gender: str | None = None) -> str:
    """GB 11643-1999 resident ID number; returns it upper-cased."""
    v = value.strip().upper()
    if not _ID_NUMBER.fullmatch(v):
        raise RuleViolation("id_number_format", "身份证号应为18位，前17位为数字，末位为数字或X",
                            "must be 18 characters: 17 digits then a digit or X")
    if id_check_char(v[:17]) != v[17]:
        raise RuleViolation("id_number_check", "身份证号校验码错误", "wrong check character (GB 11643-1999)")
    try:
        embedded = date(int(v[6:10]), int(v[10:12]), int(v[12:14]))
    except ValueError:
        raise RuleViolation("id_number_birth_date", "身份证号中的出生日期无效", "the birth date inside the ID number is not a date") from None
    if birth_date is not None and embedded != birth_date:
        raise RuleViolation("id_number_birth_date", "身份证号中的出生日期与出生日期不一致",
                            "the birth date inside the ID number differs from birth_date")
    if gender is not None and ("male" if int(v[16]) % 2 else "female") != gender:
        raise RuleViolation("id_number_gender", "身份证号中的性别与性别不一致", "the gender inside the ID number differs from gender")
    return v


def mask_id_number(v: str) -> str:
    return f"{v[:4]}{'*' * 10}{v[-4:]}"


def check_phone(value: str) -> str:
    v = value.strip().replace(" ", "")
    if not (_MOBILE.match(v) or _LANDLINE.match(v)):
        raise RuleViolation("phone_format", "电话号码格式不正确（手机11位，或区号-座机号）",
                            "not a mainland mobile (11 digits) or landline (area code-number)")
    return v


def check_village_code(value: str) -> str:
    v = value.strip()
    if not _VILLAGE_CODE.fullmatch(v):
        raise RuleViolation("village_code_format", "村（社区）区划代码应为12位数字", "village code must be 12 digits")
    if not known_county(v[:6]):
        raise RuleViolation("county_unknown", f"区划代码前6位 {v[:6]} 不是已知的县级区划",
                            f"the first six digits {v[:6]} are not a known county code")
    return v


def check_region_prefix(value: str) -> str:
    """A place filter: 2 (province) to 12 (village) digits of a division code."""
    v = value.strip()
    if not re.fullmatch(r"[0-9]{2,12}", v):
        raise RuleViolation("region_format", "区划代码应为2至12位数字", "region code must be 2 to 12 digits")
    return v


def check_birth_date(value: date, today: date) -> date:
    if value > today:
        raise RuleViolation("birth_date_future", "出生日期不能晚于今天", "birth date is in the future")
    if age_on(value, today) >= 18:
        raise RuleViolation("birth_date_adult", "儿童应未满18周岁", "the child must be under 18")
    return value


def age_notice(birth: date, today: date) -> RuleViolation | None:
    """Left-behind children are under 16 (domain.md): 16 and 17 are accepted, with this warning."""
    if age_on(birth, today) >= 16:
        return RuleViolation("age_16_to_18", "该儿童已满16周岁，一般不再属于留守儿童，请核实",
                             "the child is 16 or older: left-behind children are under 16; please check").at("birth_date")
    return None


def age_on(birth: date, today: date) -> int:
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))
