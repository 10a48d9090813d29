"""HTTP API of the registry (port 8001)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError

from services.registry.adapters.id_vault import IdVault
from services.registry.domain.model import Child
from services.registry.domain.rules import RuleViolation, age_notice, check_id_number, check_region_prefix
from services.registry.entrypoints.schemas import ChildCreated, ChildIn, ChildOut, ChildPage, ChildPatch, Notice
from services.registry.service_layer import handlers
from services.registry.service_layer.guardianship import AgreementNotFound
from shared.clock import today_local
from shared.auth import Principal, Role, role_in
from shared.contracts.registry_v1 import RiskCategory
from shared.security.access import current_school
from shared.security.audit import Action, audit_now

router = APIRouter(prefix="/api/v1", tags=["children 儿童档案"])

_WRITERS = {Role.admin, Role.county_office, Role.township, Role.village_supervisor, Role.school}
_READERS = _WRITERS  # helpers and agencies read through their pairings and referrals (later issues)


def _runtime(request: Request):
    return request.app.state.runtime


def _not_found() -> HTTPException:
    return HTTPException(404, detail={"message_zh": "本辖区内没有该儿童档案", "message_en": "no such child in your area"})


def _unprocessable(v: RuleViolation, where: str = "body") -> RequestValidationError:
    """A rule broken past the schema, answered in the same shape as the schema's own 422s."""
    loc = (where, *v.field.split(".")) if v.field else (where,)
    return RequestValidationError(
        [{"loc": loc, "type": v.code, "msg": v.en, "ctx": {"message_zh": v.zh, "message_en": v.en}}]
    )


@contextmanager
def answering() -> Iterator[None]:
    """The service layer's refusals as HTTP answers: 404 outside one's area, 409 against the
    archive's state (with what it collides with), 422 for a broken rule."""
    try:
        yield
    except (handlers.ChildNotFound, AgreementNotFound):
        raise _not_found() from None
    except handlers.Conflict as c:
        raise HTTPException(409, detail={
            "code": c.code, "field": c.field, "message_zh": c.zh, "message_en": c.en, **c.details,
        }) from None
    except RuleViolation as v:
        raise _unprocessable(v) from None


def _notice(v: RuleViolation) -> Notice:
    return Notice(code=v.code, field=v.field, message_zh=v.zh, message_en=v.en)


_writer = role_in(_WRITERS)
_reader = role_in(_READERS)


def _out(child: Child) -> ChildOut:
    notice = age_notice(child.birth_date, today_local()) if child.is_open else None
    return ChildOut.model_validate({**vars(child), "warnings": [_notice(notice)] if notice else []})


@router.post("/children", status_code=status.HTTP_201_CREATED, response_model=ChildCreated, summary="登记儿童 Register a child",
             responses={200: {"description": "the archive this client_id already made (a retry)"}})
async def register_child(body: ChildIn, request: Request, response: Response,
                         principal: Annotated[Principal, Depends(_writer)]) -> ChildCreated:
    if not principal.covers(body.village_code):
        raise HTTPException(
            403, detail={"message_zh": "village_code 不在您的辖区内", "message_en": "village_code is outside your area"}
        )
    if (school := current_school()) is not None and body.school_id != school:  # a school registers its own pupils
        raise HTTPException(
            403, detail={"message_zh": "school_id 不是您的学校", "message_en": "school_id is not your school (the token's school claim)"}
        )
    rt = _runtime(request)
    try:
        with answering():
            child = await handlers.register_child(
                rt.uow(), body.model_dump(exclude={"client_id"}), actor=principal.subject,
                vault=IdVault.from_settings(rt.settings), client_id=body.client_id, region=principal.region,
            )
    except handlers.AlreadyRegistered as replay:
        child = replay.child
        response.status_code = status.HTTP_200_OK
    async with rt.uow() as uow:
        duplicates = await uow.children.possible_duplicates(child)
    warnings = [_notice(n) for n in [age_notice(child.birth_date, today_local())] if n]
    if duplicates:
        warnings.append(Notice(
            code="possible_duplicate", field="name", message_zh="同乡镇已有同名同出生日期的档案，已列入待核查重复档案",
            message_en="an archive with the same name and birth date exists in the township; listed for duplicate review",
        ))
    return ChildCreated(id=child.id, version=child.version, warnings=warnings, possible_duplicates=duplicates)


@router.get("/children/{child_id}", response_model=ChildOut, summary="查看儿童档案 Read a child's archive")
async def get_child(child_id: UUID, request: Request, principal: Annotated[Principal, Depends(_reader)]) -> ChildOut:
    async with _runtime(request).uow() as uow:
        child = await uow.children.get(child_id)
    if child is None or not principal.covers(child.village_code):
        raise _not_found()
    await audit_now(request, Action.read, "child", [child.id])
    return _out(child)


def _expected_version(if_match: str | None) -> int | None:
    """If-Match: the archive's version the writer saw ("3", 3 or W/"3")."""
    if if_match is None:
        return None
    value = if_match.strip().removeprefix("W/").strip('"')
    if not value.isdigit():
        raise _unprocessable(RuleViolation(
            "if_match_format", "If-Match 应为档案版本号（整数）", "If-Match must be the archive's version (a whole number)",
        ).at("If-Match"), "header")
    return int(value)


@router.patch("/children/{child_id}", response_model=ChildOut, summary="更新儿童档案 Update a child's archive")
async def update_child(
    child_id: UUID, body: ChildPatch, request: Request, principal: Annotated[Principal, Depends(_writer)],
    if_match: Annotated[str | None, Header(description=(
        "您看到的档案版本 the version you saw: a change made meanwhile is refused (409 version_conflict)"
    ))] = None,
) -> ChildOut:
    rt = _runtime(request)
    expected = _expected_version(if_match)
    with answering():
        child = await handlers.update_child(
            rt.uow(), child_id, body.model_dump(exclude_unset=True), region=principal.region,
            actor=principal.subject, vault=IdVault.from_settings(rt.settings), expected_version=expected,
        )
    return _out(child)


@router.get("/children", response_model=ChildPage, summary="儿童档案列表 List children in your area")
async def list_children(
    request: Request,
    principal: Annotated[Principal, Depends(_reader)],
    region: Annotated[str | None, Query(description="区划代码前缀 division-code prefix (2-12 digits)")] = None,
    school_id: Annotated[str | None, Query(max_length=100)] = None,
    risk: Annotated[RiskCategory | None, Query(description="困境类别 risk category")] = None,
    q: Annotated[str | None, Query(min_length=1, max_length=50, description=(
        "姓名（全部或部分，全角与空格不计）或完整身份证号 name, whole or part, or a full ID number"
    ))] = None,
    include_closed: Annotated[bool, Query(description="也列出已结档的档案 closed archives too")] = False,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,  # bounded: a huge page overflows the bigint offset
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
    rt = _runtime(request)
    name, id_hash = q, None
    if q:
        try:  # a full, valid ID number is looked up by its keyed hash; anything else is a name
            id_hash, name = IdVault.from_settings(rt.settings).hash(check_id_number(q)), None
        except RuleViolation:
            pass
    async with rt.uow() as uow:
        items, total = await uow.children.list(
            region=scope, school_id=school_id, risk=risk, name=name, id_number_hash=id_hash,
            include_closed=include_closed, limit=page_size, offset=(page - 1) * page_size,
        )
    await audit_now(request, Action.read, "child", [c.id for c in items])
    return ChildPage(items=[_out(c) for c in items], total=total, page=page, page_size=page_size)
