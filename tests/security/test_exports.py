"""Exports and reveals of personal data (issue 9): the census roster sealed at rest (and re-sealed by
key rotation), every file carrying names on record and watermarked with who exported it and when, and
each showing of a full ID number on record without the number."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

from openpyxl import Workbook, load_workbook
from sqlalchemy import text

from services.registry.adapters.id_vault import IdVault
from services.registry.app import SPEC as REGISTRY
from services.registry.domain.rules import id_check_char
from services.registry.service_layer import protection
from shared.auth import Role, issue_token
from shared.spreadsheets import SHEET, Watermark, watermark_html, watermark_workbook
from tests.integration.registry_census.rosters import HEADERS, csv_bytes, good, row
from tests.security.test_at_rest import _spec  # a key ring spec of fresh random keys
from tests.support import child_payload, fresh_county, running_app, token

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
NAME, GUARDIAN, PHONE = "覃晓彤", "覃秀英", "13612345678"


def _as(settings, subject: str, role: Role, region: str = "") -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(settings, role=role, subject=subject, region=region)}"}


def _roster(village: str) -> tuple[bytes, list[str]]:
    """A CSV roster in UTF-8 (so that a copy in clear would show its names as bytes), its ID numbers."""
    first = row(good(1, village), 姓名=NAME, 监护人姓名=GUARDIAN, 监护人电话=PHONE)
    rows = [first, good(2, village), row(good(3, village), 性别="未知")]  # the third is rejected
    numbers = [r[HEADERS.index("身份证号")] for r in rows]
    return csv_bytes(rows), numbers


async def _import_row(engines, import_id: str) -> dict:
    async with engines["registry"].connect() as conn:
        return dict((await conn.execute(text("SELECT * FROM census_imports WHERE id = :id"), {"id": import_id})).mappings().one())


def _in_clear(stored: dict, secrets: list[str]) -> list[str]:
    """The secrets found in the row: in the content's raw bytes (UTF-8 and GB18030) or in any other column."""
    content = bytes(stored["content"])
    others = json.dumps({k: v for k, v in stored.items() if k != "content"}, default=str, ensure_ascii=False)
    return [s for s in secrets if s.encode() in content or s.encode("gb18030") in content or s in others]


