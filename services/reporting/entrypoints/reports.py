"""GET /api/v1/reports/quarterly: the quarterly report (季度报表) as JSON, xlsx or the printable brief."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from services.reporting.adapters.exports import to_html, to_xlsx
from services.reporting.entrypoints.api import AsOf, Reader, Region, period_of, scope
from services.reporting.service_layer.reports import quarterly
from shared.security.audit import Action, audit_now
from shared.clock import today_local

router = APIRouter(prefix="/api/v1/reports", tags=["reports 报表"])
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@router.get("/quarterly", summary="季度报表 The quarterly report of a place")
async def quarterly_report(
    request: Request, principal: Reader, region: Region = None,
    quarter: Annotated[str | None, Query(description="e.g. 2026Q4; the current one when omitted")] = None,
    format: Annotated[Literal["json", "xlsx", "pdf", "html"], Query(description="pdf and html: the printable work brief")] = "json",
    as_of: AsOf = None,
):
    today = as_of or today_local()
    region, period = scope(principal, region), period_of(quarter, today)
    async with request.app.state.runtime.uow() as uow:
        report = await quarterly(uow, region, period, today)
    name = f"shouhu-{region}-{period.label}"
    if format != "json":  # a file leaves the system: on record
        await audit_now(request, Action.export, "report", [name])
    if format == "xlsx":
        return Response(to_xlsx(report), media_type=XLSX, headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'})
    if format in ("pdf", "html"):
        return HTMLResponse(to_html(report))
    return report
