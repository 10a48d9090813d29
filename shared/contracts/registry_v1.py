"""Events of the registry (建档), version 1.

Two streams, so that personal data reaches only the consumers that need it:
``registry.events`` carries facts without names, phones or ID numbers (every
service, reporting included, reads it); ``registry.contacts`` carries the
contact card (names and phones) for visits and notifications only. Resident
ID numbers never leave the registry.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from uuid import UUID

from pydantic import BaseModel, Field

from shared.contracts.envelope import EventType

REGISTRY_EVENTS = "registry.events"
REGISTRY_CONTACTS = "registry.contacts"


class Gender(StrEnum):
    """性别"""

    male = "male"
    female = "female"


class HukouStatus(StrEnum):
    """户籍状况: registered (有户籍) or not (无户籍)."""

    registered = "registered"
    unregistered = "unregistered"


class LeftBehindType(StrEnum):
    """留守类型"""

    both_parents_out = "both_parents_out"  # 父母双方外出务工
    one_out_other_incapable = "one_out_other_incapable"  # 一方外出、另一方无监护能力


class ParentStatus(StrEnum):
    """父母去向/状况"""

    migrant_worker = "migrant_worker"  # 外出务工
    at_home = "at_home"  # 在家
    incapable = "incapable"  # 无监护能力
    deceased = "deceased"  # 去世
    unknown = "unknown"  # 不详


class GuardianRelationship(StrEnum):
    """监护人与儿童关系: grandparents (隔代监护), relatives (寄居亲戚)..."""

    grandparent = "grandparent"  # 祖父母/外祖父母
    parent = "parent"  # 父/母 (the parent at home)
    relative = "relative"  # 亲戚
    sibling = "sibling"  # 兄姐
    other = "other"  # 其他


class GuardianCapacity(StrEnum):
    """监护能力"""

    full = "full"
    limited = "limited"
    none = "none"


class RiskCategory(StrEnum):
    """困境/风险类别, recordable per child (domain.md)."""

    no_guardian = "no_guardian"  # 无人监护
    dropout = "dropout"  # 失学辍学
    no_hukou = "no_hukou"  # 无户籍
    orphan = "orphan"  # 孤儿
    de_facto_unsupported = "de_facto_unsupported"  # 事实无人抚养
    prisoner_child = "prisoner_child"  # 服刑在押人员子女
    disabled = "disabled"  # 残疾
    street_child = "street_child"  # 流浪
    hiv_affected = "hiv_affected"  # 受艾滋病影响
    drug_family = "drug_family"  # 吸毒家庭子女
    violence_victim = "violence_victim"  # 受暴力侵害
    dibao_family = "dibao_family"  # 低保家庭


class ChildFacts(BaseModel):
    """What every service may know of a child: no name, phone or ID number."""

    gender: Gender
    birth_date: date
    village_code: str = Field(description="12-digit village/community division code (村/社区)")
    hukou_status: HukouStatus
    school_id: str | None = None
    class_name: str | None = None
    left_behind_type: LeftBehindType
    father_status: ParentStatus
    mother_status: ParentStatus
    guardian_relationship: GuardianRelationship | None = None
    risk_categories: list[RiskCategory] = []


class ChildRegistered(ChildFacts):
    """registry.child.registered: a child's archive was opened (建档)."""

    child_id: UUID


class ChildFactsChanged(BaseModel):
    """The new values of the facts that changed; absent keys did not change."""

    gender: Gender | None = None
    birth_date: date | None = None
    village_code: str | None = None
    hukou_status: HukouStatus | None = None
    school_id: str | None = None
    class_name: str | None = None
    left_behind_type: LeftBehindType | None = None
    father_status: ParentStatus | None = None
    mother_status: ParentStatus | None = None
    risk_categories: list[RiskCategory] | None = None


class ChildUpdated(BaseModel):
    """registry.child.updated: only what changed. ``changed_fields`` also names
    personal fields (e.g. ``guardian.phone``) whose values travel only on the
    contacts stream."""

    child_id: UUID
    changed_fields: list[str]
    changes: ChildFactsChanged


