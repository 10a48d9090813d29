"""Census rosters (摸底排查): the spreadsheet's columns and the reading of its rows.

Pure (no I/O). A roster is read as a clerk fills it in: Chinese headers and
values (男/女, 有户籍, 父母双方外出务工...) or the API's English enum values,
dates as 2015-03-02, 2015/3/2, 2015年3月2日 or Excel dates, xlsx or csv (UTF-8,
UTF-8 with BOM, GB18030). Reading only turns cells into the API's body; what a
row means is checked by the API's own ChildIn (service_layer.census).
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import hmac
import io
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from itertools import islice
from typing import Any

from openpyxl import Workbook, load_workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.utils.datetime import from_excel
from openpyxl.worksheet.datavalidation import DataValidation

from services.registry.domain.rules import RuleViolation, id_check_char
from shared.spreadsheets import Watermark, neutralise, watermark_workbook
from shared.contracts.registry_v1 import (
    Gender,
    GuardianCapacity,
    GuardianRelationship,
    HukouStatus,
    LeftBehindType,
    ParentStatus,
    RiskCategory,
)

# Enum value -> the labels a clerk may write; the first is the one the template offers.
LABELS: dict[type[StrEnum], dict[str, tuple[str, ...]]] = {
    Gender: {"male": ("男",), "female": ("女",)},
    HukouStatus: {"registered": ("有户籍", "有"), "unregistered": ("无户籍", "无", "未落户")},
    LeftBehindType: {
        "both_parents_out": ("父母双方外出务工", "双方外出", "父母均外出"),
        "one_out_other_incapable": ("一方外出、另一方无监护能力", "一方外出"),
    },
    ParentStatus: {
        "migrant_worker": ("外出务工", "外出"),
        "at_home": ("在家",),
        "incapable": ("无监护能力",),
        "deceased": ("去世", "已故", "死亡"),
        "unknown": ("不详", "不明"),
    },
    GuardianRelationship: {
        "grandparent": ("祖父母", "外祖父母", "祖父", "祖母", "外祖父", "外祖母", "爷爷", "奶奶", "外公", "外婆"),
        "parent": ("父母", "父亲", "母亲"),
        "relative": ("亲戚", "其他亲属"),
        "sibling": ("兄姐", "哥哥", "姐姐"),
        "other": ("其他",),
    },
    GuardianCapacity: {
        "full": ("有监护能力", "完全", "有"),
        "limited": ("监护能力较弱", "较弱", "有限", "部分"),
        "none": ("无监护能力", "无"),
    },
    RiskCategory: {
        "no_guardian": ("无人监护",),
        "dropout": ("失学辍学", "辍学", "失学"),
        "no_hukou": ("无户籍",),
        "orphan": ("孤儿",),
        "de_facto_unsupported": ("事实无人抚养",),
        "prisoner_child": ("服刑在押人员子女",),
        "disabled": ("残疾",),
        "street_child": ("流浪",),
        "hiv_affected": ("受艾滋病影响",),
        "drug_family": ("吸毒家庭子女",),
        "violence_victim": ("受暴力侵害",),
        "dibao_family": ("低保家庭",),
    },
}

_PUNCT = re.compile(r"[\s、，,;；/·*＊]+")


def _norm(text: str) -> str:
    """Full-width to half-width, lower case, no spaces or separators: how labels and headers compare."""
    return _PUNCT.sub("", unicodedata.normalize("NFKC", text)).lower()


_LOOKUP = {
    enum: {_norm(label): value for value, labels in by_value.items() for label in (value, *labels)}
    for enum, by_value in LABELS.items()
}
# The labels and values as written (most cells): found without normalising the text.
_EXACT = {
    enum: {label: value for value, labels in by_value.items() for label in (value, *labels)}
    for enum, by_value in LABELS.items()
}


@dataclass(frozen=True)
class Column:
    header: str
    field: str  # path in the API's body (ChildIn), e.g. "father.status"
    example: Any = None
    choices: type[StrEnum] | None = None
    multiple: bool = False  # several values in one cell, separated by 、 or ,
    aliases: tuple[str, ...] = ()
    text: bool = False  # digits that must stay text in Excel (ID numbers, codes, phones)


def _example_id_number() -> str:
    first17 = "410523" + "20150302" + "001"  # odd sequence: male
    return first17 + id_check_char(first17)


COLUMNS: tuple[Column, ...] = (
    Column("姓名", "name", "王小明"),
    Column("性别", "gender", "男", Gender),
    Column("出生日期", "birth_date", date(2015, 3, 2), aliases=("出生年月日",)),
    Column("身份证号", "id_number", _example_id_number(), aliases=("身份证号码", "居民身份证号"), text=True),
    Column("户籍状况", "hukou_status", "有户籍", HukouStatus),
    Column("村(社区)代码", "village_code", "410523100201", aliases=("村(社区)区划代码", "村代码", "社区代码"), text=True),
    Column("学校", "school_id", "城关镇中心小学"),
    Column("班级", "class_name", "三年级二班"),
    Column("留守类型", "left_behind_type", "父母双方外出务工", LeftBehindType),
    Column("父亲姓名", "father.name", "王大军"),
    Column("父亲去向", "father.status", "外出务工", ParentStatus),
    Column("父亲务工地点", "father.work_place", "广东东莞"),
    Column("父亲电话", "father.phone", "13800138000", text=True),
    Column("母亲姓名", "mother.name", "李秀英"),
    Column("母亲去向", "mother.status", "外出务工", ParentStatus),
    Column("母亲务工地点", "mother.work_place", "浙江义乌"),
    Column("母亲电话", "mother.phone", "13700137000", text=True),
    Column("监护人姓名", "guardian.name", "王奶奶"),
    Column("与儿童关系", "guardian.relationship", "祖父母", GuardianRelationship, aliases=("监护人与儿童关系",)),
    Column("监护能力", "guardian.capacity", "监护能力较弱", GuardianCapacity, aliases=("监护人监护能力",)),
    Column("监护人电话", "guardian.phone", "13900139000", text=True),
    Column("困境类别", "risk_categories", "低保家庭", RiskCategory, multiple=True, aliases=("困境儿童类别", "风险类别")),
)
BY_FIELD = {c.field: c for c in COLUMNS}
# Field path -> (the nested object, or None, and the key in it): where a cell's value goes in the body.
_PLACE = {c.field: (c.field.rpartition(".")[0] or None, c.field.rpartition(".")[2]) for c in COLUMNS}
_BY_HEADER = {_norm(h): c for c in COLUMNS for h in (c.header, *c.aliases)}
ERROR_HEADER = "错误"
_HEADER_SEARCH_ROWS = 10  # a title row (e.g. "XX村留守儿童摸底登记表") may sit above the headers
_MIN_HEADERS = 3


@dataclass
class RosterRow:
    """One data row: its number as the spreadsheet shows it, the API body read from it, and
    the cells that could not be read (``errors``, each naming its column)."""

    number: int
    data: dict[str, Any]
    errors: list[dict] = field(default_factory=list)


def problem(column: str | None, field_path: str | None, code: str, zh: str, en: str) -> dict:
    """One reason a row was not registered, in the shape of the API's 422 errors plus the column."""
    return {"column": column, "field": field_path, "type": code, "message_zh": zh, "message_en": en}


