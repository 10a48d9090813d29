"""HTTP API of the visits service (port 8002): helpers, pairings (结对帮扶), rules, visit records
(走访记录), activities, compliance, worklists and scores. Every call is scoped by the caller's region."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import replace
from datetime import date
from typing import Annotated, TypeVar
from uuid import UUID, uuid4

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response, status

from services.visits.domain.compliance import WindowStatus
from services.visits.domain.errors import NotFound, Refusal
from services.visits.domain.model import Helper
from services.visits.domain.rules import VisitRule, current_version, rules_in_force
from services.visits.domain.windows import Term, today_local
from services.visits.entrypoints import schemas as s
from services.visits.service_layer import commands, queries
from shared.auth import CurrentPrincipal, Principal, Role, role_in
from shared.contracts.visits_v1 import WindowKind
from shared.errors import error_body
from shared.security.audit import Action, audit

router = APIRouter(prefix="/api/v1", tags=["visits 走访"])

_OFFICES = {Role.admin, Role.county_office, Role.township, Role.village_supervisor, Role.school}
_RECORDERS = _OFFICES | {Role.helper}
_RULE_WRITERS = {Role.admin, Role.county_office}
_OVERSEERS = {Role.admin, Role.county_office, Role.township, Role.village_supervisor}

County = Annotated[str, Path(pattern=r"^\d{6}$", description="县级区划代码 (6 digits)")]
T = TypeVar("T")


Office = Annotated[Principal, Depends(role_in(_OFFICES))]
Recorder = Annotated[Principal, Depends(role_in(_RECORDERS))]
RuleWriter = Annotated[Principal, Depends(role_in(_RULE_WRITERS))]
Overseer = Annotated[Principal, Depends(role_in(_OVERSEERS))]


def _account(p: Principal) -> str | None:
    """A helper's own login reaches only their own records and worklist."""
    return p.subject if p.role is Role.helper else None


def _uow(request: Request):
    return request.app.state.runtime.uow()


def _http(exc: Refusal | NotFound) -> HTTPException:
    """A refusal is a 422 naming the field; what is missing or outside the caller's area, a 404."""
    if isinstance(exc, Refusal):
        return HTTPException(422, detail=error_body([
            {"field": exc.field, "type": exc.code, "message_zh": exc.zh, "message_en": exc.en}
        ]))
    return HTTPException(404, detail={"message_zh": f"本辖区内找不到 {exc.what}",
                                      "message_en": f"{exc.what}: not found in your area", "field": exc.what})


async def _call(work: Awaitable[T]) -> T:
    try:
        return await work
    except (Refusal, NotFound) as exc:
        raise _http(exc) from None


def _in_county(principal: Principal, county: str) -> None:
    if not principal.covers(county):
        raise HTTPException(403, detail={"message_zh": "该县不在您的辖区内", "message_en": "this county is outside your area"})


def _status(x: WindowStatus) -> dict:
    return {"rule_code": x.rule.code, "rule_name": x.rule.name, "group": x.rule.group, "window": x.window.kind,
            "window_start": x.window.start, "window_end": x.window.end, "required": x.required, "done": x.done,
            "status": x.status.value}


def _rule_out(r: VisitRule) -> s.RuleOut:
    return s.RuleOut(code=r.code, name=r.name, roles=list(r.roles), kinds=list(r.kinds), count=r.count, window=r.window,
                     days=r.days, group=r.group, active=r.active, effective_from=r.effective_from, version=r.version)


# --- helpers and pairings ----------------------------------------------------------------------


@router.post("/helpers", status_code=status.HTTP_201_CREATED, response_model=s.HelperOut, summary="登记帮扶人 Register a helper")
async def register_helper(body: s.HelperIn, request: Request, principal: Office) -> s.HelperOut:
    if not principal.covers(body.region_code):
        raise HTTPException(403, detail={"message_zh": "region_code 不在您的辖区内", "message_en": "region_code is outside your area"})
    helper = Helper(id=uuid4(), **body.model_dump())
    await _call(commands.register_helper(_uow(request), helper, actor=principal.subject, today=today_local()))
    return s.HelperOut(**vars(helper))


