"""Request and response bodies of the registry API."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, ValidationInfo, field_validator

from services.registry.domain import rules
from shared.contracts.registry_v1 import (
    ArchiveCloseReason,
    EnrolmentStatus,
    Gender,
    GuardianCapacity,
    GuardianRelationship,
    HukouStatus,
    LeftBehindType,
    ParentStatus,
    RiskCategory,
    UnguardedCause,
)
from shared.errors import bilingual


def _rule(fn):
    def check(value):
        try:
            return fn(value)
        except rules.RuleViolation as v:
            raise bilingual(v.code, v.zh, v.en) from None

    return AfterValidator(check)


def _birth_date(value: date) -> date:
    return rules.check_birth_date(value, date.today())


Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]
Phone = Annotated[str, _rule(rules.check_phone)]
VillageCode = Annotated[str, _rule(rules.check_village_code)]
BirthDate = Annotated[date, _rule(_birth_date)]
IdNumber = Annotated[str, _rule(lambda v: rules.check_id_number(v))]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
# A set in meaning: the same categories in another order or repeated are no change.
RiskCategories = Annotated[list[RiskCategory], AfterValidator(lambda v: sorted(set(v)))]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _not_null(value):
    """On a patch, null clears a field; these cannot be cleared (absent leaves them as they are)."""
    if value is None:
        raise bilingual("not_nullable", "此项不能清空", "this field cannot be cleared (null)")
    return value


class ParentIn(_Strict):
    """父亲/母亲: whereabouts and contact."""

    name: Name | None = None
    status: ParentStatus = Field(description="去向: migrant_worker 外出务工, at_home 在家, incapable 无监护能力...")
    work_place: Text | None = Field(None, description="务工地点")
    phone: Phone | None = None


class GuardianIn(_Strict):
    """监护人"""

    name: Name
    relationship: GuardianRelationship
    capacity: GuardianCapacity = GuardianCapacity.full
    phone: Phone | None = None


class ChildIn(_Strict):
    """登记儿童 (建档)."""

    name: Name = Field(description="姓名")
    gender: Gender = Field(description="性别")
    birth_date: BirthDate = Field(description="出生日期 YYYY-MM-DD")
    id_number: IdNumber | None = Field(None, description="居民身份证号 (stored only as a keyed hash and a masked form)")
    hukou_status: HukouStatus = Field(description="户籍状况")
    village_code: VillageCode = Field(description="村（社区）12位区划代码")
    school_id: Text | None = Field(None, description="学校")
    class_name: Text | None = Field(None, description="班级")
    left_behind_type: LeftBehindType = Field(description="留守类型")
    father: ParentIn
    mother: ParentIn
    guardian: GuardianIn | None = None
    risk_categories: RiskCategories = Field(default_factory=list, description="困境/风险类别")
    client_id: UUID | None = Field(None, description=(
        "the archive's id made by the client (a phone queueing offline): sending it again answers the same archive, 200"))

    @field_validator("id_number")
    @classmethod
    def _id_number_agrees(cls, value: str | None, info: ValidationInfo) -> str | None:
        # gender and birth_date are declared before id_number, so they are in info.data when valid.
        if value:
            try:
                rules.check_id_number(value, birth_date=info.data.get("birth_date"), gender=info.data.get("gender"))
            except rules.RuleViolation as v:
                raise bilingual(v.code, v.zh, v.en) from None
        return value


class ParentPatch(_Strict):
    name: Name | None = None
    status: ParentStatus | None = None
    work_place: Text | None = None
    phone: Phone | None = None

    _required = field_validator("status")(_not_null)


class GuardianPatch(_Strict):
    name: Name | None = None
    relationship: GuardianRelationship | None = None
    capacity: GuardianCapacity | None = None
    phone: Phone | None = None

    _required = field_validator("name", "relationship", "capacity")(_not_null)


class ChildPatch(_Strict):
    """Fields to change; absent fields stay as they are. ``null`` clears an optional field
    (``guardian: null`` removes the guardian, ``id_number: null`` the ID number)."""

    name: Name | None = None
    gender: Gender | None = None
    birth_date: BirthDate | None = None
    id_number: IdNumber | None = None
    hukou_status: HukouStatus | None = None
    village_code: VillageCode | None = None
    school_id: Text | None = None
    class_name: Text | None = None
    left_behind_type: LeftBehindType | None = None
    father: ParentPatch | None = None
    mother: ParentPatch | None = None
    guardian: GuardianPatch | None = None
    risk_categories: RiskCategories | None = None

    _required = field_validator(
        "name", "gender", "birth_date", "hukou_status", "village_code", "left_behind_type", "father", "mother",
        "risk_categories",
    )(_not_null)


class ParentOut(BaseModel):
    name: str | None = None
    status: ParentStatus
    work_place: str | None = None
    phone: str | None = None


class GuardianOut(BaseModel):
    name: str
    relationship: GuardianRelationship
    capacity: GuardianCapacity
    phone: str | None = None


class Notice(BaseModel):
    """A warning: the request was carried out, but someone should look at this."""

    code: str
    field: str | None = None
    message_zh: str
    message_en: str


class ChildOut(BaseModel):
    id: UUID
    name: str
    gender: Gender
    birth_date: date
    id_number_masked: str | None = Field(None, description="e.g. 1101**********002X; the full number never leaves the registry")
    hukou_status: HukouStatus
    village_code: str
    school_id: str | None
    class_name: str | None
    left_behind_type: LeftBehindType
    father: ParentOut
    mother: ParentOut
    guardian: GuardianOut | None
    risk_categories: list[RiskCategory]
    enrolment_status: EnrolmentStatus | None = Field(None, description="就学状态")
    unguarded_cause: UnguardedCause | None = Field(None, description="无人监护: why there is no valid guardian now")
    unguarded_since: date | None = None
    archive_status: str = Field(description="open, or closed (结档, read-only)")
    closed_reason: ArchiveCloseReason | None = None
    closed_on: date | None = None
    merged_into: UUID | None = Field(None, description="the archive this duplicate was merged into")
    version: int
    warnings: list[Notice] = []


class ChildCreated(BaseModel):
    id: UUID
    version: int
    warnings: list[Notice] = Field([], description="e.g. aged 16 or over; a possible duplicate archive")
    possible_duplicates: list[UUID] = Field([], description="open archives with the same name, birth date and township")


# --- The archive's lifecycle and records ---------------------------------------------------


class AgreementIn(_Strict):
    """委托监护责任确认书, signed by the child's current guardian."""

    signed_on: date = Field(description="签订日期")
    valid_until: date = Field(description="有效期至 (last valid day)")