class GuardianAssigned(BaseModel):
    """registry.guardian.assigned: the child's guardian (监护人) is now this person."""

    child_id: UUID
    relationship: GuardianRelationship
    capacity: GuardianCapacity


class Person(BaseModel):
    name: str | None = None
    phone: str | None = None


class ContactCard(BaseModel):
    """registry.child.contacts: the whole current contact card (家长联系卡), a
    snapshot: apply it when its aggregate_version is newer than the one held."""

    child_id: UUID
    child_name: str
    guardian: Person | None = None
    guardian_relationship: GuardianRelationship | None = None
    father: Person | None = None
    mother: Person | None = None


CHILD_REGISTERED = EventType("registry.child.registered", 1, ChildRegistered, REGISTRY_EVENTS)
CHILD_UPDATED = EventType("registry.child.updated", 1, ChildUpdated, REGISTRY_EVENTS)
GUARDIAN_ASSIGNED = EventType("registry.guardian.assigned", 1, GuardianAssigned, REGISTRY_EVENTS)
CHILD_CONTACTS = EventType("registry.child.contacts", 1, ContactCard, REGISTRY_CONTACTS)


# --- The archive's lifecycle (issue 3). Each is one version of the child aggregate on registry.events. ---


class ArchiveCloseReason(StrEnum):
    """结档原因"""

    parents_returned = "parents_returned"  # 父母返乡
    aged_out = "aged_out"  # 年满16周岁
    moved_away = "moved_away"  # 迁出
    deceased = "deceased"  # 死亡
    merged = "merged"  # 重复档案合并


class EnrolmentStatus(StrEnum):
    """就学状态"""

    in_school = "in_school"  # 在校
    absent = "absent"  # 缺课
    dropped_out = "dropped_out"  # 辍学
    suspended = "suspended"  # 休学
    transferred = "transferred"  # 转学
    graduated = "graduated"  # 毕业
    not_enrolled = "not_enrolled"  # 未入学


class UnguardedCause(StrEnum):
    guardian_removed = "guardian_removed"
    agreement_expired = "agreement_expired"
    agreement_revoked = "agreement_revoked"
    no_guardian = "no_guardian"


class ChildTransferred(BaseModel):
    """registry.child.transferred: moved village, township or school (转移), not re-registered.
    The envelope's region_code is the new village."""

    child_id: UUID
    from_village_code: str
    to_village_code: str
    from_school_id: str | None = None
    to_school_id: str | None = None
    to_class_name: str | None = None
    effective_on: date


class ArchiveClosed(BaseModel):
    """registry.archive.closed: the child is no longer followed (结档); the archive is read-only."""

    child_id: UUID
    reason: ArchiveCloseReason
    closed_on: date


class ArchiveReopened(BaseModel):
    """registry.archive.reopened"""

    child_id: UUID
    reopened_on: date


class ChildMerged(BaseModel):
    """registry.child.merged: this archive was a duplicate of ``survivor_id``; consumers
    move what they hold to the survivor. Emitted on the merged-away child's aggregate."""

    child_id: UUID
    survivor_id: UUID


class GuardianRemoved(BaseModel):
    """registry.guardian.removed"""

    child_id: UUID


class AgreementFacts(BaseModel):
    """An entrusted-guardianship agreement (《农村留守儿童委托监护责任确认书》), without names."""

    child_id: UUID
    agreement_id: UUID
    guardian_relationship: GuardianRelationship
    signed_on: date
    valid_until: date


class AgreementEnded(BaseModel):
    child_id: UUID
    agreement_id: UUID
    ended_on: date


class ChildUnguarded(BaseModel):
    """registry.guardianship.unguarded: flagged 无人监护 (no valid guardian); referrals start here."""

    child_id: UUID
    cause: UnguardedCause


class ChildGuarded(BaseModel):
    """registry.guardianship.restored: a guardian with a signed agreement is in place again."""

    child_id: UUID
    agreement_id: UUID | None = None


class AbsenceReported(BaseModel):
    """registry.absence.reported: days missed, excused or not (无故旷课 when not)."""

    child_id: UUID
    absence_id: UUID
    school_id: str | None
    from_date: date
    to_date: date
    school_days: int = Field(ge=1, description="school days missed in the range")
    excused: bool
    reason_code: str | None = Field(None, description="illness, family, work, unknown, other (no free text)")


