"""HTTP API of referrals (转介) and the dropout flow (劝返复学), in the visits service: cases and their
timelines, acknowledgements and outcomes by API, the written report, a county's calendar and policies."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from services.visits.domain.errors import NotFound, Refusal
from services.visits.domain.referrals import CAUSE_TEXT, Referral, county_policies
from services.visits.entrypoints.api import County, Office, RuleWriter, _call, _http, _in_county, _uow
from services.visits.service_layer import referrals
from services.visits.service_layer.commands import school_reaches, visible
from shared.auth import Principal, Role, role_in
from shared.contracts.notifications_v1 import AgencyKind, Channel
from shared.contracts.referrals_v1 import MessagePurpose, ReferralOutcome, ReferralPolicyCode, ReferralStage, UndeliveredCause
from shared.errors import bilingual
from shared.security.audit import Action, audit
from shared.spreadsheets import Watermark, watermark_html

router = APIRouter(prefix="/api/v1", tags=["referrals 转介与劝返"])
# Agencies answer a case by API when they have no stream; they read only open cases of their area.
Answerer = Annotated[Principal, Depends(role_in({Role.admin, Role.county_office, Role.agency}))]
Reader = Annotated[Principal, Depends(role_in({Role.admin, Role.county_office, Role.township, Role.village_supervisor,
                                              Role.school, Role.agency}))]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReferralIn(_Strict):
    child_id: UUID
    policy: ReferralPolicyCode = Field(description="dropout 劝返复学, unguarded 无人监护, no_hukou 无户籍, hardship, medical, violence, psychological")


class OutcomeIn(_Strict):
    outcome: ReferralOutcome = Field(description="returned 已返校复学, transferred 已转学, exempted 免学/缓学, suspended 休学, legal_measures, resolved")


class DeadlineIn(_Strict):
    due_at: datetime = Field(description="新的期限 (with its time zone, e.g. 2026-12-10T00:00:00+08:00)")
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=200)] = Field(description="改期原因")


class CalendarIn(_Strict):
    """节假日与调休: the county's days between since and until, replacing what was set there."""

    since: date
    until: date
    holidays: list[date] = Field(default_factory=list, description="法定节假日")
    working_days: list[date] = Field(default_factory=list, description="调休上班的周末")

    @model_validator(mode="after")
    def _inside(self) -> "CalendarIn":
        if self.until < self.since:
            raise bilingual("until_order", "until 不能早于 since", "until is before since")
        if any(not self.since <= d <= self.until for d in [*self.holidays, *self.working_days]):
            raise bilingual("day_outside", "日期须在 since 与 until 之间", "every day must be between since and until")
        if set(self.holidays) & set(self.working_days):
            raise bilingual("day_twice", "同一天不能既是假日又是工作日", "a day cannot be both a holiday and a working day")
        return self


class UndeliveredOut(BaseModel):
    """未能送达: a message of the case that notifications could not deliver on any channel. The agency was
    never told: tell it by other means (the printable written report), have the county's agency added to
    notifications' directory, and record its acknowledgement here (POST .../acknowledgement)."""

    purpose: MessagePurpose = Field(description="report 书面报告/转介, inform 通报, reminder 催办, escalation 上报")
    agency: AgencyKind | None
    stage: ReferralStage = Field(description="the stage the message was sent for")
    cause: UndeliveredCause
    message_zh: str
    message_en: str
    channel: Channel | None = Field(description="the last channel tried; null when none was configured")
    reason: str = Field(description="notifications' technical reason")
    request_id: UUID
    at: datetime


class ReferralOut(BaseModel):
    id: UUID
    child_id: UUID
    policy: ReferralPolicyCode
    stage: ReferralStage
    trigger: str
    village_code: str
    school_id: str | None
    opened_on: date
    due_at: datetime | None
    refusals: int
    outcome: ReferralOutcome | None
    closed_on: date | None
    helper_ids: list[UUID]
    undelivered: list[UndeliveredOut] = Field(
        default_factory=list, description="未能送达: messages of the case's present stage that reached nobody (open cases)")


class CaseOut(ReferralOut):
    timeline: list[dict[str, Any]]
    attempts: list[dict[str, Any]]
    disclosures: list[dict[str, Any]]


class ReferralPage(BaseModel):
    items: list[ReferralOut]
    total: int