@router.get("/helpers/me", response_model=s.MyChildrenOut,
            summary="我的结对儿童 The helper registered for your login (account) and the children paired with them")
async def my_children(request: Request, principal: Recorder) -> s.MyChildrenOut:
    mine = await _call(queries.my_children(_uow(request), principal.subject, region=principal.region, today=today_local()))
    return s.MyChildrenOut(helper=s.HelperOut(**vars(mine.helper)), children=[
        s.PairedChildOut(child_id=c.child_id, child_name=name, village_code=c.village_code, school_id=c.school_id,
                         class_name=c.class_name) for c, name in mine.children
    ])


@router.post("/pairings", status_code=status.HTTP_201_CREATED, response_model=list[s.PairingOut],
             summary="结对帮扶 Pair helpers with children (one-to-one ... many-to-many)")
async def pair(body: s.PairingIn, request: Request, principal: Office) -> list[s.PairingOut]:
    today = today_local()
    made = await _call(commands.pair(
        _uow(request), body.helper_ids, body.child_ids, body.started_on or today, region=principal.region,
        actor=principal.subject, today=today,
    ))
    return [s.PairingOut(**vars(p)) for p in made]


@router.post("/pairings/{pairing_id}/end", response_model=s.PairingOut, summary="解除结对 End a pairing")
async def end_pairing(pairing_id: UUID, body: s.PairingEndIn, request: Request, principal: Office) -> s.PairingOut:
    today = today_local()
    p = await _call(commands.end_pairing(_uow(request), pairing_id, body.ended_on or today, region=principal.region,
                                         actor=principal.subject, today=today))
    return s.PairingOut(**vars(p))


@router.get("/pairings/to-repair", response_model=list[s.RepairOut],
            summary="待重新结对 Pairings ended because the child moved, not yet replaced")
async def to_repair(request: Request, principal: Office) -> list[s.RepairOut]:
    async with _uow(request) as uow:
        rows = await uow.pairings.to_repair(principal.region)
    return [s.RepairOut(**vars(p), helper_role=role, village_code=village) for p, role, village in rows]


# --- rules and terms ---------------------------------------------------------------------------


@router.get("/counties/{county}/rules", response_model=list[s.RuleOut], summary="县走访规则 The county's rules on a day")
async def county_rules(county: County, request: Request, principal: Office, on: date | None = None) -> list[s.RuleOut]:
    if not commands.visible(principal.region, county):
        raise HTTPException(403, detail={"message_zh": "该县不在您的辖区内", "message_en": "this county is outside your area"})
    async with _uow(request) as uow:
        versions = await uow.rules.versions(county)
    return [_rule_out(r) for r in rules_in_force(versions, on or today_local())]


async def _store_rule(request: Request, principal: Principal, county: str, rule: VisitRule) -> s.RuleOut:
    stored = await _call(commands.change_rule(_uow(request), county, rule, actor=principal.subject, today=today_local()))
    return _rule_out(stored)


@router.patch("/counties/{county}/rules/{code}", response_model=s.RuleOut,
              summary="修改规则 Change a rule (from its next window)")
async def change_rule(county: County, code: str, body: s.RulePatch, request: Request, principal: RuleWriter) -> s.RuleOut:
    _in_county(principal, county)
    async with _uow(request) as uow:
        base = current_version(await uow.rules.versions(county), code)
    if base is None:
        raise _http(NotFound("code"))
    patch = body.model_dump(exclude_unset=True)
    for key in ("roles", "kinds"):
        if key in patch:
            patch[key] = tuple(patch[key])
    if patch.get("window", WindowKind.rolling) is not WindowKind.rolling:
        patch.setdefault("days", None)  # a calendar window has no length of its own
    return await _store_rule(request, principal, county, replace(base, **patch))


@router.post("/counties/{county}/rules", status_code=status.HTTP_201_CREATED, response_model=s.RuleOut,
             summary="新增规则 Add a rule to the county")
async def add_rule(county: County, body: s.RuleIn, request: Request, principal: RuleWriter) -> s.RuleOut:
    _in_county(principal, county)
    async with _uow(request) as uow:
        if current_version(await uow.rules.versions(county), body.code) is not None:
            raise _http(Refusal("rule_exists", "该规则代码已存在，请修改该规则", "this code exists; change it instead", "code"))
    rule = VisitRule(code=body.code, name=body.name, roles=tuple(body.roles), kinds=tuple(body.kinds), count=body.count,
                     window=body.window, days=body.days, group=body.group)
    return await _store_rule(request, principal, county, rule)