class ReturnedToSchool(BaseModel):
    """registry.school.returned: the school recorded the child back in class."""

    child_id: UUID
    school_id: str | None
    returned_on: date


class EnrolmentChanged(BaseModel):
    """registry.enrolment.changed"""

    child_id: UUID
    school_id: str | None
    previous: EnrolmentStatus | None
    status: EnrolmentStatus
    effective_on: date


CHILD_TRANSFERRED = EventType("registry.child.transferred", 1, ChildTransferred, REGISTRY_EVENTS)
ARCHIVE_CLOSED = EventType("registry.archive.closed", 1, ArchiveClosed, REGISTRY_EVENTS)
ARCHIVE_REOPENED = EventType("registry.archive.reopened", 1, ArchiveReopened, REGISTRY_EVENTS)
CHILD_MERGED = EventType("registry.child.merged", 1, ChildMerged, REGISTRY_EVENTS)
GUARDIAN_REMOVED = EventType("registry.guardian.removed", 1, GuardianRemoved, REGISTRY_EVENTS)
AGREEMENT_SIGNED = EventType("registry.agreement.signed", 1, AgreementFacts, REGISTRY_EVENTS)
AGREEMENT_RENEWED = EventType("registry.agreement.renewed", 1, AgreementFacts, REGISTRY_EVENTS)
AGREEMENT_EXPIRED = EventType("registry.agreement.expired", 1, AgreementEnded, REGISTRY_EVENTS)
AGREEMENT_REVOKED = EventType("registry.agreement.revoked", 1, AgreementEnded, REGISTRY_EVENTS)
CHILD_UNGUARDED = EventType("registry.guardianship.unguarded", 1, ChildUnguarded, REGISTRY_EVENTS)
CHILD_GUARDED = EventType("registry.guardianship.restored", 1, ChildGuarded, REGISTRY_EVENTS)
ABSENCE_REPORTED = EventType("registry.absence.reported", 1, AbsenceReported, REGISTRY_EVENTS)
RETURNED_TO_SCHOOL = EventType("registry.school.returned", 1, ReturnedToSchool, REGISTRY_EVENTS)
ENROLMENT_CHANGED = EventType("registry.enrolment.changed", 1, EnrolmentChanged, REGISTRY_EVENTS)



# --- Protection of the child's data (issue 9). ---


class Consent(StrEnum):
    """知情同意: the guardian's consent to the processing of the child's data."""

    given = "given"  # 同意
    withdrawn = "withdrawn"  # 撤回同意


class ConsentChanged(BaseModel):
    """registry.consent.changed: consent given or withdrawn. While withdrawn, every service does only
    what the law requires of it (docs/security.md): the state organs' duties of protection go on;
    what rests on consent (messages to the family, helpers' visits, activities) stops."""

    child_id: UUID
    consent: Consent
    effective_on: date


class ArchiveDeidentified(BaseModel):
    """registry.archive.deidentified: a closed archive's personal data was removed after the retention
    period (去标识化); consumers drop the names and phones they hold for the child."""

    child_id: UUID
    deidentified_on: date


CONSENT_CHANGED = EventType("registry.consent.changed", 1, ConsentChanged, REGISTRY_EVENTS)
ARCHIVE_DEIDENTIFIED = EventType("registry.archive.deidentified", 1, ArchiveDeidentified, REGISTRY_EVENTS)

ALL = (
    CHILD_REGISTERED, CHILD_UPDATED, GUARDIAN_ASSIGNED, CHILD_CONTACTS, CHILD_TRANSFERRED, ARCHIVE_CLOSED,
    ARCHIVE_REOPENED, CHILD_MERGED, GUARDIAN_REMOVED, AGREEMENT_SIGNED, AGREEMENT_RENEWED, AGREEMENT_EXPIRED,
    AGREEMENT_REVOKED, CHILD_UNGUARDED, CHILD_GUARDED, ABSENCE_REPORTED, RETURNED_TO_SCHOOL, ENROLMENT_CHANGED,
    CONSENT_CHANGED, ARCHIVE_DEIDENTIFIED,
)
