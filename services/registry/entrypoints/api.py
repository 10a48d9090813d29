"""HTTP API of the registry (port 8001)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.exceptions import RequestValidationError

from services.registry.domain.model import Child
from services.registry.domain.rules import RuleViolation, check_region_prefix
from services.registry.entrypoints.schemas import ChildCreated, ChildIn, ChildOut, ChildPage, ChildPatch
from services.registry.service_layer import handlers
from shared.auth import CurrentPrincipal, Principal, Role
from shared.contracts.registry_v1 import RiskCategory

router = APIRouter(prefix="/api/v1", tags=["children 儿童档案"])

_WRITERS = {Role.admin, Role.county_office, Role.township, Role.village_supervisor, Role.school}
_READERS = _WRITERS  # helpers and agencies read through their pairings and referrals (later issues)


def _runtime(request: Request):
    return request.app.state.runtime


def _forbidden() -> HTTPException:
    return HTTPException(403, detail={"message_zh": "无权执行此操作", "message_en": "your role may not do this"})


def _not_found() -> HTTPException:
    return HTTPException(404, detail={"message_zh": "本辖区内没有该儿童档案", "message_en": "no such child in your area"})


def _unprocessable(v: RuleViolation, where: str = "body") -> RequestValidationError:
    """A rule broken past the schema, answered in the same shape as the schema's own 422s."""
    loc = (where, *v.field.split(".")) if v.field else (where,)
    return RequestValidationError(
        [{"loc": loc, "type": v.code, "msg": v.en, "ctx": {"message_zh": v.zh, "message_en": v.en}}]
    )


def _writer(principal: CurrentPrincipal) -> Principal:
    if principal.role not in _WRITERS:
        raise _forbidden()
    return principal


def _reader(principal: CurrentPrincipal) -> Principal:
    if principal.role not in _READERS:
        raise _forbidden()
    return principal


def _out(child: Child) -> ChildOut:
    return ChildOut.model_validate({**vars(child)})


@router.post("/children", status_code=status.HTTP_201_CREATED, response_model=ChildCreated, summary="登记儿童 Register a child")
async def register_child(body: ChildIn, request: Request, principal: Annotated[Principal, Depends(_writer)]) -> ChildCreated:
    if not principal.covers(body.village_code):
        raise HTTPException(
            403, detail={"message_zh": "village_code 不在您的辖区内", "message_en": "village_code is outside your area"}
        )
    rt = _runtime(request)
    try:
        child = await handlers.register_child(
            rt.uow(), body.model_dump(), actor=principal.subject, id_hash_key=rt.settings.id_hash_key
        )
    except RuleViolation as v:
        raise _unprocessable(v) from None
    return ChildCreated(id=child.id, version=child.version)


@router.get("/children/{child_id}", response_model=ChildOut, summary="查看儿童档案 Read a child's archive")
async def get_child(child_id: UUID, request: Request, principal: Annotated[Principal, Depends(_reader)]) -> ChildOut:
    async with _runtime(request).uow() as uow:
        child = await uow.children.get(child_id)
    if child is None or not principal.covers(child.village_code):
        raise _not_found()
    return _out(child)


@router.patch("/children/{child_id}", response_model=ChildOut, summary="更新儿童档案 Update a child's archive")
async def update_child(
    child_id: UUID, body: ChildPatch, request: Request, principal: Annotated[Principal, Depends(_writer)]
) -> ChildOut:
    rt = _runtime(request)
    try:
        child = await handlers.update_child(
            rt.uow(), child_id, body.model_dump(exclude_unset=True), region=principal.region,
            actor=principal.subject, id_hash_key=rt.settings.id_hash_key,
        )
    except handlers.ChildNotFound:
        raise _not_found() from None
    except RuleViolation as v:
        raise _unprocessable(v) from None
    return _out(child)


@router.get("/children", response_model=ChildPage, summary="儿童档案列表 List children in your area")
async def list_children(
    request: Request,
    principal: Annotated[Principal, Depends(_reader)],
    region: Annotated[str | None, Query(description="区划代码前缀 division-code prefix (2-12 digits)")] = None,
    school_id: Annotated[str | None, Query(max_length=100)] = None,
    risk: Annotated[RiskCategory | None, Query(description="困境类别 risk category")] = None,
    page: Annotated[int, Query(ge=1)] = 1,
    page_size: Annotated[int, Query(ge=1, le=200)] = 50,
) -> ChildPage:
    scope = principal.region
    if region:
        try:
            region = check_region_prefix(region)
        except RuleViolation as v:
            raise _unprocessable(v.at("region"), "query") from None
        if not (region.startswith(scope) or scope.startswith(region)):
            return ChildPage(items=[], total=0, page=page, page_size=page_size)
        scope = max(region, scope, key=len)  # the narrower of the two
    async with _runtime(request).uow() as uow:
        items, total = await uow.children.list(
            region=scope, school_id=school_id, risk=risk, limit=page_size, offset=(page - 1) * page_size
        )
    return ChildPage(items=[_out(c) for c in items], total=total, page=page, page_size=page_size)