@router.put("/counties/{county}/terms", response_model=s.TermsIn, summary="设置学期 Set the county's term dates")
async def set_terms(county: County, body: s.TermsIn, request: Request, principal: RuleWriter) -> s.TermsIn:
    _in_county(principal, county)
    terms = [Term(t.starts_on, t.ends_on) for t in body.terms]
    await _call(commands.set_terms(_uow(request), county, terms, today=today_local()))
    return body


# --- records and activities ------------------------------------------------------------------


@router.post("/records", status_code=status.HTTP_201_CREATED, response_model=s.RecordOut, summary="录入走访记录 Record a visit",
             responses={200: {"description": "the record this client_id already made (a retry)"}})
async def record_visit(body: s.RecordIn, request: Request, response: Response, principal: Recorder) -> s.RecordOut:
    data = body.model_dump(exclude={"concerns", "client_id"}, mode="json")
    data |= {"child_id": body.child_id, "helper_id": body.helper_id, "kind": body.kind, "visited_on": body.visited_on}
    record, concern_ids, replayed = await _call(commands.record_visit(
        _uow(request), data, [c.model_dump() for c in body.concerns], region=principal.region,
        actor=principal.subject, account=_account(principal), today=today_local(), client_id=body.client_id,
    ))
    if replayed:
        response.status_code = status.HTTP_200_OK
    return s.RecordOut(**vars(record) | {"concern_ids": concern_ids})


@router.get("/records/{record_id}", response_model=s.RecordOut, summary="查看走访记录 A record and its corrections")
async def get_record(record_id: UUID, request: Request, principal: Recorder) -> s.RecordOut:
    async with _uow(request) as uow:
        record = await uow.records.get(record_id)
        if record is None or not record.village_code.startswith(principal.region) or not await commands.school_reaches(uow, record.child_id):
            raise _http(NotFound("record_id"))
        await _call(commands.helper_in(uow, record.helper_id, principal.region, _account(principal)))
        corrections = await uow.records.corrections(record_id)
        await audit(uow.session, Action.read, "record", [record_id])
        await uow.commit()
    return s.RecordOut(**vars(record), corrections=corrections)


@router.patch("/records/{record_id}", response_model=s.RecordOut, summary="更正走访记录 Correct a record (audited)")
async def correct_record(record_id: UUID, body: s.RecordCorrectionIn, request: Request, principal: Recorder) -> s.RecordOut:
    changes = body.model_dump(exclude_unset=True, exclude={"reason", "concerns"}, mode="json")
    for key in ("kind", "visited_on"):
        if key in changes:
            changes[key] = getattr(body, key)
    record = await _call(commands.correct_record(
        _uow(request), record_id, changes, [c.model_dump() for c in body.concerns], body.reason,
        region=principal.region, actor=principal.subject, account=_account(principal), today=today_local(),
    ))
    return s.RecordOut(**vars(record))


@router.post("/activities", status_code=status.HTTP_201_CREATED, response_model=s.ActivityOut,
             summary="集体关爱活动 Record a group activity")
async def record_activity(body: s.ActivityIn, request: Request, principal: Recorder) -> s.ActivityOut:
    values = body.model_dump(exclude={"child_ids"})
    activity_id = await _call(commands.record_activity(
        _uow(request), values, body.child_ids, region=principal.region, actor=principal.subject, today=today_local(),
    ))
    return s.ActivityOut(id=activity_id, person_times=len(body.child_ids) + body.guardians)


# --- compliance, worklists, scores ---------------------------------------------------------------


@router.get("/children/{child_id}/compliance", response_model=s.ComplianceOut,
            summary="走访完成情况 Due, done and overdue per rule, in the windows containing a day")
async def child_compliance(child_id: UUID, request: Request, principal: Office, on: date | None = None) -> s.ComplianceOut:
    today = today_local()
    day = on or today
    result = await _call(queries.child_compliance(_uow(request), child_id, day, region=principal.region, today=today))
    return s.ComplianceOut(child_id=child_id, on=day, items=[_status(x) for x in result.statuses],
                           groups=queries.groups(result.statuses))


