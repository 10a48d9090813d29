"""HTTP API of the census import (摸底排查导入): template, upload, progress, report."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Literal
from urllib.parse import quote
from uuid import UUID

from fastapi import APIRouter, Depends, File, HTTPException, Query, Request, Response, UploadFile, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from sqlalchemy import select

from services.registry.adapters.id_vault import IdVault
from services.registry.adapters.orm import census_import_rows, census_imports
from services.registry.domain import census as roster_rules
from services.registry.domain.rules import RuleViolation
from services.registry.service_layer import census
from shared.auth import CurrentPrincipal, Principal, Role
from shared.security.audit import Action, audit_now
from shared.spreadsheets import Watermark

router = APIRouter(prefix="/api/v1/imports", tags=["imports 导入"])

_IMPORTERS = {Role.admin, Role.county_office, Role.township, Role.village_supervisor, Role.school}
MAX_UPLOAD_BYTES = 100 * 1024 * 1024  # a million-row csv is about 150 MB; xlsx compresses to well under this
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class RowError(BaseModel):
    column: str | None  # the header as in the uploaded file
    field: str | None  # the API's field path
    type: str
    message_zh: str
    message_en: str


class RowReport(BaseModel):
    row: int  # as the spreadsheet numbers it
    outcome: Literal["rejected", "already_registered"]
    child_id: UUID | None = None
    errors: list[RowError]


class ImportOut(BaseModel):
    id: UUID
    filename: str
    status: Literal["queued", "running", "done", "failed"]  # failed: ``error`` says why; its registered rows stay
    rows_total: int
    rows_done: int
    registered: int
    already_registered: int
    rejected: int
    error: str | None = None
    created_at: datetime
    finished_at: datetime | None = None
    report: list[RowReport]
    report_total: int  # rows with something to report; ``report`` is one page of them
    report_url: str


def _importer(principal: CurrentPrincipal) -> Principal:
    if principal.role not in _IMPORTERS:
        raise HTTPException(403, detail={"message_zh": "无权执行此操作", "message_en": "your role may not do this"})
    return principal


Importer = Annotated[Principal, Depends(_importer)]


def _xlsx(content: bytes, filename: str) -> Response:
    return Response(content, media_type=XLSX, headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}"})


def _not_found() -> HTTPException:
    return HTTPException(404, detail={"message_zh": "本辖区内没有该导入任务", "message_en": "no such import in your area"})


@router.get("/census/template", summary="摸底登记模板 The census roster template (xlsx)")
async def census_template(_: Importer) -> Response:
    return _xlsx(await asyncio.to_thread(census.template), "留守儿童摸底登记模板.xlsx")


@router.post(
    "/census", response_model=ImportOut, status_code=status.HTTP_202_ACCEPTED,
    summary="导入摸底名单 Import a census roster (xlsx or csv)",
    description="A roster of up to one chunk (500 rows) is imported before the answer (201); a larger one is "
    "a background job (202): follow GET /api/v1/imports/{id}.",
)
async def import_census(
    request: Request, response: Response, principal: Importer,
    file: Annotated[UploadFile, File(description="xlsx, or csv in UTF-8 / GB18030")],
) -> ImportOut:
    content = await file.read(MAX_UPLOAD_BYTES + 1)
    if len(content) > MAX_UPLOAD_BYTES:
        raise HTTPException(413, detail={"message_zh": "文件过大（上限100MB），请分批导入", "message_en": "file too large (100 MB at most): split it"})
    try:
        job_id = await census.CensusImporter(request.app.state.runtime).submit(
            filename=file.filename or "roster", content=content, actor=principal.subject, region=principal.region,
        )
    except RuleViolation as v:
        raise RequestValidationError(
            [{"loc": ("body", "file"), "type": v.code, "msg": v.en, "ctx": {"message_zh": v.zh, "message_en": v.en}}]
        ) from None
    out = await _load(request, job_id, principal, offset=0, limit=1000)
    response.headers["Location"] = f"/api/v1/imports/{job_id}"
    if out.status == "done":
        response.status_code = status.HTTP_201_CREATED
    return out


@router.get("/{import_id}", response_model=ImportOut, summary="导入进度与结果 Progress and report of an import")
async def get_import(
    import_id: UUID, request: Request, principal: Importer,
    offset: Annotated[int, Query(ge=0, le=2**62)] = 0, limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> ImportOut:
    return await _load(request, import_id, principal, offset=offset, limit=limit)


@router.get("/{import_id}/report.xlsx", summary="导入结果表 The roster with an 错误 column (xlsx)",
            description="The file carries names and ID numbers: each download is on record (audit log, export) "
            "and watermarked with who exported it and when. 410 once the roster was dropped under retention.")
async def import_report(import_id: UUID, request: Request, principal: Importer) -> Response:
    t, r = census_imports, census_import_rows
    rt = request.app.state.runtime
    async with rt.sessionmaker() as session:
        job = (await session.execute(
            select(t.c.content, t.c.content_key, t.c.region, t.c.filename).where(t.c.id == import_id)
        )).first()
        if job is None or not principal.covers(job.region):
            raise _not_found()
        rows = (await session.execute(
            select(r.c.row_number, r.c.errors).where(r.c.import_id == import_id, r.c.outcome != "registered")
        )).all()
    errors = {row.row_number: row.errors for row in rows}
    vault, mark = IdVault.from_settings(rt.settings), Watermark.of(principal)
    try:
        content = await asyncio.to_thread(lambda: roster_rules.report(
            census.open_roster(census.stored_roster(vault, import_id, job.content, job.content_key)), errors, mark))
    except census.RosterPurged as gone:
        raise HTTPException(status.HTTP_410_GONE, detail={
            "message_zh": f"导入 {import_id} 的摸底名单已按保存期限删除（{gone.on}），结果表无法再生成；导入统计与各行结果仍可查询",
            "message_en": f"roster purged under retention: import {import_id}'s roster was dropped on {gone.on}, so its report "
                          f"cannot be built; the import's counts and row outcomes remain (GET /api/v1/imports/{import_id})",
            "import_id": str(import_id),
        }) from None
    await audit_now(request, Action.export, "census_import", [import_id])  # names leave the system: on record
    return _xlsx(content, f"{job.filename.rsplit('.', 1)[0]}-导入结果.xlsx")


async def _load(request: Request, import_id: UUID, principal: Principal, *, offset: int, limit: int) -> ImportOut:
    t, r = census_imports, census_import_rows
    columns = [c for c in t.c if c.name not in ("content", "content_key", "actor", "worker", "lease_until", "last_row", "updated_at", "format")]
    async with request.app.state.runtime.sessionmaker() as session:
        job = (await session.execute(select(*columns).where(t.c.id == import_id))).mappings().first()
        if job is None or not principal.covers(job["region"]):
            raise _not_found()
        problems = r.c.import_id == import_id, r.c.outcome != "registered"
        rows = (await session.execute(
            select(r.c.row_number, r.c.outcome, r.c.child_id, r.c.errors).where(*problems)
            .order_by(r.c.row_number).offset(offset).limit(limit)
        )).all()
    report = [RowReport(row=x.row_number, outcome=x.outcome, child_id=x.child_id, errors=x.errors) for x in rows]
    return ImportOut(
        **{k: v for k, v in job.items() if k != "region"}, report=report,
        report_total=job["rejected"] + job["already_registered"], report_url=f"/api/v1/imports/{import_id}/report.xlsx",
    )
