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