@router.get("/compliance", response_model=s.RegionComplianceOut,
            summary="考核汇总 Due, done and overdue of every child of the caller's area, per rule, for a period")
async def region_compliance(request: Request, principal: Office, on: date | None = None,
                            period: Annotated[WindowKind, Query(description="month 自然月 / quarter / term / year")]
                            = WindowKind.month) -> s.RegionComplianceOut:
    counties = await _call(queries.region_compliance(_uow(request), principal.region, period, on or today_local(),
                                                     today=today_local()))
    return s.RegionComplianceOut(region=principal.region, items=[
        s.RuleTotalsOut(county=c.county, rule_code=t.rule.code, rule_name=t.rule.name, window=t.window.kind,
                        window_start=t.window.start, window_end=t.window.end, required=t.required,
                        contacts_done=t.done, **{k.value: n for k, n in t.children.items()})
        for c in counties for t in c.totals
    ])


@router.get("/helpers/{helper_id}/worklist", response_model=s.WorklistOut,
            summary="帮扶人待办 A helper's due and overdue contacts for the coming days")
async def worklist(helper_id: UUID, request: Request, principal: Recorder,
                   days: Annotated[int, Query(ge=1, le=62)] = 7) -> s.WorklistOut:
    today = today_local()
    _, items = await _call(queries.helper_worklist(_uow(request), helper_id, region=principal.region,
                                                   account=_account(principal), today=today, days=days))
    return s.WorklistOut(helper_id=helper_id, today=today, items=[
        s.WorkItemOut(child_id=i.child_id, child_name=i.child_name, **_status(i.status)) for i in items
    ])


@router.get("/overview", response_model=s.OverviewOut,
            summary="走访总览 A village's or township's children, those longest without contact first")
async def overview(
    request: Request, principal: Overseer,
    region: Annotated[str | None, Query(pattern=r"^\d{2,12}$", description="区划代码前缀 (within your area)")] = None,
    quiet_days: Annotated[int, Query(ge=1, le=366, description="无走访天数阈值 N")] = 30,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,  # bounded: a huge page overflows the bigint offset
    page_size: Annotated[int, Query(ge=1, le=200)] = 50,
) -> s.OverviewOut:
    scope = principal.region
    if region:
        if not region.startswith(scope):
            raise HTTPException(403, detail={"message_zh": "region 不在您的辖区内", "message_en": "region is outside your area"})
        scope = region
    rows, total = await queries.overview(_uow(request), scope, today=today_local(), quiet_days=quiet_days,
                                         limit=page_size, offset=(page - 1) * page_size)
    items = [s.OverviewRowOut(child_id=r.child.child_id, village_code=r.child.village_code,
                              **{k: getattr(r, k) for k in ("child_name", "last_contact", "days_without_contact", "quiet",
                                                            "due", "done", "overdue")}) for r in rows]
    return s.OverviewOut(items=items, total=total, page=page, page_size=page_size)


Period = Annotated[WindowKind, Query(description="month 上月 / quarter / term 上学期 / year")]


def _score_out(result: queries.Score) -> s.ScoreOut:
    return s.ScoreOut(period_start=result.start, period_end=result.end, score=result.score,
                      items=[_status(x) for x in result.statuses])


@router.get("/children/{child_id}/score", response_model=s.ScoreOut, summary="儿童得分 Share of required contacts done")
async def child_score(child_id: UUID, request: Request, principal: Office, period: Period = WindowKind.month) -> s.ScoreOut:
    return _score_out(await _call(queries.child_score(_uow(request), child_id, period, region=principal.region,
                                                      today=today_local())))


@router.get("/helpers/{helper_id}/score", response_model=s.ScoreOut, summary="帮扶人得分 A helper's share of contacts done")
async def helper_score(helper_id: UUID, request: Request, principal: Recorder, period: Period = WindowKind.month) -> s.ScoreOut:
    return _score_out(await _call(queries.helper_score(_uow(request), helper_id, period, region=principal.region,
                                                       account=_account(principal), today=today_local())))