async def _upload(client, headers, content: bytes) -> dict:
    r = await client.post("/api/v1/imports/census", files={"file": ("名单.csv", content)}, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


def test_the_watermark_is_in_the_headers_properties_and_a_last_sheet_of_a_workbook_and_first_in_a_page():
    mark = Watermark("clerk&co", "township", datetime(2026, 12, 4, 10, 0, tzinfo=UTC))
    assert mark.line == "导出人 exported by: clerk&co (township), 2026-12-04T18:00:00+08:00"
    wb = Workbook(write_only=True)
    wb.create_sheet("数据").append(["张三"])
    watermark_workbook(wb, mark)
    buf = io.BytesIO()
    wb.save(buf)
    back = load_workbook(io.BytesIO(buf.getvalue()))
    first = back.worksheets[0]
    assert first.title == "数据" and first["A1"].value == "张三"  # the data as it was
    assert first.oddHeader.center.text == first.oddFooter.center.text == mark.line.replace("&", "&&")
    assert (back.properties.creator, back.properties.description) == ("clerk&co", mark.line)
    assert back.worksheets[-1].title == SHEET and back.worksheets[-1]["A1"].value == mark.line

    page = watermark_html("<html><body class='x'><h1>书面报告</h1></body></html>", Watermark("<b>x</b>", "school"))
    assert page.index("导出人 exported by: &lt;b&gt;x&lt;/b&gt; (school)") < page.index("<h1>")
    assert page.index("<body class='x'>") < page.index("导出人")


async def test_the_stored_roster_holds_no_name_or_id_number_in_clear_and_its_report_is_watermarked_and_on_record(settings, engines):
    county = fresh_county()
    township, village = f"{county}001", f"{county}001001"
    content, numbers = _roster(village)
    secrets = [NAME, GUARDIAN, PHONE, *numbers]
    assert all(s.encode() in content for s in secrets)  # the upload itself has them in clear
    clerk = _as(settings, "clerk-qin", Role.township, township)
    async with running_app(REGISTRY, settings) as (app, client):
        job = await _upload(client, clerk, content)
        assert (job["registered"], job["rejected"]) == (2, 1), job["report"]
        stored = await _import_row(engines, job["id"])
        assert _in_clear(stored, secrets) == []
        assert stored["content_key"] == IdVault.from_settings(settings).keys.current

        r = await client.get(f"/api/v1/imports/{job['id']}/report.xlsx", headers=clerk)
        assert r.status_code == 200 and r.headers["content-type"] == XLSX
        wb = load_workbook(io.BytesIO(r.content))
        sheet = wb.worksheets[0]
        assert sheet["A1"].value == "错误" and sheet["A4"].value  # the rows keep their numbers; row 4 rejected
        assert NAME in [c.value for c in sheet[2]]
        for line in (sheet.oddHeader.center.text, sheet.oddFooter.center.text, wb.properties.description,
                     wb.worksheets[-1]["A1"].value):
            assert line.startswith("导出人 exported by: clerk-qin (township), ")
        assert wb.properties.creator == "clerk-qin"

        audit = await client.get("/api/v1/audit", params={"record_id": job["id"]}, headers=token(settings))
        assert [(e["action"], e["kind"], e["subject"], e["role"]) for e in audit.json()] == [
            ("export", "census_import", "clerk-qin", "township")]
        # Another township's clerk neither gets the file nor leaves a record of an export.
        other = _as(settings, "clerk-other", Role.township, f"{county}002")
        assert (await client.get(f"/api/v1/imports/{job['id']}/report.xlsx", headers=other)).status_code == 404
        assert len((await client.get("/api/v1/audit", params={"record_id": job["id"]}, headers=token(settings))).json()) == 1

        # The watermarked report can still be corrected and uploaded again: its registered rows are recognised.
        again = await client.post("/api/v1/imports/census", files={"file": ("结果.xlsx", r.content)}, headers=clerk)
        assert (again.json()["registered"], again.json()["already_registered"]) == (0, 2), again.text


async def test_rotation_reseals_the_stored_rosters_and_seals_those_kept_in_clear(settings, engines):
    county = fresh_county()
    township = f"{county}001"
    old_keys = _spec("2025")
    before = settings.model_copy(update={"id_encryption_keys": old_keys})
    clerk = token(before, Role.township, township)
    sealed_content, _ = _roster(f"{county}001001")
    legacy_content, legacy_numbers = _roster(f"{county}001002")
    async with running_app(REGISTRY, before) as (_, client):
        sealed = (await _upload(client, clerk, sealed_content))["id"]
        legacy = (await _upload(client, clerk, legacy_content))["id"]
    assert bytes((await _import_row(engines, sealed))["content"]).startswith(b"2025:")
    # A roster uploaded before migration 0007: in clear, no key.
    async with engines["registry"].begin() as conn:
        await conn.execute(text("UPDATE census_imports SET content = :c, content_key = NULL WHERE id = :id"),
                           {"c": legacy_content, "id": legacy})

    rotated = before.model_copy(update={"id_encryption_keys": old_keys + "," + _spec("2026")})
    async with running_app(REGISTRY, rotated) as (app, client):
        legacy_report = await client.get(f"/api/v1/imports/{legacy}/report.xlsx", headers=clerk)
        assert legacy_report.status_code == 200  # read as it is until sealed
        vault = IdVault.from_settings(rotated)
        assert await protection.rotate_roster_keys(app.state.runtime.uow, vault, region=county) == 2
        assert await protection.rotate_roster_keys(app.state.runtime.uow, vault, region=county) == 0
    for import_id in (sealed, legacy):
        stored = await _import_row(engines, import_id)
        assert stored["content_key"] == "2026" and bytes(stored["content"]).startswith(b"2026:")
        assert _in_clear(stored, [NAME, GUARDIAN, PHONE, *legacy_numbers]) == []

    only_new = rotated.model_copy(update={"id_encryption_keys": rotated.id_encryption_keys.split(",")[1]})
    async with running_app(REGISTRY, only_new) as (_, client):
        for import_id in (sealed, legacy):
            r = await client.get(f"/api/v1/imports/{import_id}/report.xlsx", headers=token(only_new, Role.township, township))
            assert r.status_code == 200 and NAME in [c.value for c in load_workbook(io.BytesIO(r.content)).worksheets[0][2]]


async def test_each_showing_of_a_full_id_number_is_on_record_without_the_number(settings, engines):
    county = fresh_county()
    first17 = f"{county}20140601002"
    number = first17 + id_check_char(first17)
    async with running_app(REGISTRY, settings) as (_, client):
        r = await client.post("/api/v1/children", json=child_payload(village_code=f"{county}001001", id_number=number),
                              headers=token(settings))
        assert r.status_code == 201, r.text
        child_id = r.json()["id"]
        admin = _as(settings, "admin-li", Role.admin) | {"X-Purpose": "court-order:7"}
        for _ in range(2):
            shown = await client.get(f"/api/v1/children/{child_id}/id-number", headers=admin)
            assert shown.status_code == 200 and shown.json()["id_number"] == number
        township = _as(settings, "clerk-wang", Role.township, f"{county}001")
        assert (await client.get(f"/api/v1/children/{child_id}/id-number", headers=township)).status_code == 403
        entries = (await client.get("/api/v1/audit", params={"record_id": child_id}, headers=token(settings))).json()
    reveals = [(e["action"], e["subject"], e["purpose"]) for e in entries if e["kind"] == "id_number"]
    assert reveals == [("read", "admin-li", "court-order:7")] * 2  # the refused township is not among them
    async with engines["registry"].connect() as conn:
        rows = (await conn.execute(text("SELECT a::text FROM audit_log a WHERE record_id = :id"), {"id": child_id})).scalars().all()
    assert rows and not any(number in r or number[-6:] in r for r in rows)
