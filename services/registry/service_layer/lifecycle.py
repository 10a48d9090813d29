"""The archive's lifecycle: closed (结档) and reopened, transferred (转移) with the child, merged
when two archives turn out to be one child."""

from __future__ import annotations

from datetime import date
from uuid import UUID

from services.registry.domain.rules import RuleViolation, check_village_code
from services.registry.service_layer.handlers import ChildNotFound, Conflict, close, emit, not_future, open_child, settle_guardianship
from shared.clock import today_local
from shared.contracts.registry_v1 import (
    ARCHIVE_REOPENED,
    CHILD_MERGED,
    CHILD_TRANSFERRED,
    ArchiveCloseReason,
    ArchiveReopened,
    ChildMerged,
    ChildTransferred,
    EnrolmentStatus,
)


async def close_archive(uow, child_id: UUID, *, reason: ArchiveCloseReason, closed_on: date, region: str, actor: str) -> None:
    if reason is ArchiveCloseReason.merged:
        raise RuleViolation("close_reason_merge", "合并重复档案请使用合并功能",
                            "duplicates are closed by merging them, not with this reason").at("reason")
    not_future(closed_on, "closed_on")
    async with uow:
        child = await open_child(uow, child_id, region)
        await close(uow, child, reason, closed_on, actor=actor)
        await uow.children.save(child)
        await uow.commit()


async def reopen_archive(uow, child_id: UUID, *, region: str, actor: str) -> None:
    """The child is followed again (the parents left again, the move fell through)."""
    async with uow:
        child = await uow.children.get(child_id, for_update=True)
        if child is None or not child.village_code.startswith(region):
            raise ChildNotFound(child_id)
        if child.is_open:
            raise Conflict("archive_open", "该档案未结档", "the archive is open")
        if child.merged_into:
            raise Conflict("archive_merged", "该档案已合并到另一档案，不能重新开档",
                           "this archive was merged into another and cannot be reopened", survivor_id=child.merged_into)
        if child.id_number_hash and await uow.children.open_with_id_number(child.id_number_hash, other_than=child.id):
            raise Conflict("id_number_registered", "该身份证号已有在档儿童档案", "this ID number is already on an open archive")
        child.archive_status, child.closed_reason, child.closed_on = "open", None, None
        await emit(uow, child, ARCHIVE_REOPENED, ArchiveReopened(child_id=child.id, reopened_on=today_local()), actor=actor)
        in_force = await uow.agreements.in_force(child.id) is not None
        await settle_guardianship(uow, child, actor=actor, agreement_in_force=in_force)
        await uow.children.save(child)
        await uow.commit()


async def transfer_child(
    uow, child_id: UUID, *, to_village_code: str, to_school_id: str | None, to_class_name: str | None,
    effective_on: date, region: str, actor: str,
) -> None:
    """The child moves village, township or school: one event with the old and the new place, so
    that schedules, pairings and figures move with the child. The sending side records it; the
    child may leave the sender's area."""
    try:
        to_village_code = check_village_code(to_village_code)
    except RuleViolation as v:
        raise v.at("to_village_code") from None
    not_future(effective_on, "effective_on")
    async with uow:
        child = await open_child(uow, child_id, region)
        if (to_village_code, to_school_id, to_class_name) == (child.village_code, child.school_id, child.class_name):
            raise RuleViolation("transfer_nothing", "转入地点与学校与现在相同", "the new place and school are the current ones").at("to_village_code")
        data = ChildTransferred(
            child_id=child.id, from_village_code=child.village_code, to_village_code=to_village_code,
            from_school_id=child.school_id, to_school_id=to_school_id, to_class_name=to_class_name, effective_on=effective_on,
        )
        child.village_code, child.school_id, child.class_name = to_village_code, to_school_id, to_class_name
        if to_school_id is None:
            child.enrolment_status = EnrolmentStatus.not_enrolled
        elif child.enrolment_status in (None, EnrolmentStatus.not_enrolled, EnrolmentStatus.transferred):
            child.enrolment_status = EnrolmentStatus.in_school
        await emit(uow, child, CHILD_TRANSFERRED, data, actor=actor)
        await uow.children.save(child)
        await uow.commit()


async def merge_children(uow, duplicate_id: UUID, survivor_id: UUID, *, region: str, actor: str) -> None:
    """Two archives of one child: ``duplicate_id`` closes (reason merged) and points to the survivor;
    consumers move what they hold to the survivor. An ID number only the duplicate had moves over."""
    if duplicate_id == survivor_id:
        raise RuleViolation("merge_same", "不能与自身合并", "an archive cannot be merged into itself").at("survivor_id")
    async with uow:
        # Locked in id order, so two merges of the same pair cannot deadlock.
        first, second = sorted((duplicate_id, survivor_id))
        locked = {first: await open_child(uow, first, region), second: await open_child(uow, second, region)}
        duplicate, survivor = locked[duplicate_id], locked[survivor_id]
        if duplicate.id_number_hash and survivor.id_number_hash and duplicate.id_number_hash != survivor.id_number_hash:
            raise Conflict("merge_different_id_numbers", "两份档案的身份证号不同，不是同一儿童",
                           "the two archives have different ID numbers: they are two children")
        moved_id = None
        if duplicate.id_number_hash and not survivor.id_number_hash:
            moved_id = (duplicate.id_number_hash, duplicate.id_number_masked, duplicate.id_number_sealed)
        duplicate.merged_into = survivor.id
        duplicate.id_number_hash = duplicate.id_number_masked = duplicate.id_number_sealed = None
        # Closed by the merge itself: consumers read "merged" as closed-and-moved, so no archive.closed
        # (which would end what they are about to move).
        duplicate.archive_status, duplicate.closed_reason, duplicate.closed_on = "closed", ArchiveCloseReason.merged.value, today_local()
        await emit(uow, duplicate, CHILD_MERGED, ChildMerged(child_id=duplicate.id, survivor_id=survivor.id), actor=actor)
        await uow.children.save(duplicate)  # frees the ID number before the survivor takes it
        if moved_id:
            survivor.id_number_hash, survivor.id_number_masked, survivor.id_number_sealed = moved_id
            await uow.children.save(survivor)
        await uow.commit()