def _file_error(code: str, zh: str, en: str) -> RuleViolation:
    return RuleViolation(code, zh, en).at("file")


_CHECK_PIECE = 1 << 20  # bytes decoded at a time when checking an encoding (the text is not kept)


def _decodes(content: bytes, encoding: str) -> bool:
    decoder, view = codecs.getincrementaldecoder(encoding)(), memoryview(content)
    try:
        for at in range(0, len(view), _CHECK_PIECE):
            decoder.decode(view[at:at + _CHECK_PIECE])
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _encoding(content: bytes) -> str:
    """The csv's text encoding, the whole file checked in it. Only the bytes are kept: the text is read a
    few KiB at a time as rows are (a str of the whole roster, and the csv reader's StringIO copy of it
    at 4 bytes a character, took 230 MB beside the 62 MB file of 250,000 rows, for the job's lifetime)."""
    if content.startswith((b"\xff\xfe", b"\xfe\xff")):  # Excel's "Unicode text" export
        candidates: tuple[str, ...] = ("utf-16",)
    else:
        candidates = ("utf-8-sig", "gb18030")
    for encoding in candidates:
        if _decodes(content, encoding):
            return encoding
    raise _file_error("file_encoding", "无法识别文件编码，请另存为 UTF-8 或 GB18030 编码的 CSV，或 xlsx",
                      "unknown text encoding: save as CSV in UTF-8 or GB18030, or as xlsx")


