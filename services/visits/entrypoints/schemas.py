"""Request and response bodies of the visits API."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from shared.contracts.visits_v1 import (
    ActivityKind, ConcernKind, ContactKind, HelperRole, ObservationArea, ObservationLevel, PairingEndReason, Severity,
    WindowKind,
)
from shared.contracts.referrals_v1 import DropoutCause, PersuasionOutcome
from shared.errors import bilingual

_PHONE = re.compile(r"^(1[3-9]\d{9}|0\d{2,3}-?\d{7,8})$")


def _phone(v: str) -> str:
    v = v.strip().replace(" ", "")
    if not _PHONE.match(v):
        raise bilingual("phone_format", "电话号码格式不正确（手机11位，或区号-座机号）",
                        "not a mainland mobile (11 digits) or landline (area code-number)")
    return v


def _region(v: str) -> str:
    if not re.fullmatch(r"\d{6}|\d{9}|\d{12}", v):
        raise bilingual("region_format", "区划代码应为6位（县）、9位（乡镇）或12位（村）数字",
                        "a division code of 6 (county), 9 (township) or 12 (village) digits")
    return v


def _unique(v: list) -> list:
    if len(set(v)) != len(v):
        raise bilingual("duplicates", "列表中有重复项", "the list has duplicates")
    return v


Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Note = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)]
Phone = Annotated[str, AfterValidator(_phone)]
Region = Annotated[str, AfterValidator(_region)]
RuleCode = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{2,63}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HelperIn(_Strict):
    """登记帮扶人"""

    name: Name = Field(description="姓名")
    role: HelperRole = Field(description="角色: class_teacher 班主任, caring_mother 爱心妈妈, proxy_parent 代理家长...")
    organisation: Text = Field(description="所在单位 (学校、妇联、村委会...)")
    region_code: Region = Field(description="服务区域区划代码 (6/9/12位)")
    phone: Phone | None = None
    school_id: Text | None = Field(None, description="学校 (班主任必填)")
    class_name: Text | None = Field(None, description="班级 (班主任必填)")
    account: Text | None = Field(None, description="帮扶人本人登录账号 (token subject)")


class HelperOut(BaseModel):
    id: UUID
    name: str
    role: HelperRole
    organisation: str
    region_code: str
    phone: str | None
    school_id: str | None
    class_name: str | None
    account: str | None


class PairedChildOut(BaseModel):
    child_id: UUID
    child_name: str | None
    village_code: str
    school_id: str | None
    class_name: str | None


class MyChildrenOut(BaseModel):
    """我的结对儿童: the helper registered for the caller's login and their children."""

    helper: HelperOut
    children: list[PairedChildOut]


class PairingIn(_Strict):
    """结对: each helper with each child (一对一、一对多、多对一、多对多)."""

    helper_ids: Annotated[list[UUID], AfterValidator(_unique)] = Field(min_length=1, max_length=50)
    child_ids: Annotated[list[UUID], AfterValidator(_unique)] = Field(min_length=1, max_length=500)
    started_on: date | None = Field(None, description="结对开始日期, default today")


class PairingEndIn(_Strict):
    ended_on: date | None = Field(None, description="解除日期 (first day no longer in force), default today")


class PairingOut(BaseModel):
    id: UUID
    helper_id: UUID
    child_id: UUID
    started_on: date
    ended_on: date | None
    end_reason: PairingEndReason | None
    version: int


class RepairOut(PairingOut):
    helper_role: HelperRole
    village_code: str


class RulePatch(_Strict):
    """Change a rule of the county (any field left out stays as it is)."""

    name: Text | None = None
    roles: Annotated[list[HelperRole], AfterValidator(_unique)] | None = Field(None, min_length=1)
    kinds: Annotated[list[ContactKind], AfterValidator(_unique)] | None = Field(None, min_length=1)
    count: int | None = Field(None, ge=1, le=31)
    window: WindowKind | None = None
    days: int | None = Field(None, ge=1, le=366, description="滚动周期天数, for window=rolling only")
    group: Text | None = None
    active: bool | None = None


class RuleIn(_Strict):
    """A rule the county adds: who, what kind of contact, how many, in what window."""

    code: RuleCode = Field(description="规则代码, e.g. monthly_safety_talk")
    name: Text
    roles: Annotated[list[HelperRole], AfterValidator(_unique)] = Field(min_length=1)
    kinds: Annotated[list[ContactKind], AfterValidator(_unique)] = Field(min_length=1)
    count: int = Field(ge=1, le=31)
    window: WindowKind
    days: int | None = Field(None, ge=1, le=366,
                             description="滚动周期天数: with window=rolling, e.g. 30 for at least `count` contacts in any 30 days")
    group: Text | None = None


class RuleOut(BaseModel):
    code: str
    name: str
    roles: list[HelperRole]
    kinds: list[ContactKind]
    count: int
    window: WindowKind
    days: int | None = Field(description="a rolling window's length in days (null for calendar windows)")
    group: str | None
    active: bool
    effective_from: date | None = Field(description="in force from this day (null: the default)")
    version: int


class TermIn(_Strict):
    starts_on: date
    ends_on: date

    @model_validator(mode="after")
    def _order(self) -> "TermIn":
        if self.ends_on <= self.starts_on:
            raise bilingual("term_dates", "学期结束日期应晚于开始日期", "ends_on must be after starts_on")
        return self


class TermsIn(_Strict):
    """The county's term dates (学期)."""

    terms: list[TermIn] = Field(max_length=40)

    @model_validator(mode="after")
    def _apart(self) -> "TermsIn":
        ordered = sorted(self.terms, key=lambda t: t.starts_on)
        if any(a.ends_on >= b.starts_on for a, b in zip(ordered, ordered[1:])):
            raise bilingual("terms_overlap", "学期日期有重叠", "terms overlap")
        return self


