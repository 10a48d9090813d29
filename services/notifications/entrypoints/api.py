"""HTTP API of notifications (port 8003): enqueue a message, follow its receipts,
the in-app inbox, the user directory, and agencies' answers over HTTP."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID, uuid4

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert

from services.notifications.adapters.orm import deliveries, requests, users
from services.notifications.service_layer.handlers import AnswerRefused, Notifier
from shared.contracts.agency_v1 import MessageAcknowledged, MessageAnswered
from shared.auth import CurrentPrincipal, Principal, Role, role_in
from shared.contracts.notifications_v1 import Channel, MessageRequested

_SENDERS = {Role.admin, Role.county_office, Role.township, Role.village_supervisor, Role.school}
_DIRECTORY_EDITORS = {Role.admin, Role.county_office}


class MessageRequestIn(MessageRequested):
    """发送消息 Send a message. Give your own ``request_id`` to make retries of this call harmless."""

    request_id: UUID = Field(default_factory=uuid4)


class Enqueued(BaseModel):
    request_id: UUID
    new_deliveries: int = Field(description="0 when this request was already received")


class DeliveryOut(BaseModel):
    id: UUID
    kind: str
    recipient_role: str
    agency_code: str | None
    channel: str | None
    status: str
    attempts: int
    last_error: str | None
    suppressed_reason: str | None = Field(None, description="status suppressed: why it was not sent (e.g. consent_withdrawn 监护人撤回知情同意)")
    created_at: datetime
    delivered_at: datetime | None
    read_at: datetime | None
    acknowledged_at: datetime | None
    answered_at: datetime | None


class InboxItem(BaseModel):
    id: UUID
    kind: str
    subject: str | None
    text: str | None
    created_at: datetime
    read_at: datetime | None


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phone: Annotated[str, StringConstraints(pattern=r"^1[3-9]\d{9}$")] | None = None
    email: Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+$", max_length=200)] | None = None
    channels: list[Channel] = Field(min_length=1, description="in order of preference: inbox, sms, email")


def _forbidden() -> HTTPException:
    return HTTPException(403, detail={"message_zh": "无权执行此操作", "message_en": "your role may not do this"})


def _not_found() -> HTTPException:
    return HTTPException(404, detail={"message_zh": "没有该消息", "message_en": "no such message"})


def _agency(principal: CurrentPrincipal) -> Principal:
    if principal.role is not Role.agency or not principal.agency:
        raise _forbidden()
    return principal


Sender = Annotated[Principal, Depends(role_in(_SENDERS))]
DirectoryEditor = Annotated[Principal, Depends(role_in(_DIRECTORY_EDITORS))]
AgencyPrincipal = Annotated[Principal, Depends(_agency)]


def build_router(notifier: Notifier) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["notifications 通知"])

    @router.post("/messages", status_code=status.HTTP_202_ACCEPTED, response_model=Enqueued,
                 summary="发送消息 Enqueue a message to recipients by role or agency")
    async def enqueue(body: MessageRequestIn, request: Request, principal: Sender) -> Enqueued:
        if not principal.covers(body.region_code):
            raise HTTPException(403, detail={"message_zh": "region_code 不在您的辖区内", "message_en": "region_code is outside your area"})
        async with request.app.state.runtime.uow() as uow:
            created = await notifier.request(uow, body, requested_by=principal.subject)
            await uow.commit()
        return Enqueued(request_id=body.request_id, new_deliveries=len(created))

    @router.get("/messages/{request_id}", response_model=list[DeliveryOut], summary="消息回执 Deliveries and receipts of a request")
    async def receipts(request_id: UUID, request: Request, principal: Sender) -> list[DeliveryOut]:
        async with request.app.state.runtime.uow() as uow:
            region = await uow.session.scalar(select(requests.c.region_code).where(requests.c.request_id == request_id))
            if region is None or not principal.covers(region):
                raise _not_found()
            rows = (await uow.session.execute(
                select(deliveries).where(deliveries.c.request_id == request_id).order_by(deliveries.c.recipient)
            )).mappings()
            return [DeliveryOut.model_validate(dict(r)) for r in rows]

    @router.get("/inbox", response_model=list[InboxItem], summary="站内信 My inbox, newest first")
    async def inbox(
        request: Request, principal: CurrentPrincipal, unread: bool = False,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
    ) -> list[InboxItem]:
        d = deliveries.c
        stmt = select(d.id, d.kind, d.subject, d.text, d.created_at, d.read_at).where(
            d.recipient == f"user:{principal.subject}", d.channel == Channel.inbox, d.delivered_at.is_not(None)
        )
        if unread:
            stmt = stmt.where(d.read_at.is_(None))
        async with request.app.state.runtime.uow() as uow:
            rows = (await uow.session.execute(stmt.order_by(d.created_at.desc()).limit(limit))).mappings()
            return [InboxItem.model_validate(dict(r)) for r in rows]

    @router.post("/inbox/{delivery_id}/read", status_code=status.HTTP_204_NO_CONTENT, summary="标为已读 Mark read")
    async def mark_read(delivery_id: UUID, request: Request, principal: CurrentPrincipal) -> Response:
        async with request.app.state.runtime.uow() as uow:
            if not await notifier.mark_read(uow, principal.subject, delivery_id):
                raise _not_found()
            await uow.commit()
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    @router.put("/users/{user_id}", status_code=status.HTTP_204_NO_CONTENT,
                summary="收件人通讯方式 Set how a user is reached")
    async def put_user(
        user_id: Annotated[str, StringConstraints(min_length=1, max_length=100)], body: UserIn, request: Request,
        principal: DirectoryEditor,
    ) -> Response:
        values = body.model_dump()
        async with request.app.state.runtime.uow() as uow:
            stmt = insert(users).values(user_id=user_id, **values)
            await uow.session.execute(
                stmt.on_conflict_do_update(index_elements=["user_id"], set_={**values, "updated_at": func.now()})
            )
            await uow.commit()
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    async def _answer(request: Request, principal: Principal, answer: MessageAcknowledged | MessageAnswered) -> Response:
        async with request.app.state.runtime.uow() as uow:
            try:
                await notifier.apply_answer(uow, principal.agency, answer)
            except AnswerRefused as refused:
                raise HTTPException(404, detail={"message_zh": refused.zh, "message_en": refused.en}) from None
            await uow.commit()
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    # For agencies reached by webhook or e-mail: the same answers as on from-agency.<code>.
    @router.post("/agency/acknowledgements", status_code=status.HTTP_204_NO_CONTENT, tags=["agency gateway 部门对接"],
                 summary="收到回执 An agency acknowledges a message")
    async def acknowledge(body: MessageAcknowledged, request: Request, principal: AgencyPrincipal) -> Response:
        return await _answer(request, principal, body)

    @router.post("/agency/answers", status_code=status.HTTP_204_NO_CONTENT, tags=["agency gateway 部门对接"],
                 summary="办理结果 An agency reports the outcome of a message")
    async def answer(body: MessageAnswered, request: Request, principal: AgencyPrincipal) -> Response:
        return await _answer(request, principal, body)

    return router
