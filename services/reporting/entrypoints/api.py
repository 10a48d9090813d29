"""Reporting API (port 8004): counts only, never names."""

from typing import Annotated

from fastapi import APIRouter, Query, Request
from sqlalchemy import select

from services.reporting.adapters.orm import region_counts
from shared.auth import CurrentPrincipal

router = APIRouter(prefix="/api/v1", tags=["figures 统计"])


@router.get("/figures/children", summary="留守儿童数 Left-behind children per place")
async def children_by_place(
    request: Request, principal: CurrentPrincipal,
    region: Annotated[str, Query(pattern=r"^\d{2,12}$", description="division-code prefix")] = "",
) -> dict[str, int]:
    """Counts for every place under ``region`` (and under the caller's own area)."""
    scope = max(region, principal.region, key=len)
    if not (scope.startswith(region) and scope.startswith(principal.region)):
        return {}
    async with request.app.state.runtime.uow() as uow:
        rows = await uow.session.execute(
            select(region_counts.c.region_code, region_counts.c.children)
            .where(region_counts.c.region_code.startswith(scope, autoescape=True))
            .order_by(region_counts.c.region_code)
        )
        return dict(rows.all())
