"""Dated records in the archive: absences (缺课), return to school (返校), enrolment status
(就学状态) and the growth record (成长记录)."""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID, uuid4

from services.registry.domain.rules import RuleViolation
from services.registry.service_layer.handlers import Conflict, emit, not_future, open_child
from shared.contracts.registry_v1 import (
    ABSENCE_REPORTED,
    ENROLMENT_CHANGED,
    RETURNED_TO_SCHOOL,
    AbsenceReported,
    EnrolmentChanged,
    EnrolmentStatus,
    ReturnedToSchool,
)

# Statuses that a recorded return to school ends.
_OUT_OF_CLASS = {EnrolmentStatus.absent, EnrolmentStatus.dropped_out, EnrolmentStatus.suspended}


def _pupil(child) -> None:
    if not child.school_id:
        raise RuleViolation("school_required", "该儿童未登记学校", "the child has no school on record").at("school_id")


async def report_absence(
    uow, child_id: UUID, *, from_date: date, to_date: date, school_days: int, excused: bool, reason_code: str | None,
    region: str, actor: str,
) -> dict[str, Any]:
    """Days missed; unexcused ones (无故旷课) are what the 劝返 flow counts. A day is reported once."""
    if to_date < from_date:
        raise RuleViolation("to_date_order", "结束日期不能早于开始日期", "to_date is before from_date").at("to_date")
    not_future(to_date, "to_date")
    if school_days > (to_date - from_date).days + 1:
        raise RuleViolation("school_days_range", "缺课天数多于日期范围内的天数",
                            "more school days than days in the range").at("school_days")
    async with uow:
        child = await open_child(uow, child_id, region)
        _pupil(child)
        clash = await uow.absences.overlapping(child.id, from_date, to_date)
        if clash:
            raise Conflict("absence_overlaps", "这些日期已报告过缺课", "an absence already covers some of these days",
                           absence_id=clash["id"], from_date=clash["from_date"], to_date=clash["to_date"])
        absence = {
            "id": uuid4(), "child_id": child.id, "school_id": child.school_id, "from_date": from_date, "to_date": to_date,
            "school_days": school_days, "excused": excused, "reason_code": reason_code, "actor": actor,
        }
        await uow.absences.add(absence)
        await emit(uow, child, ABSENCE_REPORTED, AbsenceReported(absence_id=absence["id"], **{
            k: absence[k] for k in ("child_id", "school_id", "from_date", "to_date", "school_days", "excused", "reason_code")
        }), actor=actor)
        await uow.children.save(child)
        await uow.commit()
    return absence


async def set_enrolment(uow, child, status: EnrolmentStatus, on: date, actor: str) -> bool:
    """The child's enrolment status, with its event when it changes (False when it already was)."""
    previous = EnrolmentStatus(child.enrolment_status) if child.enrolment_status else None
    if previous is status:
        return False
    child.enrolment_status = status.value
    await emit(uow, child, ENROLMENT_CHANGED, EnrolmentChanged(
        child_id=child.id, school_id=child.school_id, previous=previous, status=status, effective_on=on,
    ), actor=actor)
    return True


async def record_return(uow, child_id: UUID, *, returned_on: date, region: str, actor: str) -> None:
    """The school records the child back in class (返校); an absent, dropped-out or suspended pupil is in school again."""
    not_future(returned_on, "returned_on")
    async with uow:
        child = await open_child(uow, child_id, region)
        _pupil(child)
        await emit(uow, child, RETURNED_TO_SCHOOL, ReturnedToSchool(child_id=child.id, school_id=child.school_id, returned_on=returned_on), actor=actor)
        if child.enrolment_status in _OUT_OF_CLASS:
            await set_enrolment(uow, child, EnrolmentStatus.in_school, returned_on, actor)
        await uow.children.save(child)
        await uow.commit()


async def change_enrolment(uow, child_id: UUID, *, status: EnrolmentStatus, effective_on: date, region: str, actor: str) -> bool:
    """Sets the enrolment status (辍学登记 is ``dropped_out``); False when it already was that."""
    not_future(effective_on, "effective_on")
    async with uow:
        child = await open_child(uow, child_id, region)
        if status is not EnrolmentStatus.not_enrolled:
            _pupil(child)
        changed = await set_enrolment(uow, child, status, effective_on, actor)
        if changed:
            await uow.children.save(child)
            await uow.commit()
    return changed


async def add_growth_note(uow, child_id: UUID, *, noted_on: date, topic: str, text: str, region: str, actor: str) -> dict[str, Any]:
    """成长记录: kept in the archive only (free text about a child travels on no stream)."""
    not_future(noted_on, "noted_on")
    async with uow:
        await open_child(uow, child_id, region)
        note = {"id": uuid4(), "child_id": child_id, "noted_on": noted_on, "topic": topic, "text": text, "actor": actor}
        await uow.growth_notes.add(note)
        await uow.commit()
    return note
