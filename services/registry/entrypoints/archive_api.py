"""HTTP API of the archive's lifecycle and records: guardianship agreements, closing and
reopening, transfers, duplicates and merges, absences, returns, enrolment, growth notes."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response

from services.registry.entrypoints.api import _not_found, _reader, _runtime, _writer, answering
from services.registry.entrypoints.schemas import (
    AbsenceIn,
    AbsenceOut,
    AgreementIn,
    AgreementOut,
    AgreementRenewal,
    AgreementRevocation,
    ArchiveClosing,
    DuplicateGroup,
    EnrolmentIn,
    GrowthNoteIn,
    GrowthNoteOut,
    MergeIn,
    SchoolReturn,
    TransferIn,
)
from services.registry.service_layer import guardianship, lifecycle, records
from shared.auth import CurrentPrincipal, Principal, Role
from shared.security.audit import Action, audit_now

router = APIRouter(prefix="/api/v1/children/{child_id}", tags=["archive 档案管理"])
review = APIRouter(prefix="/api/v1", tags=["archive 档案管理"])

Writer = Annotated[Principal, Depends(_writer)]
Reader = Annotated[Principal, Depends(_reader)]


def _admin(principal: CurrentPrincipal) -> Principal:
    if principal.role is not Role.admin:
        raise HTTPException(403, detail={"message_zh": "仅管理员可合并档案", "message_en": "only an admin may merge archives"})
    return principal


async def _visible(request: Request, child_id: UUID, principal: Principal) -> None:
    """Lists of a child's records are shown only for a child in the caller's area (and the reading noted)."""
    async with _runtime(request).uow() as uow:
        child = await uow.children.get(child_id)
    if child is None or not principal.covers(child.village_code):
        raise _not_found()
    await audit_now(request, Action.read, "child", [child_id])


# --- 委托监护 -------------------------------------------------------------------------------------


@router.post("/agreements", status_code=201, response_model=AgreementOut, summary="签订委托监护协议 Sign an agreement")
async def sign_agreement(child_id: UUID, body: AgreementIn, request: Request, principal: Writer) -> dict:
    with answering():
        return await guardianship.sign_agreement(
            _runtime(request).uow(), child_id, **body.model_dump(), region=principal.region, actor=principal.subject
        )


@router.get("/agreements", response_model=list[AgreementOut], summary="委托监护协议 The child's agreements")
async def list_agreements(child_id: UUID, request: Request, principal: Reader) -> list[dict]:
    await _visible(request, child_id, principal)
    async with _runtime(request).uow() as uow:
        return await uow.agreements.of_child(child_id)


@router.post("/agreements/{agreement_id}/renew", response_model=AgreementOut, summary="续签 Renew an agreement")
async def renew_agreement(child_id: UUID, agreement_id: UUID, body: AgreementRenewal, request: Request, principal: Writer) -> dict:
    with answering():
        return await guardianship.renew_agreement(
            _runtime(request).uow(), child_id, agreement_id, **body.model_dump(), region=principal.region, actor=principal.subject
        )


@router.post("/agreements/{agreement_id}/revoke", status_code=204, summary="解除 Revoke an agreement")
async def revoke_agreement(child_id: UUID, agreement_id: UUID, body: AgreementRevocation, request: Request, principal: Writer) -> Response:
    with answering():
        await guardianship.revoke_agreement(
            _runtime(request).uow(), child_id, agreement_id, **body.model_dump(), region=principal.region, actor=principal.subject
        )
    return Response(status_code=204)


# --- 结档、转移、合并 -------------------------------------------------------------------------------


@router.post("/close", status_code=204, summary="结档 Close the archive (read-only)")
async def close_archive(child_id: UUID, body: ArchiveClosing, request: Request, principal: Writer) -> Response:
    with answering():
        await lifecycle.close_archive(_runtime(request).uow(), child_id, **body.model_dump(), region=principal.region, actor=principal.subject)
    return Response(status_code=204)


@router.post("/reopen", status_code=204, summary="重新开档 Reopen a closed archive")
async def reopen_archive(child_id: UUID, request: Request, principal: Writer) -> Response:
    with answering():
        await lifecycle.reopen_archive(_runtime(request).uow(), child_id, region=principal.region, actor=principal.subject)
    return Response(status_code=204)


@router.post("/transfer", status_code=204, summary="转移 Transfer to another village, township or school")
async def transfer_child(child_id: UUID, body: TransferIn, request: Request, principal: Writer) -> Response:
    with answering():
        await lifecycle.transfer_child(_runtime(request).uow(), child_id, **body.model_dump(), region=principal.region, actor=principal.subject)
    return Response(status_code=204)


@router.post("/merge", status_code=204, summary="合并重复档案 Merge this archive into another (admin)")
async def merge_child(child_id: UUID, body: MergeIn, request: Request, principal: Annotated[Principal, Depends(_admin)]) -> Response:
    with answering():
        await lifecycle.merge_children(_runtime(request).uow(), child_id, body.survivor_id, region=principal.region, actor=principal.subject)
    return Response(status_code=204)


@review.get("/duplicates", response_model=list[DuplicateGroup], summary="疑似重复档案 Possible duplicates for review")
async def list_duplicates(
    request: Request, principal: Reader, limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[dict]:
    async with _runtime(request).uow() as uow:
        return await uow.children.duplicate_groups(region=principal.region, limit=limit)


# --- 就学与成长记录 ---------------------------------------------------------------------------------


@router.post("/absences", status_code=201, response_model=AbsenceOut, summary="报告缺课 Report an absence")
async def report_absence(child_id: UUID, body: AbsenceIn, request: Request, principal: Writer) -> dict:
    with answering():
        return await records.report_absence(_runtime(request).uow(), child_id, **body.model_dump(), region=principal.region, actor=principal.subject)


@router.get("/absences", response_model=list[AbsenceOut], summary="缺课记录 The child's absences")
async def list_absences(child_id: UUID, request: Request, principal: Reader) -> list[dict]:
    await _visible(request, child_id, principal)
    async with _runtime(request).uow() as uow:
        return await uow.absences.of_child(child_id)


@router.post("/school-return", status_code=204, summary="返校 Record a return to school")
async def record_return(child_id: UUID, body: SchoolReturn, request: Request, principal: Writer) -> Response:
    with answering():
        await records.record_return(_runtime(request).uow(), child_id, **body.model_dump(), region=principal.region, actor=principal.subject)
    return Response(status_code=204)


@router.put("/enrolment", status_code=204, summary="就学状态 Set the enrolment status")
async def change_enrolment(child_id: UUID, body: EnrolmentIn, request: Request, principal: Writer) -> Response:
    with answering():
        await records.change_enrolment(_runtime(request).uow(), child_id, **body.model_dump(), region=principal.region, actor=principal.subject)
    return Response(status_code=204)


@router.post("/growth-notes", status_code=201, response_model=GrowthNoteOut, summary="成长记录 Add a growth note")
async def add_growth_note(child_id: UUID, body: GrowthNoteIn, request: Request, principal: Writer) -> dict:
    with answering():
        return await records.add_growth_note(_runtime(request).uow(), child_id, **body.model_dump(), region=principal.region, actor=principal.subject)


@router.get("/growth-notes", response_model=list[GrowthNoteOut], summary="成长记录 The child's growth record, in time order")
async def list_growth_notes(child_id: UUID, request: Request, principal: Reader) -> list[dict]:
    await _visible(request, child_id, principal)
    async with _runtime(request).uow() as uow:
        return await uow.growth_notes.of_child(child_id)