class Roster:
    """An uploaded roster (xlsx or csv): where its headers are and what its rows say."""

    def __init__(self, content: bytes, required: frozenset[str]) -> None:
        """``required``: the fields the API's body cannot do without; a roster lacking their columns is refused."""
        self.content = content
        if content.startswith(b"PK\x03\x04"):
            self.format = "xlsx"
        elif content.startswith(b"\xd0\xcf\x11\xe0"):
            raise _file_error("file_format", "不支持旧版 .xls 文件，请另存为 .xlsx 或 .csv",
                              "old .xls files are not read: save as .xlsx or .csv")
        else:
            self.format = "csv"
            self.encoding = _encoding(content)
        self.header_row, self.columns, written = self._find_headers()
        missing = [c.header for c in COLUMNS if c.field in required and c not in self.columns.values()]
        if missing:
            raise _file_error("file_columns", f"缺少必填列：{'、'.join(missing)}", f"missing columns: {', '.join(missing)}")
        # The headers as written in this file, so that reports name the columns the clerk sees.
        self.headers = {c.field: c.header for c in COLUMNS} | written

    def cells(self) -> Iterator[tuple[int, tuple]]:
        """Every row of the first sheet with its spreadsheet row number, empty rows included."""
        if self.format == "xlsx":
            try:
                wb = load_workbook(io.BytesIO(self.content), read_only=True, data_only=True)
            except Exception as exc:
                raise _file_error("file_unreadable", "无法读取该 xlsx 文件", f"the xlsx file cannot be read ({type(exc).__name__})") from None
            try:
                # The sheet is read lazily: a damaged one fails here, row by row, not when opened.
                yield from enumerate(wb.worksheets[0].iter_rows(values_only=True), start=1)
            except Exception as exc:
                raise _file_error("file_unreadable", "无法读取该 xlsx 文件", f"the xlsx file cannot be read ({type(exc).__name__})") from None
            finally:
                wb.close()
        else:
            sample = self._text().read(4096).split("\n", 1)[0]
            delimiter = "\t" if "\t" in sample and "," not in sample else ","
            reader = csv.reader(self._text(), delimiter=delimiter)
            try:
                for number, row in enumerate(reader, start=1):
                    yield number, tuple(row)
            except csv.Error as exc:  # e.g. a cell over the csv module's field limit (131,072 characters)
                raise _file_error("file_csv", f"CSV 文件第 {reader.line_num} 行无法读取（单元格过大或格式有误）",
                                  f"line {reader.line_num} of the CSV cannot be read: {exc}") from None

    def _text(self) -> io.TextIOWrapper:
        """The csv's text from its start, decoded as it is read (``newline=""``, as the csv module wants)."""
        return io.TextIOWrapper(io.BytesIO(self.content), encoding=self.encoding, newline="")

    def _find_headers(self) -> tuple[int, dict[int, Column], dict[str, str]]:
        for number, row in islice(self.cells(), _HEADER_SEARCH_ROWS):
            columns = {i: _BY_HEADER[_norm(str(h))] for i, h in enumerate(row) if h is not None and _norm(str(h)) in _BY_HEADER}
            if len(columns) >= _MIN_HEADERS:
                return number, columns, {c.field: str(row[i]).strip() for i, c in columns.items()}
        raise _file_error("file_headers", "前10行中找不到表头（姓名、性别、出生日期……），请使用模板",
                          "no header row (姓名, 性别, 出生日期...) in the first 10 rows: use the template")

    def rows(self, after: int = 0) -> Iterator[RosterRow]:
        """The data rows below the headers numbered above ``after``; rows with no data are skipped."""
        start, columns = max(after, self.header_row), list(self.columns.items())
        for number, cells in self.cells():
            if number <= start:
                continue
            n = len(cells)
            values = [(c, v) for i, c in columns if i < n and not _blank(v := cells[i])]
            if values:
                yield parse_row(number, values, self.headers)

    def count(self) -> int:
        """How many rows ``rows`` yields, without reading their cells' values."""
        columns = list(self.columns)
        return sum(
            1 for number, cells in self.cells()
            if number > self.header_row and any(i < len(cells) and not _blank(cells[i]) for i in columns)
        )


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def parse_row(number: int, values: list[tuple[Column, Any]], headers: dict[str, str]) -> RosterRow:
    """``values``: the row's non-blank cells, each with its column, in the roster's order."""
    row = RosterRow(number, {"father": {}, "mother": {}})
    data = row.data
    for column, raw in values:
        try:
            value = _read(column, raw)
        except RuleViolation as v:
            row.errors.append(problem(headers[column.field], column.field, v.code, v.zh, v.en))
            continue
        parent, leaf = _PLACE[column.field]
        (data if parent is None else data.setdefault(parent, {}))[leaf] = value
    return row


