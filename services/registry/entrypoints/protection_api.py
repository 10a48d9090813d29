"""HTTP API of the child's data protection: the guardian's consent (知情同意) and, for an admin whom
the law lets see it, the full resident ID number."""

from __future__ import annotations

import logging
from datetime import date
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field

from services.registry.adapters.id_vault import IdVault
from services.registry.entrypoints.api import _runtime, _writer, answering
from services.registry.service_layer import protection
from services.registry.service_layer.handlers import not_future
from shared.auth import CurrentPrincipal, Principal, Role
from shared.clock import today_local
from shared.contracts.registry_v1 import Consent
from shared.security.audit import Action, audit_now

router = APIRouter(prefix="/api/v1/children/{child_id}", tags=["protection 个人信息保护"])
log = logging.getLogger("shouhu.registry.protection")


class ConsentIn(BaseModel):
    consent: Consent = Field(description="given 同意 | withdrawn 撤回同意")
    effective_on: date | None = Field(None, description="生效日期 the day it takes effect (default: today)")


class ConsentOut(BaseModel):
    child_id: UUID
    consent: Consent | None
    consent_on: date | None
    version: int


class IdNumberOut(BaseModel):
    child_id: UUID
    id_number: str | None = Field(description="完整身份证号 the full number; null when none is recorded")
    purpose: Literal["statutory"] = "statutory"


def _admin(principal: CurrentPrincipal) -> Principal:
    if principal.role is not Role.admin:
        raise HTTPException(403, detail={"message_zh": "仅管理员可查看完整身份证号", "message_en": "only an admin may see a full ID number"})
    return principal


@router.put("/consent", response_model=ConsentOut, summary="记录监护人知情同意或撤回 Record the guardian's consent or its withdrawal")
async def record_consent(
    child_id: UUID, body: ConsentIn, request: Request, principal: Annotated[Principal, Depends(_writer)],
) -> ConsentOut:
    on = body.effective_on or today_local()
    with answering():
        not_future(on, "effective_on")
        child = await protection.record_consent(
            _runtime(request).uow(), child_id, body.consent, on, region=principal.region, actor=principal.subject
        )
    return ConsentOut(child_id=child.id, consent=child.consent, consent_on=child.consent_on, version=child.version)


@router.get("/id-number", response_model=IdNumberOut, summary="查看完整身份证号（依法履职） The full ID number, for an admin")
async def reveal_id_number(child_id: UUID, request: Request, principal: Annotated[Principal, Depends(_admin)]) -> IdNumberOut:
    rt = _runtime(request)
    with answering():
        number = await protection.reveal_id_number(rt.uow(), child_id, IdVault.from_settings(rt.settings), region=principal.region)
    # Who saw which child's number: the record of access (kind id_number, the child's id, never the
    # number), written before the number is sent: no record, no number.
    await audit_now(request, Action.read, "id_number", [child_id])
    log.warning("full id number shown", extra={"fields": {"child_id": str(child_id), "actor": principal.subject}})
    return IdNumberOut(child_id=child_id, id_number=number)
