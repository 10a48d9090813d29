"""Events of the visits service (走访), version 1, on ``visits.events``.

No child or helper names or phones travel here: ids, roles, kinds, dates and
levels only. Aggregates and their versions:
- a pairing (结对): ``visits.pairing.started`` (1), ``visits.pairing.ended`` (2);
- a visit record (走访记录): ``visits.record.created`` (1), then one
  ``visits.record.corrected`` per correction (2, 3, ...);
- a concern: ``visits.concern.raised`` (1);
- a group activity: ``visits.activity.recorded`` (1);
- a child-rule-window (``<child_id>:<rule_code>:<window_key>``): ``visits.visit.overdue`` (1),
  emitted once per window that ended short of what the rule asks; a rolling window (滚动周期)
  is keyed by its first day and length, so each lapse is reported once.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from uuid import UUID

from pydantic import BaseModel, Field

from shared.contracts.envelope import EventType

VISITS_EVENTS = "visits.events"


class HelperRole(StrEnum):
    """帮扶人角色"""

    class_teacher = "class_teacher"  # 班主任
    caring_mother = "caring_mother"  # 爱心妈妈
    proxy_parent = "proxy_parent"  # 代理家长
    volunteer_tutor = "volunteer_tutor"  # 爱心辅导员
    party_member = "party_member"  # 党员/教师志愿者
    village_supervisor = "village_supervisor"  # 儿童福利督导员


class ContactKind(StrEnum):
    """走访/联系方式"""

    home_visit = "home_visit"  # 家访/走访
    talk = "talk"  # 谈心
    phone = "phone"  # 电话
    letter = "letter"  # 书信
    school_contact = "school_contact"  # 与班主任联系
    guardian_contact = "guardian_contact"  # 与监护人联系
    parent_contact = "parent_contact"  # 帮助儿童与父母通话或通信 (亲情电话)
    festival = "festival"  # 共度节日
    persuasion_visit = "persuasion_visit"  # 劝返走访


class WindowKind(StrEnum):
    """考核周期"""

    month = "month"  # 自然月
    quarter = "quarter"  # 季度
    term = "term"  # 学期 (the county's term dates)
    term_part = "term_part"  # 期初/期中/期末: a term in three equal parts
    year = "year"  # 自然年
    rolling = "rolling"  # 滚动周期: the rule's N days after the last qualifying contact (or after it began to bind)


class ObservationArea(StrEnum):
    study = "study"  # 学习
    life = "life"  # 生活
    psychology = "psychology"  # 心理
    safety = "safety"  # 安全
    health = "health"  # 健康


class ObservationLevel(StrEnum):
    good = "good"  # 良好
    fair = "fair"  # 一般
    attention = "attention"  # 需关注
    serious = "serious"  # 严重


class ConcernKind(StrEnum):
    """走访发现的问题"""

    unexcused_absence = "unexcused_absence"  # 无故旷课
    no_adult_at_home = "no_adult_at_home"  # 家中无成人照看
    injury = "injury"  # 受伤
    violence_signs = "violence_signs"  # 疑似遭受暴力
    psychological_distress = "psychological_distress"  # 心理困扰
    hardship = "hardship"  # 生活困难
    other = "other"  # 其他


class Severity(StrEnum):
    low = "low"  # 一般
    medium = "medium"  # 较重
    high = "high"  # 严重
    urgent = "urgent"  # 紧急 (act at once)


class ActivityKind(StrEnum):
    """集体关爱活动"""

    festival = "festival"  # 节日活动
    summer_camp = "summer_camp"  # 夏令营
    safety_lecture = "safety_lecture"  # 法治安全讲座
    tutoring = "tutoring"  # 课业辅导
    family_call = "family_call"  # 亲情电话/视频
    guardian_training = "guardian_training"  # 家长学校


class PairingEndReason(StrEnum):
    """结对结束原因"""

    ended_by_office = "ended_by_office"  # 人工解除
    transferred = "transferred"  # 儿童转移（班主任不能随迁）
    class_changed = "class_changed"  # 儿童换学校或班级
    archive_closed = "archive_closed"  # 结档
    merged = "merged"  # 重复档案合并（移交至保留档案）


class PairingStarted(BaseModel):
    """visits.pairing.started: a helper is paired with a child (结对帮扶)."""

    pairing_id: UUID
    helper_id: UUID
    helper_role: HelperRole
    child_id: UUID
    started_on: date


class PairingEnded(BaseModel):
    """visits.pairing.ended; a ``transferred`` or ``class_changed`` pairing is listed for re-pairing."""

    pairing_id: UUID
    helper_id: UUID
    helper_role: HelperRole
    child_id: UUID
    ended_on: date
    reason: PairingEndReason


class Observation(BaseModel):
    area: ObservationArea
    level: ObservationLevel


class RecordCreated(BaseModel):
    """visits.record.created: a visit record (走访记录); free-text notes stay in the visits service."""

    record_id: UUID
    child_id: UUID
    helper_id: UUID
    helper_role: HelperRole
    kind: ContactKind
    visited_on: date
    observations: list[Observation] = []


class RecordCorrected(RecordCreated):
    """visits.record.corrected: the record as it now stands (an audit trail is kept)."""

    corrected_fields: list[str]


class ConcernRaised(BaseModel):
    """visits.concern.raised: seen on a visit; escalation routes it by kind and severity."""

    concern_id: UUID
    record_id: UUID
    child_id: UUID
    helper_id: UUID
    kind: ConcernKind
    severity: Severity
    observed_on: date


class ActivityRecorded(BaseModel):
    """visits.activity.recorded: a group care activity; person-times = children + guardians."""

    activity_id: UUID
    kind: ActivityKind
    held_on: date
    child_ids: list[UUID]
    guardians: int = Field(ge=0, description="guardians who took part (家长/监护人人次)")
    person_times: int = Field(ge=0)


class VisitOverdue(BaseModel):
    """visits.visit.overdue: a window ended with fewer contacts than the rule asks."""

    child_id: UUID
    rule_code: str
    window: WindowKind
    window_start: date
    window_end: date
    required: int
    done: int
    helper_ids: list[UUID] = Field(description="helpers paired with the child whose role the rule binds")


PAIRING_STARTED = EventType("visits.pairing.started", 1, PairingStarted, VISITS_EVENTS)
PAIRING_ENDED = EventType("visits.pairing.ended", 1, PairingEnded, VISITS_EVENTS)
RECORD_CREATED = EventType("visits.record.created", 1, RecordCreated, VISITS_EVENTS)
RECORD_CORRECTED = EventType("visits.record.corrected", 1, RecordCorrected, VISITS_EVENTS)
CONCERN_RAISED = EventType("visits.concern.raised", 1, ConcernRaised, VISITS_EVENTS)
ACTIVITY_RECORDED = EventType("visits.activity.recorded", 1, ActivityRecorded, VISITS_EVENTS)
VISIT_OVERDUE = EventType("visits.visit.overdue", 1, VisitOverdue, VISITS_EVENTS)

ALL = (PAIRING_STARTED, PAIRING_ENDED, RECORD_CREATED, RECORD_CORRECTED, CONCERN_RAISED, ACTIVITY_RECORDED, VISIT_OVERDUE)
