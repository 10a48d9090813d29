"""What notifications does: plan deliveries for a request, attempt them (timers),
take in agencies' answers, keep contact cards. Each handler works in the unit
of work it is given; events leave through the outbox in the same transaction."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

from pydantic import ValidationError
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert

from services.notifications.adapters.channels import ChannelAdapter, Outgoing, SendError
from services.notifications.adapters.directory import Directory
from services.notifications.adapters.orm import agency_rejections, contacts, deliveries, requests
from services.notifications.domain.model import OPEN, QuietHours, RetryPolicy, Status, after_failure
from services.notifications.domain.templates import Templates
from shared.contracts import EventEnvelope
from shared.contracts.agency_v1 import (
    ANSWER_MODELS,
    ANSWER_REJECTED,
    AgencyMessage,
    AnswerRejected,
    MessageAcknowledged,
    MessageAnswered,
    for_agency,
)
from shared.contracts.envelope import EventType
from shared.contracts.notifications_v1 import (
    AGENCY_ANSWERED,
    DELIVERY_ACKNOWLEDGED,
    DELIVERY_FAILED,
    AgencyAnswered,
    Channel,
    DeliveryAcknowledged,
    DeliveryFailed,
    MessageKind,
    MessageRequested,
    RecipientRole,
    Urgency,
)
from shared.contracts.registry_v1 import ContactCard
from shared.db import columns_of, insert_rows
from shared.logs import log_fields
from shared.outbox import DATA_FIELD
from shared.timers import Timer, schedule

log = logging.getLogger("shouhu.notifications")

ATTEMPT = "notifications.attempt"
# An urgent delivery's attempts: fired by the urgent lane (entrypoints/urgent.py) as soon as they are due.
URGENT_ATTEMPT = "notifications.attempt.urgent"


# Upsert of a run of cards; a card older than the one held (a redelivery racing a newer one) changes nothing.
_upsert_cards = insert_rows(contacts, ("child_id", "card", "version"))
_upsert_cards = _upsert_cards.on_conflict_do_update(
    index_elements=["child_id"],
    set_={"card": _upsert_cards.excluded.card, "version": _upsert_cards.excluded.version, "updated_at": func.now()},
    where=contacts.c.version < _upsert_cards.excluded.version,
)


async def contacts_changed(uow, events: list[EventEnvelope[ContactCard]]) -> None:
    """A run of contact cards (snapshots) in one statement, the newest per child."""
    newest: dict[UUID, EventEnvelope[ContactCard]] = {}
    for e in events:
        held = newest.get(e.data.child_id)
        if held is None or held.aggregate_version < e.aggregate_version:
            newest[e.data.child_id] = e
    rows = [{"child_id": child, "card": e.data.model_dump(mode="json"), "version": e.aggregate_version}
            for child, e in sorted(newest.items())]  # one order for all: no deadlocks between consumers
    await uow.session.execute(_upsert_cards, columns_of(rows))


_new_requests = insert_rows(
    requests, ("request_id", "kind", "urgency", "child_id", "region_code", "data", "requested_by")
).on_conflict_do_nothing()


class AnswerRefused(ValueError):
    """An agency's answer that cannot be applied; the agency is told why."""

    def __init__(self, zh: str, en: str) -> None:
        super().__init__(en)
        self.zh, self.en = zh, en