def _out(r: Referral, undelivered: list[dict] | None = None) -> dict:
    out = {k: getattr(r, k) for k in ReferralOut.model_fields if k != "undelivered"}
    out["undelivered"] = [{**u, "message_zh": CAUSE_TEXT[u["cause"]][0], "message_en": CAUSE_TEXT[u["cause"]][1]}
                          for u in undelivered or []]
    return out


async def _outs(uow, cases: list[Referral]) -> list[dict]:
    """The cases with their outstanding undelivered messages (one statement for all)."""
    held = await uow.referrals.undelivered(cases)
    return [_out(r, held.get(r.id)) for r in cases]


# An agency reaches the cases that went out to its kind (the token's agency_kind; the disclosures are
# written as a case is reported, informed or escalated), and answers only those reported to it.
_READ_BY = ("report", "inform", "escalation")
_ANSWERED_BY = ("report",)


async def _case(uow, referral_id: UUID, principal: Principal, *, for_update: bool = False, answering: bool = False) -> Referral:
    r = await uow.referrals.get(referral_id, for_update=for_update)
    if r is None or not principal.covers(r.village_code) or not await school_reaches(uow, r.child_id):
        raise NotFound("referral_id")
    if principal.role is Role.agency:
        if not r.is_open or r.stage == ReferralStage.persuasion:
            raise NotFound("referral_id")  # an agency sees a case only from its report until it closes
        kind = principal.agency_kind
        if kind is None or not await uow.referrals.disclosed_to(r.id, kind.value, _ANSWERED_BY if answering else _READ_BY):
            raise NotFound("referral_id")  # another kind's case, in the same area: not said to exist
    return r


async def _disclosed(uow, r: Referral) -> tuple[str, ...]:
    """The facts the case's policy lets its agencies see."""
    return (await referrals.policies(uow, r.county))[r.policy].disclose


async def _seen_by(uow, r: Referral, principal: Principal) -> dict:
    """The case as the caller may see it: an agency gets what the policy discloses (最小必要披露),
    not the helpers' identities nor a school the policy keeps back, nor how other messages fared."""
    if principal.role is Role.agency:
        out = _out(r)
        disclose = await _disclosed(uow, r)
        out["helper_ids"] = []
        if "school_id" not in disclose:
            out["school_id"] = None
        return out
    [out] = await _outs(uow, [r])
    return out


