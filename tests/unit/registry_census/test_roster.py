"""Reading census rosters (pure): columns, Chinese values, dates, encodings, empty rows, formulas."""

from __future__ import annotations

import io
import tracemalloc
from datetime import date, datetime

import pytest
from openpyxl import Workbook, load_workbook

from services.registry.domain import census
from services.registry.domain.rules import RuleViolation
from services.registry.service_layer.census import check_row, open_roster, template
from tests.integration.registry_census.rosters import HEADERS, csv_bytes, good, row, xlsx

KEY = "unit-test-key"


def rows_of(content: bytes) -> list[census.RosterRow]:
    return list(open_roster(content).rows())


def checked(content: bytes, region: str = ""):
    roster = open_roster(content)
    return [check_row(r, roster.headers, region=region, key=KEY) for r in roster.rows()]


@pytest.mark.parametrize("enum", list(census.LABELS))
def test_every_enum_value_has_chinese_labels_that_read_back_to_it(enum):
    assert set(census.LABELS[enum]) == {e.value for e in enum}
    for value, labels in census.LABELS[enum].items():
        for label in (*labels, value, value.upper()):
            assert census._choice(enum, label) == value


def test_chinese_values_become_the_api_body():
    cells = row(good(1), 性别="男", 身份证号=None, 户籍状况="无户籍", 留守类型="一方外出，另一方无监护能力",
                父亲去向="外出务工", 母亲去向="无监护能力", 与儿童关系="外婆", 监护能力="无", 困境类别="低保家庭、 孤儿,残疾")
    [r] = rows_of(csv_bytes([cells]))
    assert not r.errors
    d = r.data
    assert (d["gender"], d["hukou_status"], d["left_behind_type"]) == ("male", "unregistered", "one_out_other_incapable")
    assert (d["father"]["status"], d["mother"]["status"]) == ("migrant_worker", "incapable")
    assert (d["guardian"]["relationship"], d["guardian"]["capacity"]) == ("grandparent", "none")
    assert d["risk_categories"] == ["dibao_family", "orphan", "disabled"]


def test_english_enum_values_are_accepted_too():
    [r] = rows_of(csv_bytes([row(good(1), 性别="female", 留守类型="both_parents_out", 困境类别="orphan")]))
    assert (r.data["gender"], r.data["left_behind_type"], r.data["risk_categories"], r.errors) == ("female", "both_parents_out", ["orphan"], [])


def test_an_unknown_value_is_reported_with_the_allowed_ones():
    [r] = rows_of(csv_bytes([row(good(1), 户籍状况="待定")]))
    [e] = r.errors
    assert (e["column"], e["field"], e["type"]) == ("户籍状况", "hukou_status", "cell_choice")
    assert "有户籍、无户籍" in e["message_zh"] and "registered" in e["message_en"]


@pytest.mark.parametrize("raw", [
    "2015-03-02", "2015/3/2", "2015.3.2", "2015年3月2日", "２０１５－０３－０２", "20150302", 20150302, "2015/3/2 0:00",
    datetime(2015, 3, 2), date(2015, 3, 2), 42065, 42065.0,
])
def test_dates_in_the_forms_rosters_use(raw):
    assert census.read_date(raw) == "2015-03-02"


@pytest.mark.parametrize("raw", ["2015-02-30", "3/2/2015", "去年", "2015-3"])
def test_not_a_date(raw):
    with pytest.raises(RuleViolation) as exc:
        census.read_date(raw)
    assert exc.value.code == "cell_date"


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030", "utf-16"])
def test_csv_encodings_are_detected(encoding):
    [r] = rows_of(csv_bytes([good(1)], encoding=encoding))
    assert (r.data["name"], r.data["father"]["work_place"], r.errors) == ("儿童1", "广东东莞", [])


def test_gb18030_is_not_mistaken_for_utf8():
    content = csv_bytes([row(good(1), 姓名="龘䶮")], encoding="gb18030")
    with pytest.raises(UnicodeDecodeError):
        content.decode("utf-8")
    assert rows_of(content)[0].data["name"] == "龘䶮"


def test_a_file_in_no_known_encoding_is_refused_as_a_file():
    for content in (csv_bytes([good(1)], encoding="gb18030") + b"\x81", csv_bytes([good(1)], encoding="utf-16") + b"\x00"):
        with pytest.raises(RuleViolation) as exc:
            open_roster(content)
        assert (exc.value.code, exc.value.field) == ("file_encoding", "file")


@pytest.mark.parametrize("encoding", ["utf-8", "gb18030"])
def test_a_large_csv_is_read_in_pieces_keeping_only_its_bytes(encoding):
    # Several of the encoding check's pieces (1 MiB), so characters of two or three bytes straddle their ends.
    rows = [row(good(n), 父亲务工地点="广东东莞" * (n % 7 + 1)) for n in range(20_000)]
    content = csv_bytes(rows, encoding=encoding)
    assert len(content) > 3 * census._CHECK_PIECE
    tracemalloc.start()
    try:
        roster = open_roster(content)
        read = [(r.number, r.data["father"]["work_place"]) for r in roster.rows()]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert read == [(n + 2, "广东东莞" * (n % 7 + 1)) for n in range(20_000)]
    assert roster.count() == 20_000
    # What was read (a list of short strs) and a few pieces of text; not the roster's text (4x its size before).
    assert peak < len(content)