def _read(column: Column, raw: Any) -> Any:
    if column.field == "birth_date":
        return read_date(raw)
    if column.text:
        return _digits_text(column, raw)
    text = _as_text(raw)
    if column.choices is None:
        return text
    if column.multiple:
        return [_choice(column.choices, part) for part in _PUNCT.split(text) if part]
    return _choice(column.choices, text)


def _as_text(raw: Any) -> str:
    if isinstance(raw, float) and raw.is_integer():
        raw = int(raw)
    return str(raw).strip()


_SCIENTIFIC = re.compile(r"^\d(\.\d+)?e\+?\d+$", re.IGNORECASE)


def _digits_text(column: Column, raw: Any) -> str:
    text = _as_text(raw)
    # Excel keeps 15 significant digits: an ID number typed into a number cell has lost its last ones.
    if (column.field == "id_number" and isinstance(raw, (int, float))) or _SCIENTIFIC.match(text):
        raise RuleViolation("cell_number_format", f"{column.header}被存成了数字，末尾几位已丢失；请把该列设为文本后重新填写",
                            f"{column.header} was stored as a number and lost its last digits: format the column as text")
    return text


def _choice(enum: type[StrEnum], text: str) -> str:
    value = _EXACT[enum].get(text) or _LOOKUP[enum].get(_norm(text))
    if value is None:
        labels = [labels[0] for labels in LABELS[enum].values()]
        raise RuleViolation("cell_choice", f"“{text}”不是可选的取值：{'、'.join(labels)}",
                            f"{text!r} is not one of: {', '.join(labels)} ({', '.join(e.value for e in enum)})")
    return value


_DATE = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?(?:[ T]0?0:00(?::00)?)?$")
_COMPACT_DATE = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_EXCEL_SERIALS = range(1, 2958466)  # 1900-01-01 .. 9999-12-31


def read_date(raw: Any) -> str:
    """A birth date as the API takes it (YYYY-MM-DD), from any of the forms rosters use."""
    if isinstance(raw, datetime):
        return raw.date().isoformat()
    if isinstance(raw, date):
        return raw.isoformat()
    # Compared as numbers first: a huge or infinite number cell has no int() to test.
    serial = isinstance(raw, (int, float)) and _EXCEL_SERIALS.start <= raw < _EXCEL_SERIALS.stop
    if serial and not _COMPACT_DATE.match(str(int(raw))):
        return from_excel(raw).date().isoformat()
    text = _as_text(raw)
    if len(text) == 10 and text[4] == text[7] == "-" and text.isascii():  # 2015-03-02, most cells: as is when a date
        try:
            return date.fromisoformat(text).isoformat()
        except ValueError:
            pass  # e.g. 2015-02-30: refused below, with the clerk's words
    text = unicodedata.normalize("NFKC", text)
    match = _DATE.match(text) or _COMPACT_DATE.match(text)
    try:
        if match:
            return date(*map(int, match.groups())).isoformat()
    except ValueError:
        pass
    raise RuleViolation("cell_date", f"“{text}”不是有效日期，应写作 2015-03-02、2015/3/2 或 2015年3月2日",
                        f"{text!r} is not a valid date: write 2015-03-02, 2015/3/2 or 2015年3月2日")


