"""Hostile input (issue 9): property tests of the registry's validators and of the census parser
(hypothesis), and schemathesis against each service's OpenAPI document. Bounded: a fixed number of
examples per property and per operation, no deadline (the machine is shared)."""

from __future__ import annotations

import asyncio
import io
import threading
import time
from datetime import date, timedelta

import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings as examples, strategies as st
from openpyxl import Workbook
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from services.notifications.app import SPEC as NOTIFICATIONS
from services.registry.app import SPEC as REGISTRY
from services.registry.domain import census
from services.registry.domain.divisions import counties
from services.registry.domain.rules import (
    RuleViolation, check_birth_date, check_id_number, check_phone, check_village_code, id_check_char,
)
from services.registry.service_layer.census import REQUIRED
from services.reporting.app import SPEC as REPORTING
from services.visits.app import SPEC as VISITS
from shared.service import create_app
from tests.infra import free_port
from tests.integration.registry_census.rosters import HEADERS, csv_bytes, good, xlsx
from tests.support import token

bounded = examples(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
COUNTIES = sorted(counties())
TODAY = date(2026, 6, 1)
birth_dates = st.dates(date(1900, 1, 1), date(2099, 12, 31))


def digits(n: int) -> st.SearchStrategy[str]:
    return st.text("0123456789", min_size=n, max_size=n)


@st.composite
def id_numbers(draw) -> str:
    """17 digits (area, birth date, sequence) and the check character they compute."""
    first17 = draw(digits(6)) + draw(birth_dates).strftime("%Y%m%d") + draw(digits(3))
    return first17 + id_check_char(first17)


@bounded
@given(id_numbers())
def test_a_valid_id_number_passes(number):
    assert check_id_number(number) == number


@bounded
@given(id_numbers(), st.data())
def test_any_single_character_changed_in_an_id_number_fails(number, data):
    at = data.draw(st.integers(0, 17))
    # Upper-casing is the one change the rule forgives (a clerk's x for X).
    other = data.draw(st.characters(codec="utf-8").filter(lambda c: c.upper() != number[at]))
    with pytest.raises(RuleViolation) as refused:
        check_id_number(number[:at] + other + number[at + 1:])
    assert refused.value.code.startswith("id_number") and refused.value.zh and refused.value.en


@bounded
@given(st.sampled_from(COUNTIES), digits(6), st.text(st.sampled_from(" \t"), max_size=2))
def test_a_village_of_a_known_county_passes(county, rest, padding):
    assert check_village_code(padding + county + rest + padding) == county + rest


@bounded
@given(st.text(max_size=20))
def test_a_village_code_is_twelve_digits_of_a_known_county_or_refused(value):
    v = value.strip()
    try:
        assert check_village_code(value) == v
    except RuleViolation as refused:
        assert refused.code in ("village_code_format", "county_unknown")
    else:
        assert len(v) == 12 and v.isascii() and v.isdigit() and v[:6] in COUNTIES


@bounded
@given(st.from_regex(r"1[3-9][0-9]{9}|0[0-9]{2,3}-?[0-9]{7,8}", fullmatch=True))
def test_a_mobile_or_landline_passes(phone):
    assert check_phone(f" {phone} ") == phone


@bounded
@given(st.text(max_size=20))
def test_anything_else_is_not_a_phone(value):
    try:
        kept = check_phone(value)
    except RuleViolation as refused:
        assert refused.code == "phone_format"
    else:
        assert kept.replace("-", "").isascii() and kept.replace("-", "").isdigit()


@bounded
@given(birth_dates)
def test_a_birth_date_passes_when_past_and_under_eighteen(birth):
    adult = date(birth.year + 18, birth.month, 28 if (birth.month, birth.day) == (2, 29) else birth.day)
    try:
        check_birth_date(birth, TODAY)
    except RuleViolation as refused:
        assert refused.code == ("birth_date_future" if birth > TODAY else "birth_date_adult")
        assert birth > TODAY or adult <= TODAY
    else:
        assert birth <= TODAY < adult


@bounded
@given(birth_dates, st.sampled_from(["{y}-{m:02d}-{d:02d}", "{y}/{m}/{d}", "{y}年{m}月{d}日", "{y}.{m}.{d}", "{y}{m:02d}{d:02d}"]))
def test_a_roster_date_in_any_usual_form_reads_as_itself(day, form):
    assert census.read_date(form.format(y=day.year, m=day.month, d=day.day)) == day.isoformat()


def parsed(content: bytes) -> list[census.RosterRow] | RuleViolation:
    """The roster's rows, or the file's clear error; anything else escaping fails the test."""
    try:
        return list(census.Roster(content, REQUIRED).rows())
    except RuleViolation as refused:
        assert refused.field == "file" and refused.code.startswith("file_") and refused.zh and refused.en
        return refused


def reported(rows) -> None:
    for r in rows:
        for problem in r.errors:
            assert problem["column"] and problem["message_zh"] and problem["message_en"]


@bounded
@given(st.binary(max_size=2000))
def test_random_bytes_are_a_clear_error_or_rows(content):
    result = parsed(content)
    if not isinstance(result, RuleViolation):
        reported(result)


# Cells a roster may hold: text of any script, formulas, control characters, numbers, huge text.
cells = st.one_of(
    st.none(), st.text(max_size=30), st.from_regex(r"[=+\-@][A-Z]{1,8}\(.{0,20}\)", fullmatch=True),
    st.integers(), st.floats(allow_nan=False, allow_infinity=False),
    st.text(st.characters(codec="utf-8"), min_size=1, max_size=3).map(lambda s: s * 50_000),
)
rows = st.lists(st.lists(cells, min_size=len(HEADERS), max_size=len(HEADERS)), min_size=1, max_size=4)
encodings = st.sampled_from(["utf-8", "utf-8-sig", "gb18030", "utf-16", "big5", "shift_jis", "latin-1", "cp1252"])


@examples(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(rows, encodings)
def test_a_hostile_csv_in_any_encoding_is_a_clear_error_or_a_report_per_row(table, encoding):
    try:
        content = csv_bytes([good(1), *table]).decode("utf-8").encode(encoding)
    except UnicodeEncodeError:
        content = csv_bytes([good(1), *table]).decode("utf-8").encode(encoding, errors="replace")
    result = parsed(content)
    if not isinstance(result, RuleViolation):
        reported(result)


@examples(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(rows, st.integers(0, 4000))
def test_a_hostile_or_truncated_xlsx_is_a_clear_error_or_a_report_per_row(table, cut):
    wb = Workbook()
    ws = wb.active
    ws.append(HEADERS)
    for r in [good(1), *table]:
        ws.append([_xlsx_cell(v) for v in r])
    buf = io.BytesIO()
    wb.save(buf)
    content = buf.getvalue()
    for variant in (content, content[:cut], content[:len(content) - cut]):
        result = parsed(variant)
        if not isinstance(result, RuleViolation):
            reported(result)


def _xlsx_cell(value):
    # A cell holds at most 32,767 characters and no control characters (openpyxl refuses them).
    if isinstance(value, str):
        return "".join(c for c in value[:32_767] if c.isprintable()) or None
    return value


def test_a_formula_cell_is_read_as_empty_never_evaluated():
    cells_ = good(1)
    cells_[HEADERS.index("姓名")] = '=HYPERLINK("http://x","点我")'
    [r] = parsed(xlsx([cells_]))
    assert "name" not in r.data  # so the API's validation reports the name as missing


# schemathesis: each service's API served by uvicorn in a thread of this process (its own event loop,
# its lifespan once), every documented operation called with generated requests as an admin.
EXAMPLES_PER_OPERATION = 6
BUDGET_S = 8  # per service: past it, each remaining operation gets one example (none is skipped)


class Served:
    def __init__(self, app) -> None:
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, port=self.port, log_config=None, access_log=False, lifespan="on"))
        self.thread = threading.Thread(target=asyncio.run, args=(self.server.serve(),), daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        while not self.server.started:
            if not self.thread.is_alive():
                raise AssertionError("the service did not start")
            time.sleep(0.05)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(30)


@pytest.mark.parametrize("spec", [REGISTRY, VISITS, NOTIFICATIONS, REPORTING], ids=lambda s: s.name)
def test_no_operation_answers_5xx_or_outside_its_schema(spec, settings):
    app = create_app(spec, settings.model_copy(update={"rate_limit_per_minute": 0}))
    schema = schemathesis.openapi.from_dict(app.openapi())
    auth = token(settings)
    failures: list[str] = []
    with Served(app) as url:
        started = time.monotonic()
        operations = [result.ok() for result in schema.get_all_operations()]
        assert operations
        for operation in operations:
            budget_left = time.monotonic() - started < BUDGET_S

            @examples(max_examples=EXAMPLES_PER_OPERATION if budget_left else 1, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy())
            def call(case):
                response = case.call(base_url=url, headers=auth, timeout=20)
                case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])

            try:
                call()
            except Exception as exc:  # every operation is tried; all failures reported together
                failures.append(f"{operation.label}: {str(exc)[:1500]}")
    assert not failures, "\n\n".join(failures)