class Notifier:
    def __init__(
        self, *, directory: Directory, templates: Templates, channels: dict[Channel, ChannelAdapter],
        retries: dict[Channel, RetryPolicy], quiet: QuietHours, timers, clock: Callable[[], datetime],
    ) -> None:
        self.directory, self.templates, self.channels = directory, templates, channels
        self.retries, self.quiet, self.timers, self.clock = retries, quiet, timers, clock
        self._new_timers = insert_rows(timers, ("kind", "key", "due_at", "payload")).on_conflict_do_nothing()
        # Called once a transaction that planned an urgent delivery has committed (the urgent lane sets it).
        self.urgent_planned: Callable[[], None] = lambda: None

    # --- requests ---------------------------------------------------------------

    async def request(self, uow, req: MessageRequested, *, requested_by: str | None) -> list[UUID]:
        """Plan one delivery per (request, recipient, kind); returns the new ones (none on a repeat)."""
        return await self.plan(uow, [(req, requested_by)])

    async def requests_received(self, uow, events: list[EventEnvelope[MessageRequested]]) -> None:
        await self.plan(uow, [(e.data, e.producer) for e in events])

    async def plan(self, uow, asked: list[tuple[MessageRequested, str | None]]) -> list[UUID]:
        """Plan the deliveries of many requests in four statements (requests, recipients' channels,
        deliveries, their first attempts); returns the new deliveries (none for a repeated request)."""
        session, now = uow.session, self.clock()
        reqs = [req for req, _ in asked]
        await session.execute(_new_requests, columns_of([{
            "request_id": req.request_id, "kind": req.kind, "urgency": req.urgency, "child_id": req.child_id,
            "region_code": req.region_code, "data": req.data, "requested_by": by,
        } for req, by in asked]))
        users = await self.directory.user_channels(session, reqs)
        rows = [{
            "id": uuid4(), "request_id": req.request_id, "kind": req.kind, "recipient": r.key,
            "recipient_role": r.role, "agency_code": r.agency.code if r.agency else None, "channels": list(r.channels),
            "channel": r.channels[0] if r.channels else None, "status": Status.queued, "attempt_seq": 1,
        } for req in reqs for r in self.directory.recipients(req, users)]
        if not rows:
            return []
        created = dict((await session.execute(
            insert(deliveries).values(rows).on_conflict_do_nothing(constraint="uq_deliveries_once")
            .returning(deliveries.c.id, deliveries.c.request_id)
        )).all())
        urgent = {req.request_id for req in reqs if req.urgency is Urgency.urgent}
        first = [{"kind": URGENT_ATTEMPT if created[d] in urgent else ATTEMPT, "key": f"{d}:1", "due_at": now,
                  "payload": {"delivery_id": str(d)}} for d in created]
        if first:
            await session.execute(self._new_timers, columns_of(first))
        if urgent & set(created.values()):
            uow.after_commit(self.urgent_planned)
        return list(created)

    # --- attempts (timers) --------------------------------------------------------

    async def attempt(self, uow, timer: Timer) -> None:
        session, now = uow.session, self.clock()
        d = await self._delivery(session, UUID(timer.payload["delivery_id"]))
        if d is None or d.status not in OPEN:
            return  # a stale timer: the delivery moved on
        if d.channel is None:
            await self._give_up(uow, d, None, "the recipient has no channel", permanent=True)
            return
        channel = Channel(d.channel)
        release = self.quiet.release_at(now, channel=channel, role=RecipientRole(d.recipient_role), urgency=Urgency(d.urgency))
        if release is not None:
            await self._update(session, d, status=Status.held, held_until=release)
            await self._schedule(session, d.id, d.attempt_seq + 1, release, urgent=False)  # urgent ones are never held
            return
        address = await self.directory.address(session, d.recipient, channel)
        if not address:
            await self._failed(uow, d, channel, f"no {channel} address", permanent=True, now=now)
            return
        rendered = self.templates.render(MessageKind(d.kind), channel, await self._context(session, d))
        message = Outgoing(d.id, address, rendered.subject, rendered.text, self._agency_message(d, rendered, now))
        try:
            await self.channels[channel].send(uow, message)
        except SendError as exc:
            await self._failed(uow, d, channel, exc.reason, permanent=exc.permanent, now=now)
            return
        await self._update(
            session, d, status=Status.delivered, delivered_at=now, subject=rendered.subject, text=rendered.text,
            last_error=None, held_until=None,
        )
        log.info("delivered", extra=log_fields(delivery=str(d.id), channel=channel.value, kind=d.kind))

    async def _failed(self, uow, d, channel: Channel, reason: str, *, permanent: bool, now: datetime) -> None:
        attempts = d.attempts + 1
        step = after_failure(
            failed_attempts=attempts, permanent=permanent, policy=self.retries[channel],
            channel_index=d.channel_index, channels=list(d.channels),
        )
        log.warning("attempt failed", extra=log_fields(delivery=str(d.id), channel=channel.value, permanent=permanent,
                                                       reason=reason, retry=step.retry_after is not None))
        if step.retry_after is not None:
            await self._update(uow.session, d, status=Status.queued, attempts=attempts, last_error=reason)
            await self._schedule(uow.session, d.id, d.attempt_seq + 1, now + step.retry_after, urgent=d.urgency == Urgency.urgent)
            return
        if step.channel_index is None:
            await self._give_up(uow, d, channel, reason, permanent=permanent)
            return
        nxt = Channel(d.channels[step.channel_index])
        await self._emit(uow, d, DELIVERY_FAILED, self._failure(d, channel, reason, permanent, nxt))
        await self._update(
            uow.session, d, status=Status.queued, channel_index=step.channel_index, channel=nxt, attempts=0,
            last_error=reason,
        )
        await self._schedule(uow.session, d.id, d.attempt_seq + 1, now, urgent=d.urgency == Urgency.urgent)

    async def _give_up(self, uow, d, channel: Channel | None, reason: str, *, permanent: bool) -> None:
        await self._emit(uow, d, DELIVERY_FAILED, self._failure(d, channel, reason, permanent, None))
        await self._update(uow.session, d, status=Status.failed, channel=None, last_error=reason)

    @staticmethod
    def _failure(d, channel: Channel | None, reason: str, permanent: bool, nxt: Channel | None) -> DeliveryFailed:
        return DeliveryFailed(
            delivery_id=d.id, request_id=d.request_id, kind=d.kind, recipient_role=d.recipient_role,
            agency_code=d.agency_code, channel=channel, permanent=permanent, reason=reason, next_channel=nxt,
        )

    async def _context(self, session, d) -> dict[str, Any]:
        agency = self.directory.agencies.by_code.get(d.agency_code or "")
        name = await self.directory.child_name(session, d.child_id)
        return {
            "data": d.data, "child_name": name or "（未登记姓名）", "region_code": d.region_code,
            "agency_name": agency.name if agency else "", "urgent": d.urgency == Urgency.urgent,
        }

    @staticmethod
    def _agency_message(d, rendered, now: datetime) -> AgencyMessage | None:
        if d.agency_code is None:
            return None
        return AgencyMessage(
            message_id=d.id, request_id=d.request_id, kind=d.kind, urgency=d.urgency, agency_code=d.agency_code,
            region_code=d.region_code, child_id=d.child_id, subject=rendered.subject, text=rendered.text,
            data=d.data, sent_at=now,
        )

    # --- agencies' answers --------------------------------------------------------

    async def agency_answer(self, uow, event: EventEnvelope, *, code: str) -> None:
        """An answer on from-agency.<code>; a refused one is told why and raised (to the DLQ)."""
        try:
            await self.apply_answer(uow, code, self._validate_answer(event, code))
        except AnswerRefused as refused:
            await self._refuse(uow, event, code, refused)
            raise

    async def apply_answer(self, uow, code: str, answer: MessageAcknowledged | MessageAnswered) -> None:
        """Record the agency's receipt or outcome and tell the sender; a repeat changes nothing."""
        d = await self._delivery(uow.session, answer.message_id)
        if d is None or d.agency_code != code:
            raise AnswerRefused("message_id 不是发给贵单位的消息", "message_id names no message sent to your agency")
        now = self.clock()
        if d.acknowledged_at is None:
            ack = DeliveryAcknowledged(
                delivery_id=d.id, request_id=d.request_id, kind=d.kind, agency_code=code,
                acknowledged_at=getattr(answer, "received_at", now), reference=answer.reference,
            )
            await self._emit(uow, d, DELIVERY_ACKNOWLEDGED, ack)
            await self._update(uow.session, d, status=Status.acknowledged, acknowledged_at=now)
        outcome = answer.model_dump(mode="json", include={"outcome", "decided_at", "reference", "note"})
        if isinstance(answer, MessageAnswered) and d.outcome != outcome:
            answered = AgencyAnswered(
                delivery_id=d.id, request_id=d.request_id, kind=d.kind, agency_code=code, outcome=answer.outcome,
                decided_at=answer.decided_at, note=answer.note,
            )
            await self._emit(uow, d, AGENCY_ANSWERED, answered)
            await self._update(uow.session, d, status=Status.answered, answered_at=now, outcome=outcome)

    @staticmethod
    def _validate_answer(event: EventEnvelope, code: str):
        model = ANSWER_MODELS.get(event.type)
        if model is None or event.schema_version != 1:
            raise AnswerRefused(f"不认识的消息类型 {event.type} v{event.schema_version}",
                                f"unknown answer type {event.type} v{event.schema_version}")
        if event.producer != code:
            raise AnswerRefused("producer 应为贵单位代码", f"producer must be your agency code {code}")
        try:
            return model.model_validate(event.data)
        except ValidationError as exc:
            # Field names and rules only: the input may hold personal data.
            fields = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'data'}: {e['type']}" for e in exc.errors())
            raise AnswerRefused(f"数据不符合 {event.type} v1 的格式：{fields}", f"data does not match {event.type} v1: {fields}") from None

    async def unreadable_answer(self, uow, stream: str, entry_id: str, *, code: str) -> None:
        """An entry on from-agency.<code> that is no event envelope in JSON (无法读取的回复): the agency
        is told which entry, once; the consumer then parks it in the DLQ."""
        refused = AnswerRefused(
            f"条目 {entry_id} 不是 JSON 格式的事件信封（字段 {DATA_FIELD}），无法读取",
            f"entry {entry_id} is not an event envelope in JSON (field {DATA_FIELD}) and cannot be read",
        )
        # No event id to remember it by: the entry's place on the stream names it.
        key = uuid5(NAMESPACE_URL, f"redis-stream:{stream}/{entry_id}")
        await self._tell(uow, code, key, None, refused, self.directory.agencies.by_code[code].region)

    async def _refuse(self, uow, event: EventEnvelope, code: str, refused: AnswerRefused) -> None:
        """Tell the agency once, in a transaction of its own (the answer's own rolls back)."""
        async with uow.sibling() as own:
            await self._tell(own, code, event.event_id, event.event_id, refused, event.region_code)
            await own.commit()

    @staticmethod
    async def _tell(uow, code: str, key: UUID, event_id: UUID | None, refused: AnswerRefused, region_code: str) -> None:
        new = await uow.session.scalar(
            insert(agency_rejections).values(event_id=key, agency_code=code, reason=refused.en)
            .on_conflict_do_nothing().returning(agency_rejections.c.event_id)
        )
        if new is not None:
            reply = AnswerRejected(rejected_event_id=event_id, reason_zh=refused.zh, reason_en=refused.en)
            await uow.emit(
                for_agency(ANSWER_REJECTED, code), reply, aggregate_id=str(key), aggregate_version=1,
                region_code=region_code,
            )

    # --- the inbox ----------------------------------------------------------------

    async def mark_read(self, uow, user_id: str, delivery_id: UUID) -> bool:
        result = await uow.session.execute(
            update(deliveries)
            .where(deliveries.c.id == delivery_id, deliveries.c.recipient == f"user:{user_id}",
                   deliveries.c.channel == Channel.inbox, deliveries.c.status.in_([Status.delivered, Status.read]))
            .values(status=Status.read, read_at=func.coalesce(deliveries.c.read_at, self.clock()))
        )
        return result.rowcount == 1

    # --- plumbing -----------------------------------------------------------------

    @staticmethod
    async def _delivery(session, delivery_id: UUID):
        return (
            await session.execute(
                select(deliveries, requests.c.urgency, requests.c.child_id, requests.c.region_code, requests.c.data)
                .join(requests, requests.c.request_id == deliveries.c.request_id)
                .where(deliveries.c.id == delivery_id)
                .with_for_update(of=deliveries)
            )
        ).first()

    @staticmethod
    async def _update(session, d, **values) -> None:
        await session.execute(update(deliveries).where(deliveries.c.id == d.id).values(**values))

    async def _schedule(self, session, delivery_id: UUID, seq: int, due: datetime, *, urgent: bool) -> None:
        # A timer per attempt: the poller marks the firing timer done after its handler returns.
        await session.execute(update(deliveries).where(deliveries.c.id == delivery_id).values(attempt_seq=seq))
        kind = URGENT_ATTEMPT if urgent else ATTEMPT
        await schedule(session, self.timers, kind, f"{delivery_id}:{seq}", due, {"delivery_id": str(delivery_id)})

    @staticmethod
    async def _emit(uow, d, event_type: EventType, data) -> None:
        version = await uow.session.scalar(
            update(deliveries).where(deliveries.c.id == d.id)
            .values(event_version=deliveries.c.event_version + 1).returning(deliveries.c.event_version)
        )
        await uow.emit(event_type, data, aggregate_id=str(d.id), aggregate_version=version, region_code=d.region_code)