def normalise_name(name: str) -> str:
    """Full-width characters and spaces do not make another child."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", name))


_KEYED: dict[str, hmac.HMAC] = {}  # key -> the HMAC keyed with it, copied for each hash (keying is most of the cost)


def natural_key(child: dict[str, Any], key: str) -> str:
    """The same child in two rosters: keyed hash of name, birth date, village and ID number
    (keyed, so the table reveals nothing of them)."""
    parts = (normalise_name(child["name"]), str(child["birth_date"]), child["village_code"], (child.get("id_number") or "").upper())
    keyed = _KEYED.get(key)
    if keyed is None:
        keyed = _KEYED[key] = hmac.new(key.encode(), digestmod=hashlib.sha256)
    h = keyed.copy()
    h.update("|".join(parts).encode())
    return h.hexdigest()


def to_cells(body: dict[str, Any]) -> list[Any]:
    """A row of the template from an API body (the inverse of reading): labels in Chinese."""
    out = []
    for column in COLUMNS:
        value: Any = body
        for name in column.field.split("."):
            value = (value or {}).get(name)
        if column.choices is not None and value is not None:
            labels = LABELS[column.choices]
            value = "、".join(labels[v][0] for v in value) if column.multiple else labels[value][0]
        out.append(value)
    return out


def template(required: frozenset[str]) -> bytes:
    """The roster template: Chinese headers, one example row, drop-downs, and a sheet of instructions
    (``required``: the fields the API's body cannot do without)."""
    wb = Workbook()
    ws = wb.active
    ws.title = "摸底登记"
    ws.append([c.header for c in COLUMNS])
    ws.append([c.example for c in COLUMNS])
    for i, column in enumerate(COLUMNS, start=1):
        letter = get_column_letter(i)
        ws.cell(1, i).font = Font(bold=True)
        ws.column_dimensions[letter].width = max(12, 2 * len(column.header) + 4)
        if column.text:
            ws.column_dimensions[letter].number_format = "@"
            ws.cell(2, i).number_format = "@"
        if column.field == "birth_date":
            ws.cell(2, i).number_format = "yyyy-mm-dd"
        if column.choices is not None and not column.multiple:
            options = ",".join(labels[0] for labels in LABELS[column.choices].values())
            validation = DataValidation(type="list", formula1=f'"{options}"', allow_blank=True)
            validation.add(f"{letter}2:{letter}10000")
            ws.add_data_validation(validation)
    ws.freeze_panes = "A2"
    notes = wb.create_sheet("填写说明")
    notes.append(["列", "必填", "可填写的值", "示例"])
    for column in COLUMNS:
        if column.choices is not None:
            allowed = "、".join(labels[0] for labels in LABELS[column.choices].values())
            if column.multiple:
                allowed += "（可填多个，用“、”分隔）"
        elif column.field == "birth_date":
            allowed = "日期，如 2015-03-02、2015/3/2、2015年3月2日"
        elif column.text:
            allowed = "文本格式的数字"
        else:
            allowed = "文字"
        notes.append([column.header, "是" if column.field in required else "", allowed, str(column.example)])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def describe(errors: list[dict]) -> str:
    """The 错误 cell of a row: each reason with its column, in Chinese and English."""
    return "；".join(f"{e['column'] or '本行'}：{e['message_zh']}（{e['message_en']}）" for e in errors)


def report(roster: Roster, errors_by_row: dict[int, list[dict]], mark: Watermark | None = None) -> bytes:
    """The roster as uploaded, with a first column 错误 naming what kept each row out.

    First, so that it is seen without scrolling and the rows keep their numbers; a
    corrected report can be uploaded again (the 错误 column is ignored, registered rows
    are recognised). ``mark``: who exports it, in the printed header and footer, the
    document properties and a last sheet (not a first line: the rows keep their numbers)."""
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title="导入结果")
    for number, cells in roster.cells():
        if number == roster.header_row:
            first = ERROR_HEADER
        else:
            errors = errors_by_row.get(number)
            first = describe(errors) if errors else None
        ws.append([first, *(neutralise(v) for v in cells)])
    if mark is not None:
        watermark_workbook(wb, mark)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