def test_empty_rows_are_skipped_and_rows_keep_their_spreadsheet_numbers():
    blank = [None] * len(HEADERS)
    content = xlsx([good(1), blank, ["  "] + [None] * (len(HEADERS) - 1), good(2)])
    assert [r.number for r in rows_of(content)] == [2, 5]
    assert [r.number for r in rows_of(csv_bytes([good(1), blank, good(2)]))] == [2, 4]


def test_a_title_row_above_the_headers_and_headers_in_any_order_and_width():
    wb = Workbook()
    ws = wb.active
    ws.append(["城关镇留守儿童摸底登记表"])
    headers = list(reversed(HEADERS))
    headers[headers.index("村(社区)代码")] = "村（社区） 代码"  # full-width and a space: the same column
    ws.append(headers)
    ws.append(list(reversed(good(1))))
    buf = io.BytesIO()
    wb.save(buf)
    roster = open_roster(buf.getvalue())
    [r] = roster.rows()
    assert (roster.header_row, r.number, r.data["village_code"]) == (2, 3, "410523100201")
    assert roster.headers["village_code"] == "村（社区） 代码"  # reports name the column as the clerk wrote it


def test_a_formula_is_read_as_its_value_never_as_its_text():
    cells = row(good(1), 班级="=A1&\"班\"")  # written by a program: no computed value stored
    [r] = rows_of(xlsx([cells]))
    assert "class_name" not in r.data


def test_an_id_number_stored_as_a_number_is_refused_as_such():
    [r] = rows_of(xlsx([row(good(1), 身份证号=410523201201010000)]))
    assert [(e["column"], e["type"]) for e in r.errors] == [("身份证号", "cell_number_format")]
    [r] = rows_of(csv_bytes([row(good(1), 身份证号="4.10523E+17")]))
    assert [e["type"] for e in r.errors] == ["cell_number_format"]


def test_codes_and_phones_typed_as_numbers_are_read_as_digits():
    [r] = rows_of(xlsx([row(good(1), **{"村(社区)代码": 410523100201, "父亲电话": 13800138000.0})]))
    assert (r.data["village_code"], r.data["father"]["phone"], r.errors) == ("410523100201", "13800138000", [])


@pytest.mark.parametrize(("content", "code"), [
    (csv_bytes([], headers=["姓名", "性别", "出生日期"]), "file_columns"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "file_format"),
    (csv_bytes([["a", "b"]], headers=["x", "y"]), "file_headers"),
    (b"PK\x03\x04 not really a zip", "file_unreadable"),
])
def test_files_that_are_not_rosters_are_refused_whole(content, code):
    with pytest.raises(RuleViolation) as exc:
        open_roster(content)
    assert (exc.value.code, exc.value.field) == (code, "file")


def test_rows_are_validated_by_the_api_rules_and_errors_name_their_columns():
    bad = row(good(1), **{"村(社区)代码": "4105", "监护人姓名": None, "困境类别": "孤儿"})
    [c] = checked(csv_bytes([bad]))
    assert c.body is None
    assert sorted((e["column"], e["field"], e["type"]) for e in c.errors) == [
        ("村(社区)代码", "village_code", "village_code_format"),
        ("监护人姓名", "guardian.name", "missing"),
    ]


def test_a_row_outside_the_callers_area_is_refused():
    [inside, outside] = checked(csv_bytes([good(1, "410523100201"), good(2, "410526100201")]), region="410523")
    assert inside.body is not None and inside.key
    assert outside.body is None and [e["type"] for e in outside.errors] == ["outside_region"]


def test_the_natural_key_ignores_full_width_and_spaces_but_not_the_id_number():
    body = {"name": "王 小明", "birth_date": date(2015, 3, 2), "village_code": "410523100201", "id_number": None}
    same = {**body, "name": "王小明\u3000"}
    assert census.natural_key(body, KEY) == census.natural_key(same, KEY)
    assert census.natural_key(body, KEY) != census.natural_key({**body, "id_number": "410523201503020011"}, KEY)
    assert census.natural_key(body, KEY) != census.natural_key(body, "another key")


@pytest.mark.parametrize("value", ["=1+1", "+1", "-1", "@SUM(A1)", "\t=1"])
def test_formula_starts_are_neutralised(value):
    assert census.neutralise(value) == "'" + value


def test_the_report_puts_errors_first_and_neutralises_formulas():
    content = csv_bytes([row(good(1), 学校="=cmd|' /C calc'!A0", 性别="?"), good(2)])
    roster = open_roster(content)
    errors = {c.row: c.errors for c in checked(content) if c.errors}
    sheet = load_workbook(io.BytesIO(census.report(roster, errors))).worksheets[0]
    school = 2 + HEADERS.index("学校")
    assert sheet.cell(1, 1).value == "错误"
    assert sheet.cell(2, 1).value.startswith("性别：") and sheet.cell(3, 1).value is None
    assert sheet.cell(2, school).value == "'=cmd|' /C calc'!A0" and sheet.cell(2, school).data_type == "s"


def test_the_template_has_every_column_and_a_valid_example_row():
    content = template()
    sheet = load_workbook(io.BytesIO(content)).worksheets[0]
    assert [c.value for c in sheet[1]] == [c.header for c in census.COLUMNS]
    [c] = checked(content)
    assert c.body is not None, c.errors