@router.get("/referrals", response_model=ReferralPage, summary="转介案件 Cases in your area")
async def list_referrals(
    request: Request, principal: Office, stage: ReferralStage | None = None, policy: ReferralPolicyCode | None = None,
    undelivered: Annotated[bool | None, Query(description="true: only the open cases held up by a message that "
                                                          "reached nobody (未能送达); false: the others")] = None,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1, page_size: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict:
    async with _uow(request) as uow:
        items, total = await uow.referrals.list(region=principal.region, stage=stage, policy=policy, undelivered=undelivered,
                                                limit=page_size, offset=(page - 1) * page_size)
        return {"items": await _outs(uow, items), "total": total}


@router.post("/referrals", status_code=201, response_model=ReferralOut, summary="立案 Open a case by hand")
async def open_referral(body: ReferralIn, request: Request, principal: Office) -> dict:
    r = await _call(referrals.open_by_hand(_uow(request), body.child_id, body.policy, region=principal.region, actor=principal.subject))
    return _out(r)


@router.get("/referrals/{referral_id}", response_model=CaseOut, summary="案件与时间线 A case and its timeline")
async def get_referral(referral_id: UUID, request: Request, principal: Reader) -> dict:
    async with _uow(request) as uow:
        r = await _call(_case(uow, referral_id, principal))
        attempts, timeline = await uow.referrals.attempts(r.id), await uow.referrals.timeline(r.id)
        if principal.role is Role.agency:  # free text of the family stays with the school and the office
            disclose = await _disclosed(uow, r)
            attempts = [{k: v for k, v in a.items() if k != "guardian_view"} for a in attempts] if "attempts" in disclose else []
            timeline = [{"at": t["at"], "step": t["step"]} for t in timeline]  # not who did it, nor the record ids
        return {**await _seen_by(uow, r, principal), "timeline": timeline, "attempts": attempts,
                "disclosures": await uow.referrals.disclosures(r.id)}


@router.get("/referrals/{referral_id}/report", response_class=HTMLResponse, summary="书面报告 The written report (printable HTML)")
async def written_report(referral_id: UUID, request: Request, principal: Reader) -> HTMLResponse:
    async with _uow(request) as uow:
        r = await _call(_case(uow, referral_id, principal))
        html = await uow.referrals.report(r.id)
        if html is None:
            raise HTTPException(404, detail={"message_zh": "该案件尚无书面报告", "message_en": "this case has no written report (yet)"})
        if principal.role is Role.agency:  # every reading by an agency is a disclosure on record
            policy = (await referrals.policies(uow, r.county))[r.policy]
            await uow.referrals.disclose(r.id, principal.agency or principal.subject, sorted(policy.disclose), "read_report")
            await audit(uow.session, Action.disclose, "referral", [r.id])
        # The report names the child: every copy that leaves is on record and says who took it, and when.
        await audit(uow.session, Action.export, "referral_report", [r.id])
        await uow.commit()
    return HTMLResponse(watermark_html(html, Watermark.of(principal)))


@router.post("/referrals/{referral_id}/acknowledgement", response_model=ReferralOut, summary="收到回执 Acknowledge a case")
async def acknowledge(referral_id: UUID, request: Request, principal: Answerer) -> dict:
    async with _uow(request) as uow:
        r = await _call(_case(uow, referral_id, principal, for_update=True, answering=True))
        if r.stage != ReferralStage.reported:
            raise HTTPException(409, detail={"message_zh": "该案件不在待回执阶段", "message_en": "the case is not awaiting an acknowledgement",
                                             "stage": r.stage})
        await referrals.acknowledge(uow, r, actor=principal.subject, agency=principal.agency)
        out = await _seen_by(uow, r, principal)
        await uow.commit()
    return out


@router.post("/referrals/{referral_id}/outcome", response_model=ReferralOut, summary="办理结果 Report the outcome (closes the case)")
async def report_outcome(referral_id: UUID, body: OutcomeIn, request: Request, principal: Answerer) -> dict:
    async with _uow(request) as uow:
        r = await _call(_case(uow, referral_id, principal, for_update=True, answering=True))
        if not r.is_open:
            raise HTTPException(409, detail={"message_zh": "该案件已结案", "message_en": "the case is closed"})
        await referrals.close(uow, r, body.outcome, actor=principal.subject, agency=principal.agency)
        out = await _seen_by(uow, r, principal)
        await uow.commit()
    return out


@router.put("/referrals/{referral_id}/deadline", response_model=ReferralOut, summary="改期 Move the current stage's deadline")
async def move_deadline(referral_id: UUID, body: DeadlineIn, request: Request, principal: RuleWriter) -> dict:
    async with _uow(request) as uow:
        r = await _call(_case(uow, referral_id, principal, for_update=True))
        await _call(referrals.move_deadline(uow, r, body.due_at, reason=body.reason, actor=principal.subject))
        [out] = await _outs(uow, [r])
        await uow.commit()
    return out


@router.put("/calendars/{county}", status_code=204, summary="节假日与调休 Set a county's holidays and working weekend days")
async def set_calendar(county: County, body: CalendarIn, request: Request, principal: RuleWriter) -> None:
    _in_county(principal, county)
    days = {d: False for d in body.holidays} | {d: True for d in body.working_days}
    async with _uow(request) as uow:
        await uow.referrals.set_calendar(county, days, since=body.since, until=body.until)
        await uow.commit()


@router.get("/referral-policies/{county}", summary="转介政策 A county's referral policies (defaults with its own values)")
async def get_policies(county: County, request: Request, principal: Office) -> dict:
    if not visible(principal.region, county):  # read like the county's visit rules: a township's own county too
        raise HTTPException(403, detail={"message_zh": "该县不在您的辖区内", "message_en": "this county is outside your area"})
    async with _uow(request) as uow:
        found = await uow.referrals.policy_overrides(county)
    return {code: vars(p) for code, p in county_policies(found).items()}


@router.put("/referral-policies/{county}/{policy}", summary="修改转介政策 Set a county's own values of a policy")
async def set_policy(county: County, policy: ReferralPolicyCode, settings: dict[str, Any], request: Request, principal: RuleWriter) -> dict:
    _in_county(principal, county)
    async with _uow(request) as uow:
        merged = {**(await uow.referrals.policy_overrides(county)).get(policy, {}), **settings}
        try:  # checked whole, defaults included, before it is kept
            checked = county_policies({policy: merged})[policy]
        except Refusal as exc:
            raise _http(exc) from None
        await uow.referrals.set_policy_override(county, policy, merged)
        await uow.commit()
    return vars(checked)