class ObservationIn(_Strict):
    area: ObservationArea = Field(description="学习 study, 生活 life, 心理 psychology, 安全 safety, 健康 health")
    level: ObservationLevel = Field(description="良好 good, 一般 fair, 需关注 attention, 严重 serious")
    note: Note | None = None


def _one_per_area(v: list[ObservationIn]) -> list[ObservationIn]:
    if len({o.area for o in v}) != len(v):
        raise bilingual("area_repeated", "每个方面只能填写一次", "each area may appear once")
    return v


Observations = Annotated[list[ObservationIn], AfterValidator(_one_per_area)]


class ConcernIn(_Strict):
    kind: ConcernKind
    severity: Severity
    note: Note | None = None


class PersuasionIn(_Strict):
    """劝返走访: its outcome, the guardian's view (kept in visits and the written report only) and the cause."""

    outcome: PersuasionOutcome = Field(description="returned 已返校, refused 拒绝, unreachable 联系不上")
    cause: DropoutCause | None = Field(None, description="辍学原因")
    guardian_view: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)] | None = Field(
        None, description="监护人意见")


class RecordIn(_Strict):
    """走访记录"""

    helper_id: UUID
    child_id: UUID
    kind: ContactKind = Field(description="home_visit 家访, talk 谈心, phone 电话, letter 书信, school_contact 与班主任联系...")
    visited_on: date = Field(description="走访日期 (补录 at most 31 days late)")
    observations: Observations = Field(default_factory=list)
    note: Note | None = None
    concerns: list[ConcernIn] = Field(default_factory=list, max_length=10)
    persuasion: PersuasionIn | None = Field(None, description="for kind persuasion_visit (劝返走访) only, and required there")

    @model_validator(mode="after")
    def _persuasion_with_its_kind(self) -> "RecordIn":
        if (self.kind is ContactKind.persuasion_visit) != (self.persuasion is not None):
            raise bilingual("persuasion_kind", "劝返走访须填写 persuasion（结果），其他走访不填",
                            "a persuasion_visit needs persuasion (its outcome); other kinds have none")
        return self
    client_id: UUID | None = Field(None, description=(
        "客户端生成的记录编号 (UUID): sent again after a lost answer, it answers the record already made (200), no second one"
    ))


class RecordCorrectionIn(_Strict):
    """更正: the fields to change, and why (kept in the audit trail)."""

    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=500)] = Field(
        description="更正原因")
    kind: ContactKind | None = None
    visited_on: date | None = None
    observations: Observations | None = None
    note: Note | None = None
    concerns: list[ConcernIn] = Field(default_factory=list, max_length=10, description="concerns added now")


class CorrectionOut(BaseModel):
    version: int
    reason: str
    before: dict
    after: dict
    changed_by: str


class RecordOut(BaseModel):
    id: UUID
    child_id: UUID
    helper_id: UUID
    helper_role: HelperRole
    kind: ContactKind
    visited_on: date
    observations: list[dict]
    note: str | None
    version: int
    concern_ids: list[UUID] = []
    corrections: list[CorrectionOut] = []


class ActivityIn(_Strict):
    """集体关爱活动 (留守儿童之家、学校)."""

    kind: ActivityKind
    held_on: date
    place: Text = Field(description="地点, e.g. 某村留守儿童之家")
    organiser: Text = Field(description="组织单位")
    region_code: Region
    child_ids: Annotated[list[UUID], AfterValidator(_unique)] = Field(min_length=1, max_length=2000)
    guardians: int = Field(0, ge=0, le=10000, description="参加的家长/监护人人数")


class ActivityOut(BaseModel):
    id: UUID
    person_times: int


class WindowStatusOut(BaseModel):
    rule_code: str
    rule_name: str
    group: str | None
    window: WindowKind
    window_start: date
    window_end: date
    required: int
    done: int
    status: str = Field(description="done 已完成, due 待完成, overdue 逾期")


class ComplianceOut(BaseModel):
    child_id: UUID
    on: date
    items: list[WindowStatusOut]
    groups: dict[str, dict[str, int]] = Field(description="e.g. 五个一: items required and done")


class WorkItemOut(WindowStatusOut):
    child_id: UUID
    child_name: str | None


class WorklistOut(BaseModel):
    helper_id: UUID
    today: date
    items: list[WorkItemOut]


class OverviewRowOut(BaseModel):
    child_id: UUID
    child_name: str | None
    village_code: str
    last_contact: date | None
    days_without_contact: int | None
    quiet: bool = Field(description="nothing recorded for quiet_days or more")
    due: int
    done: int
    overdue: int


class OverviewOut(BaseModel):
    items: list[OverviewRowOut]
    total: int
    page: int
    page_size: int


class RuleTotalsOut(BaseModel):
    county: str
    rule_code: str
    rule_name: str
    window: WindowKind
    window_start: date
    window_end: date
    done: int = Field(description="children who had every contact the rule asks (已完成)")
    due: int = Field(description="children still short while the window runs (待完成)")
    overdue: int = Field(description="children short after the window ended (逾期)")
    required: int = Field(description="contacts required, all children together")
    contacts_done: int = Field(description="contacts done, each child capped at what the rule asks")


class RegionComplianceOut(BaseModel):
    region: str
    items: list[RuleTotalsOut]


class ScoreOut(BaseModel):
    period_start: date
    period_end: date
    score: float | None = Field(description="share of required contacts done (0-1); null when none was required")
    items: list[WindowStatusOut]
