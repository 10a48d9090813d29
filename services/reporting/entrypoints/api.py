"""Reporting API (port 8004): figures, drill-downs and reference data; never a name.

Every route is scoped by the caller's token: ``region`` must lie inside the token's region
(a division-code prefix), and defaults to it.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from services.reporting.adapters.orm import child_population, place_figures
from services.reporting.domain.figures import Period, month_of, quarter
from services.reporting.service_layer import queries
from shared.auth import CurrentPrincipal, Principal, Role, role_in
from shared.clock import today_local
from shared.errors import error_body

router = APIRouter(prefix="/api/v1", tags=["figures 统计"])

Region = Annotated[str, Query(pattern=r"^[0-9]{2,12}$", description="division code (2-12 digits); your own area when omitted")]
AsOf = Annotated[date | None, Query(description="the day date-dependent figures are counted on (today when omitted)")]


# Figures are for the offices of an area: a helper sees only paired children and an agency only its
# referrals, so the drill-down's ids and a place's figures are not theirs (scope matrix).
_READERS = {Role.admin, Role.county_office, Role.township, Role.village_supervisor, Role.school}
# Reference data, and helper figures (helper_months holds no place): for those who see a whole county.
_COUNTY_WIDE = {Role.admin, Role.county_office}


Reader = Annotated[Principal, Depends(role_in(_READERS))]


def field_error(field: str, zh: str, en: str, status: int = 422) -> HTTPException:
    return HTTPException(status, detail=error_body([{"field": field, "type": "value_error", "message_zh": zh, "message_en": en}]))


def scope(principal: Principal, region: str | None) -> str:
    """The place asked for, if the token may see it."""
    region = region or principal.region
    if not region:
        raise field_error("region", "请指定地区代码 (region)", "give a division code (region)")
    if not principal.covers(region):
        raise HTTPException(403, detail={"message_zh": "该地区不在您的辖区内", "message_en": "that place is outside your area"})
    return region


def period_of(label: str | None, today: date) -> Period:
    """A quarter such as 2026Q4; the current quarter when omitted."""
    try:
        return quarter(label or f"{today.year}Q{(today.month - 1) // 3 + 1}")
    except ValueError:
        raise field_error("quarter", "季度格式应为 2026Q4", "quarter must look like 2026Q4") from None


@router.get("/figures/children", summary="留守儿童数 Left-behind children per place")
async def children_by_place(
    request: Request, principal: Reader,
    region: Annotated[str, Query(pattern=r"^\d{2,12}$", description="division-code prefix")] = "",
) -> dict[str, int]:
    """Counts for every division under ``region`` (and under the caller's own area)."""
    area = max(region, principal.region, key=len)
    if not (area.startswith(region) and area.startswith(principal.region)):
        return {}
    async with request.app.state.runtime.uow() as uow:
        rows = await uow.session.execute(
            select(place_figures.c.place, place_figures.c.value)
            .where(place_figures.c.place.startswith(area, autoescape=True), place_figures.c.figure == "children",
                   place_figures.c.place.op("~")("^[0-9]+$"), place_figures.c.value != 0)
            .order_by(place_figures.c.place)
        )
        return dict(rows.all())


@router.get("/figures", summary="各项指标 Every figure of a place for a quarter")
async def figures(
    request: Request, principal: Reader, region: Region = None,
    quarter_: Annotated[str | None, Query(alias="quarter", description="e.g. 2026Q4; the current one when omitted")] = None,
    as_of: AsOf = None,
) -> dict:
    today = as_of or today_local()
    region, period = scope(principal, region), period_of(quarter_, today)
    async with request.app.state.runtime.uow() as uow:
        return await queries.figures(uow, region, period, today)


@router.get("/figures/places", summary="下级地区 The places one level down, furthest behind first")
async def places(request: Request, principal: Reader, region: Region = None, as_of: AsOf = None) -> list[dict]:
    region = scope(principal, region)
    async with request.app.state.runtime.uow() as uow:
        return await queries.places(uow, region, as_of or today_local())


@router.get("/figures/trend", summary="月度趋势 Figures by month")
async def trend(
    request: Request, principal: Reader, region: Region = None,
    months: Annotated[int, Query(ge=1, le=36)] = 12, as_of: AsOf = None,
) -> dict:
    region = scope(principal, region)
    last = month_of(as_of or today_local())
    series = [last]
    while len(series) < months:
        series.insert(0, month_of(series[0] - timedelta(days=1)))
    async with request.app.state.runtime.uow() as uow:
        return await queries.trend(uow, region, series)


@router.get("/figures/drilldown", summary="下钻 The children (pseudonymous ids) behind a figure")
async def drilldown(
    request: Request, principal: Reader,
    figure: Annotated[str, Query(description="children, complete, incomplete, unguarded, agreement, out_of_school, "
                                             "expiring_30_days, no_contact_30_days, type:<t>, guardian:<g>, risk:<r>, gender:<g>")],
    region: Region = None, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=100_000_000)] = 0, as_of: AsOf = None,
) -> dict:
    region = scope(principal, region)
    async with request.app.state.runtime.uow() as uow:
        return await queries.children_behind(uow, region, figure, as_of or today_local(), limit, offset)


@router.get("/figures/helpers", summary="帮扶人考核 Contacts and missed windows per helper")
async def helpers(
    request: Request, principal: Annotated[Principal, Depends(role_in(_COUNTY_WIDE))],
    helper_id: Annotated[list[UUID] | None, Query(description="these helpers; all when omitted (admin only)")] = None,
    quarter_: Annotated[str | None, Query(alias="quarter")] = None,
) -> list[dict]:
    if helper_id is None and principal.role is not Role.admin:
        raise field_error("helper_id", "请指定帮扶人编号", "name the helpers (helper_id)")
    period = period_of(quarter_, today_local())
    async with request.app.state.runtime.uow() as uow:
        return await queries.helpers(uow, helper_id, period.months)


class PopulationIn(BaseModel):
    """All children (儿童总数) living in a place: the denominator of the left-behind share."""

    place: str = Field(pattern=r"^[0-9]{2,12}$", description="division code")
    children: int = Field(ge=0, le=2_000_000_000, description="all children living there")
    source: str = Field("", max_length=200, description="where the number comes from, e.g. 2025 census")


@router.put("/reference/population", summary="儿童总数 Set all children per place (reference data)")
async def set_population(request: Request, principal: Annotated[Principal, Depends(role_in(_COUNTY_WIDE))],
                         rows: list[PopulationIn]) -> dict[str, int]:
    seen: set[str] = set()
    for i, row in enumerate(rows):
        if not principal.covers(row.place):
            raise field_error(f"{i}.place", "该地区不在您的辖区内", "that place is outside your area", 403)
        if row.place in seen:  # one upsert cannot set a place twice
            raise field_error(f"{i}.place", "同一地区出现了两次", "the same place appears twice", 422)
        seen.add(row.place)
    async with request.app.state.runtime.uow() as uow:
        await store_population(uow.session, [r.model_dump() for r in rows])
        await uow.commit()
    return {"stored": len(rows)}


async def store_population(session, rows: list[dict]) -> None:
    if rows:
        stmt = insert(child_population).values(rows)
        await session.execute(stmt.on_conflict_do_update(index_elements=["place"], set_={
            "children": stmt.excluded.children, "source": stmt.excluded.source, "updated_at": stmt.excluded.updated_at,
        }))