class AgreementRenewal(_Strict):
    valid_until: date = Field(description="续签后的有效期至")


class AgreementRevocation(_Strict):
    revoked_on: date = Field(description="解除日期")


class AgreementOut(BaseModel):
    id: UUID
    child_id: UUID
    guardian_name: str
    guardian_relationship: GuardianRelationship
    signed_on: date
    valid_until: date
    status: str = Field(description="in_force, expired or revoked")
    ended_on: date | None


class ArchiveClosing(_Strict):
    reason: ArchiveCloseReason = Field(description="结档原因 (merged: use the merge instead)")
    closed_on: date


class TransferIn(_Strict):
    """转移: the child's new place (and school); the old one comes from the archive."""

    to_village_code: str = Field(description="转入村（社区）12位区划代码")
    to_school_id: Text | None = None
    to_class_name: Text | None = None
    effective_on: date


class MergeIn(_Strict):
    survivor_id: UUID = Field(description="the archive that stays; this one closes and points to it")


class DuplicateGroup(BaseModel):
    name_key: str
    birth_date: date
    township_code: str
    child_ids: list[UUID]


class AbsenceReason(StrEnum):
    illness = "illness"
    family = "family"
    work = "work"
    unknown = "unknown"
    other = "other"


class AbsenceIn(_Strict):
    """缺课: excused or not (无故旷课)."""

    from_date: date
    to_date: date
    school_days: int = Field(ge=1, le=366, description="school days missed in the range")
    excused: bool
    reason_code: AbsenceReason | None = None


class AbsenceOut(AbsenceIn):
    model_config = ConfigDict(extra="ignore")

    id: UUID
    school_id: str | None


class SchoolReturn(_Strict):
    returned_on: date


class EnrolmentIn(_Strict):
    status: EnrolmentStatus = Field(description="就学状态 (dropped_out: 辍学登记)")
    effective_on: date


class GrowthTopic(StrEnum):
    thought = "thought"  # 思想
    study = "study"  # 学习
    life = "life"  # 生活
    family_education = "family_education"  # 家庭教育


class GrowthNoteIn(_Strict):
    """成长记录"""

    noted_on: date
    topic: GrowthTopic
    text: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


class GrowthNoteOut(GrowthNoteIn):
    model_config = ConfigDict(extra="ignore")

    id: UUID
    actor: str


class ChildPage(BaseModel):
    items: list[ChildOut]
    total: int
    page: int
    page_size: int
