"""What notifications does: plan deliveries for a request, attempt them (timers),
take in agencies' answers, keep contact cards. Each handler works in the unit
of work it is given; events leave through the outbox in the same transaction.

An urgent request read from a stream has its first attempt made in the transaction that plans it
(``Notifier.requests_received``): the webhook to the police goes out before that transaction's commit,
not after a hand-off to the urgent lane. A delivery's id is derived from its request, recipient and kind,
so a transaction that rolls back after the hand-over (a crash, a failed commit) plans the same delivery
again when the request is redelivered, and the channel is handed the same id (the webhook's
``X-Shouhu-Delivery``, the SMS ``ref``): the receiver can tell it is the same message, as with a retry."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager, nullcontext
from functools import partial
from types import SimpleNamespace
from datetime import datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from pydantic import ValidationError
from sqlalchemy import ARRAY, Text, and_, bindparam, cast, func, select, update
from sqlalchemy.dialects.postgresql import JSONB, insert

from services.notifications.adapters.channels import IN_TRANSACTION, ChannelAdapter, Outgoing, SendError
from services.notifications.adapters.directory import Directory
from services.notifications.adapters.orm import agency_rejections, consents, contacts, deliveries, requests, users
from services.notifications.domain.model import (
    OPEN, QuietHours, RetryPolicy, Status, after_failure, suppressed_by_consent,
)
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
from shared.contracts.registry_v1 import ConsentChanged, ContactCard
from shared.db import among, array_param, columns_of, insert_rows
from shared.logs import log_fields
from shared.outbox import DATA_FIELD
from shared.timers import BatchTimerHandler, Timer

log = logging.getLogger("shouhu.notifications")

ATTEMPT = "notifications.attempt"
# An urgent delivery's attempts: fired by the urgent lane (entrypoints/lanes.py) as soon as they are due.
URGENT_ATTEMPT = "notifications.attempt.urgent"


# Upsert of a run of cards; a card older than the one held (a redelivery racing a newer one) changes nothing.
# The cards travel as JSON text, made by pydantic in one call each and cast by PostgreSQL (a JSONB parameter
# would be a dict per card, then json.dumps of it).
_cards = func.unnest(
    array_param("child_id", contacts.c.child_id), bindparam("card", type_=ARRAY(Text)), array_param("version", contacts.c.version),
).table_valued("child_id", "card", "version").render_derived()
_upsert_cards = insert(contacts).from_select(
    ["child_id", "card", "version"], select(_cards.c.child_id, cast(_cards.c.card, JSONB), _cards.c.version),
)
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
    rows = [{"child_id": child, "card": e.data.model_dump_json(), "version": e.aggregate_version}
            for child, e in sorted(newest.items())]  # one order for all: no deadlocks between consumers
    await uow.session.execute(_upsert_cards, columns_of(rows))


# The guardian's consent per child; an older event (a redelivery racing a newer one) changes nothing.
_upsert_consent = insert(consents)
_upsert_consent = _upsert_consent.on_conflict_do_update(
    index_elements=["child_id"],
    set_={"consent": _upsert_consent.excluded.consent, "effective_on": _upsert_consent.excluded.effective_on,
          "version": _upsert_consent.excluded.version, "updated_at": func.now()},
    where=consents.c.version < _upsert_consent.excluded.version,
)


async def consent_changed(uow, event: EventEnvelope[ConsentChanged]) -> None:
    """知情同意 given or withdrawn (registry.consent.changed): kept per child, read at each attempt
    (what is suppressed while withdrawn: ``domain.model.suppressed_by_consent``)."""
    d = event.data
    await uow.session.execute(_upsert_consent.values(
        child_id=d.child_id, consent=d.consent.value, effective_on=d.effective_on, version=event.aggregate_version,
    ))


# A recipient no channel reaches (an agency not configured for the place): its delivery fails when planned.
NO_CHANNEL = "the recipient has no channel"


def delivery_id(request_id: UUID, recipient: str, kind: str) -> UUID:
    """The delivery of ``kind`` to ``recipient`` for a request (one per such triple: ``uq_deliveries_once``):
    the same id however often the request is planned, also by a transaction that rolled back."""
    return uuid5(request_id, f"{recipient}/{kind}")


def _planning(timers):
    """Planning a batch of requests in one statement: the requests, their deliveries (one per request,
    recipient and kind: a repeated request adds none) and the first attempt's timer of each new one that
    a channel reaches. Returns the new deliveries."""
    new_requests = insert_rows(
        requests, ("request_id", "kind", "urgency", "child_id", "region_code", "data", "requested_by")
    ).on_conflict_do_nothing().cte("new_requests")
    d = func.unnest(
        array_param("d_id", deliveries.c.id), array_param("d_request", deliveries.c.request_id),
        array_param("d_kind", deliveries.c.kind), array_param("d_recipient", deliveries.c.recipient),
        array_param("d_role", deliveries.c.recipient_role), array_param("d_agency", deliveries.c.agency_code),
        bindparam("d_channels", type_=ARRAY(Text)),  # comma-separated: unnest would flatten arrays
        array_param("d_channel", deliveries.c.channel), array_param("d_status", deliveries.c.status),
        array_param("d_seq", deliveries.c.attempt_seq), array_param("d_error", deliveries.c.last_error),
        array_param("d_version", deliveries.c.event_version),
    ).table_valued("id", "request_id", "kind", "recipient", "role", "agency", "channels", "channel", "status", "seq",
                   "error", "version").render_derived()
    planned = insert(deliveries).from_select(
        ["id", "request_id", "kind", "recipient", "recipient_role", "agency_code", "channels", "channel", "status",
         "attempt_seq", "last_error", "event_version"],
        select(d.c.id, d.c.request_id, d.c.kind, d.c.recipient, d.c.role, d.c.agency,
               func.string_to_array(d.c.channels, ","), d.c.channel, d.c.status, d.c.seq, d.c.error, d.c.version),
    ).on_conflict_do_nothing(constraint="uq_deliveries_once").returning(
        deliveries.c.id, deliveries.c.request_id, deliveries.c.kind, deliveries.c.recipient_role,
        deliveries.c.agency_code, deliveries.c.status,
    ).cte("planned")
    first = func.unnest(array_param("t_delivery", deliveries.c.id), array_param("t_kind", timers.c.kind)
                        ).table_valued("delivery_id", "kind").render_derived()
    armed = insert(timers).from_select(
        ["kind", "key", "due_at", "payload"],
        select(first.c.kind, cast(first.c.delivery_id, Text).concat(":1"), bindparam("now", type_=timers.c.due_at.type),
               func.jsonb_build_object("delivery_id", cast(first.c.delivery_id, Text)))
        .join(planned, planned.c.id == first.c.delivery_id),
    ).on_conflict_do_nothing().cte("armed")
    return select(planned).add_cte(new_requests, armed)


# The deliveries a batch of attempts names, locked, with what addressing and rendering them needs: the
# request, the child's contact card, the user's directory entry (read at each attempt: a corrected phone
# is used by the next retry).
_to_attempt = (
    select(deliveries, requests.c.urgency, requests.c.child_id, requests.c.region_code, requests.c.data, contacts.c.card,
           users.c.phone.label("user_phone"), users.c.email.label("user_email"), consents.c.consent)
    .join(requests, requests.c.request_id == deliveries.c.request_id)
    .outerjoin(contacts, contacts.c.child_id == requests.c.child_id)
    .outerjoin(consents, consents.c.child_id == requests.c.child_id)
    .outerjoin(users, and_(deliveries.c.recipient.startswith("user:"), users.c.user_id == func.substr(deliveries.c.recipient, 6)))
    .where(among(deliveries.c.id, "attempted"))
    .order_by(deliveries.c.id)  # one locking order for all
    .with_for_update(of=deliveries)
)
# What an attempt may change in its delivery: a batch's outcomes (handed over, failed, retried, held,
# suppressed) are recorded in one UPDATE, each delivery's row given whole.
_OUTCOME = ("status", "channel", "channel_index", "attempts", "attempt_seq", "event_version", "last_error",
            "held_until", "suppressed_reason", "subject", "text", "delivered_at")
_outcomes = func.unnest(
    array_param("o_id", deliveries.c.id), *(array_param(f"o_{c}", deliveries.c[c]) for c in _OUTCOME),
).table_valued("id", *_OUTCOME).render_derived()
_record_outcomes = update(deliveries).where(deliveries.c.id == _outcomes.c.id).values(
    {c: _outcomes.c[c] for c in _OUTCOME}
)


class _Outcomes:
    """The outcomes of a batch of attempts, kept until all are known, then recorded in two statements:
    the deliveries' rows, and the timers of the attempts that follow (retries, fallbacks, the morning)."""

    def __init__(self, timers_insert) -> None:
        self._timers_insert = timers_insert
        self.rows: dict[UUID, dict[str, Any]] = {}
        self.timers: list[dict[str, Any]] = []

    def change(self, d, *, next_at: datetime | None = None, urgent: bool = False, **values) -> None:
        """``d`` changed by ``values``; with ``next_at``, its next attempt is then (a timer of its own)."""
        if next_at is not None:
            values["attempt_seq"] = seq = d.attempt_seq + 1
            self.timers.append({"kind": URGENT_ATTEMPT if urgent else ATTEMPT, "key": f"{d.id}:{seq}", "due_at": next_at,
                                "payload": {"delivery_id": str(d.id)}})
        self.rows[d.id] = {f"o_{c}": values[c] if c in values else getattr(d, c) for c in _OUTCOME} | {"o_id": d.id}

    async def record(self, session) -> None:
        if self.rows:
            await session.execute(_record_outcomes, columns_of(list(self.rows.values())))
        if self.timers:
            await session.execute(self._timers_insert, columns_of(self.timers))


class AnswerRefused(ValueError):
    """An agency's answer that cannot be applied; the agency is told why."""

    def __init__(self, zh: str, en: str) -> None:
        super().__init__(en)
        self.zh, self.en = zh, en


class Notifier:
    def __init__(
        self, *, directory: Directory, templates: Templates, channels: dict[Channel, ChannelAdapter],
        retries: dict[Channel, RetryPolicy], quiet: QuietHours, timers, clock: Callable[[], datetime],
        concurrency: int = 16,
    ) -> None:
        self.directory, self.templates, self.channels, self.concurrency = directory, templates, channels, concurrency
        self.retries, self.quiet, self.timers, self.clock = retries, quiet, timers, clock
        self._new_timers = insert_rows(timers, ("kind", "key", "due_at", "payload")).on_conflict_do_nothing()
        self._plan = _planning(timers)
        # The first attempts made in the planning transaction: their timers marked fired in it too.
        self._fired_at_once = update(timers).where(
            timers.c.kind == URGENT_ATTEMPT, among(timers.c.key, "keys"), timers.c.fired_at.is_(None),
        ).values(fired_at=func.now())
        # Bounds of the hand-overs made at planning (urgent ones only), apart from both lanes'.
        self._at_once_limits = self._limits()
        # Called once a transaction that planned an urgent delivery has committed (the urgent lane sets it).
        self.urgent_planned: Callable[[], None] = lambda: None
        # The urgent lane's priority (entrypoints/lanes.py sets both): told as soon as requests being planned
        # hold an urgent one (before their commit); awaited by the normal lane before each hand-over.
        self.urgent_seen: Callable[[], None] = lambda: None
        self.yield_to_urgent: Callable[[], Awaitable[None]] = _go_on
        # Held while urgent deliveries are planned and attempted at once (the normal lane yields meanwhile).
        self.urgent_at_once: Callable[[], AbstractContextManager] = nullcontext

    # --- requests ---------------------------------------------------------------

    async def request(self, uow, req: MessageRequested, *, requested_by: str | None) -> list[UUID]:
        """Plan one delivery per (request, recipient, kind); returns the new ones (none on a repeat)."""
        return await self.plan(uow, [(req, requested_by)])

    async def requests_received(self, uow, events: list[EventEnvelope[MessageRequested]]) -> None:
        """Requests from a stream (notifications.requests, notifications.requests.urgent): planned, and the
        urgent ones' first attempts made, in the consumer's transaction. A run of ordinary ones waits while
        urgent work is under way (``yield_to_urgent``)."""
        if not any(e.data.urgency is Urgency.urgent for e in events):
            await self.yield_to_urgent()
        await self.plan(uow, [(e.data, e.producer) for e in events], attempt_urgent=True)

    async def contacts_changed(self, uow, events: list[EventEnvelope[ContactCard]]) -> None:
        """``contacts_changed``, once urgent work under way is done: 900 cards a second on the same event loop
        as an urgent report would otherwise run between each of its steps."""
        await self.yield_to_urgent()
        await contacts_changed(uow, events)

    async def plan(self, uow, asked: list[tuple[MessageRequested, str | None]], *,
                   attempt_urgent: bool = False) -> list[UUID]:
        """Plan the deliveries of many requests in one statement (two when users are named: their
        channels); returns the new deliveries (none for a repeated request). A delivery no channel
        reaches fails at once, reported as failed: no attempt could do better. The first attempt of an
        urgent delivery is the urgent lane's, woken by the commit; with ``attempt_urgent``, it is made here,
        in the caller's transaction (``_attempt_at_once``)."""
        reqs = [req for req, _ in asked]
        urgent = any(req.urgency is Urgency.urgent for req in reqs)
        if urgent and attempt_urgent:
            with self.urgent_at_once():  # from before the planning: it is on the urgent message's way too
                created = await self._plan_rows(uow, asked, reqs, lane=False)
                await self._attempt_at_once(uow, reqs, created)
        else:
            created = await self._plan_rows(uow, asked, reqs, lane=urgent)
        return [d.id for d in created]

    async def _plan_rows(self, uow, asked, reqs: list[MessageRequested], *, lane: bool) -> list[Any]:
        """The planning statement; ``lane``: tell the urgent lane (seen now, planned at commit)."""
        session, now = uow.session, self.clock()
        users = await self.directory.user_channels(session, reqs)
        planned = [(req, r, delivery_id(req.request_id, r.key, req.kind))
                   for req in reqs for r in self.directory.recipients(req, users)]
        if lane and any(req.urgency is Urgency.urgent and r.channels for req, r, _ in planned):
            self.urgent_seen()
        reached = [(req, d) for req, r, d in planned if r.channels]
        created = (await session.execute(self._plan, {
            **columns_of([{
                "request_id": req.request_id, "kind": req.kind, "urgency": req.urgency, "child_id": req.child_id,
                "region_code": req.region_code, "data": req.data, "requested_by": by,
            } for req, by in asked]),
            "d_id": [d for _, _, d in planned], "d_request": [req.request_id for req, _, _ in planned],
            "d_kind": [req.kind for req, _, _ in planned], "d_recipient": [r.key for _, r, _ in planned],
            "d_role": [r.role for _, r, _ in planned], "d_agency": [r.agency.code if r.agency else None for _, r, _ in planned],
            "d_channels": [",".join(r.channels) for _, r, _ in planned],
            "d_channel": [r.channels[0] if r.channels else None for _, r, _ in planned],
            "d_status": [Status.queued if r.channels else Status.failed for _, r, _ in planned],
            "d_seq": [1 if r.channels else 0 for _, r, _ in planned],
            "d_error": [None if r.channels else NO_CHANNEL for _, r, _ in planned],
            "d_version": [0 if r.channels else 1 for _, r, _ in planned],
            "t_delivery": [d for _, d in reached],
            "t_kind": [URGENT_ATTEMPT if req.urgency is Urgency.urgent else ATTEMPT for req, _ in reached],
            "now": now,
        })).all()
        by_id = {req.request_id: req for req in reqs}
        for d in created:
            if d.status == Status.failed:
                await self._emit(uow, d.id, by_id[d.request_id].region_code, DELIVERY_FAILED,
                                 self._failure(d, None, NO_CHANNEL, True, None), 1)
        if lane and any(d.status == Status.queued and by_id[d.request_id].urgency is Urgency.urgent for d in created):
            uow.after_commit(self.urgent_planned)
        return created

    async def _attempt_at_once(self, uow, reqs: list[MessageRequested], created: list[Any]) -> None:
        """The first attempts of the urgent deliveries just planned, in the planning transaction: handed
        over, recorded and their timers marked fired before it commits (a rollback undoes all of it, and
        the redelivered request plans and hands over the same deliveries again). An attempt that raised
        keeps its timer armed, and what an outcome armed for now (the next channel) is the urgent lane's,
        woken at commit."""
        urgent = {req.request_id for req in reqs if req.urgency is Urgency.urgent}
        now = self.clock()
        due = [Timer(SimpleNamespace(id=i, kind=URGENT_ATTEMPT, key=f"{d.id}:1", due_at=now,
                                     payload={"delivery_id": str(d.id)}))
               for i, d in enumerate(d for d in created if d.status == Status.queued and d.request_id in urgent)]
        if not due:
            return
        failed, out = await self._attempt(uow, due, self._at_once_limits, yielding=False)
        fired = [t.key for t in due if t.id not in failed]
        if fired:
            await uow.session.execute(self._fired_at_once, {"keys": fired})
        if failed or any(t["kind"] == URGENT_ATTEMPT and t["due_at"] <= now for t in out.timers):
            uow.after_commit(self.urgent_planned)

    # --- attempts (timers) --------------------------------------------------------

    def attempter(self, *, yielding: bool = False) -> BatchTimerHandler:
        """The handler of a lane of attempts, with bounds of its own per channel: urgent messages
        never queue for a channel behind normal ones. A ``yielding`` lane (the normal one) waits
        before each hand-over while the urgent lane has work (``yield_to_urgent``)."""
        return partial(self.attempts, limits=self._limits(), yielding=yielding)

    def _limits(self) -> dict[Channel, asyncio.Semaphore]:
        return {c: asyncio.Semaphore(1 if c in IN_TRANSACTION else self.concurrency) for c in Channel}

    async def attempts(self, uow, due: list[Timer], *, limits: dict[Channel, asyncio.Semaphore],
                       yielding: bool = False) -> dict[int, Exception]:
        """Attempt the deliveries of a batch of due attempt timers in the caller's transaction: the
        messages are handed to their channels concurrently (at most ``limits[channel]`` at once), then
        every outcome is recorded, all in two statements. Returns the timers whose handling raised, to
        be tried again."""
        failed, _ = await self._attempt(uow, due, limits, yielding)
        return failed

    async def _attempt(self, uow, due: list[Timer], limits: dict[Channel, asyncio.Semaphore],
                       yielding: bool) -> tuple[dict[int, Exception], _Outcomes]:
        now = self.clock()
        found = await self._attempted(uow.session, [UUID(t.payload["delivery_id"]) for t in due])
        failed: dict[int, Exception] = {}
        out = _Outcomes(self._new_timers)
        ready = []
        for t in due:
            d = found.get(UUID(t.payload["delivery_id"]))
            if d is None or d.status not in OPEN or t.key != f"{d.id}:{d.attempt_seq}":
                continue  # a stale timer: the delivery moved on
            try:
                message = await self._prepare(uow, out, d, now)
            except Exception as exc:
                failed[t.id] = exc
                continue
            if message is not None:
                ready.append((t, d, message))
        outcomes = await asyncio.gather(
            *(self._hand_over(uow, m, Channel(d.channel), limits, yielding) for _, d, m in ready), return_exceptions=True
        )
        for (t, d, message), outcome in zip(ready, outcomes, strict=True):
            if isinstance(outcome, SendError):
                await self._failed(uow, out, d, Channel(d.channel), outcome.reason, permanent=outcome.permanent, now=now)
            elif isinstance(outcome, BaseException):
                failed[t.id] = outcome
            else:
                out.change(d, status=Status.delivered, delivered_at=now, subject=message.subject, text=message.text,
                           last_error=None, held_until=None)
                log.info("delivered", extra=log_fields(delivery=str(d.id), channel=d.channel, kind=d.kind))
        await out.record(uow.session)
        return failed, out

    async def _prepare(self, uow, out: _Outcomes, d, now: datetime) -> Outgoing | None:
        """The message to hand over now; None when there is none (suppressed, held for the morning, or failed)."""
        reason = suppressed_by_consent(RecipientRole(d.recipient_role), Urgency(d.urgency), d.consent)
        if reason is not None:
            out.change(d, status=Status.suppressed, suppressed_reason=reason)
            log.info("suppressed", extra=log_fields(delivery=str(d.id), kind=d.kind, reason="consent_withdrawn"))
            return None
        if d.channel is None:  # planned by an earlier version, which left such deliveries to their attempt
            await self._give_up(uow, out, d, None, NO_CHANNEL, permanent=True)
            return None
        channel = Channel(d.channel)
        release = self.quiet.release_at(now, channel=channel, role=RecipientRole(d.recipient_role), urgency=Urgency(d.urgency))
        if release is not None:
            out.change(d, next_at=release, status=Status.held, held_until=release)  # urgent ones are never held
            return None
        address = self.directory.address(d.recipient, channel, d.card, d.user_phone, d.user_email)
        if not address:
            await self._failed(uow, out, d, channel, f"no {channel} address", permanent=True, now=now)
            return None
        rendered = self.templates.render(MessageKind(d.kind), channel, self._context(d))
        return Outgoing(d.id, address, rendered.subject, rendered.text, self._agency_message(d, rendered, now))

    async def _hand_over(self, uow, message: Outgoing, channel: Channel, limits: dict[Channel, asyncio.Semaphore],
                         yielding: bool) -> None:
        async with limits[channel]:
            if yielding:  # checked once a slot is had: the moment it would go
                await self.yield_to_urgent()
            await self.channels[channel].send(uow, message)

    async def _failed(self, uow, out: _Outcomes, d, channel: Channel, reason: str, *, permanent: bool,
                      now: datetime) -> None:
        attempts = d.attempts + 1
        step = after_failure(
            failed_attempts=attempts, permanent=permanent, policy=self.retries[channel],
            channel_index=d.channel_index, channels=list(d.channels),
        )
        log.warning("attempt failed", extra=log_fields(delivery=str(d.id), channel=channel.value, permanent=permanent,
                                                       reason=reason, retry=step.retry_after is not None))
        urgent = d.urgency == Urgency.urgent
        if step.retry_after is not None:
            out.change(d, next_at=now + step.retry_after, urgent=urgent, status=Status.queued, attempts=attempts,
                       last_error=reason)
            return
        if step.channel_index is None:
            await self._give_up(uow, out, d, channel, reason, permanent=permanent)
            return
        nxt = Channel(d.channels[step.channel_index])
        version = d.event_version + 1
        await self._emit(uow, d.id, d.region_code, DELIVERY_FAILED, self._failure(d, channel, reason, permanent, nxt), version)
        out.change(d, next_at=now, urgent=urgent, status=Status.queued, channel_index=step.channel_index, channel=nxt,
                   attempts=0, last_error=reason, event_version=version)

    async def _give_up(self, uow, out: _Outcomes, d, channel: Channel | None, reason: str, *, permanent: bool) -> None:
        version = d.event_version + 1
        await self._emit(uow, d.id, d.region_code, DELIVERY_FAILED, self._failure(d, channel, reason, permanent, None), version)
        out.change(d, status=Status.failed, channel=None, last_error=reason, event_version=version)

    @staticmethod
    def _failure(d, channel: Channel | None, reason: str, permanent: bool, nxt: Channel | None) -> DeliveryFailed:
        return DeliveryFailed(
            delivery_id=d.id, request_id=d.request_id, kind=d.kind, recipient_role=d.recipient_role,
            agency_code=d.agency_code, channel=channel, permanent=permanent, reason=reason, next_channel=nxt,
        )

    def _context(self, d) -> dict[str, Any]:
        agency = self.directory.agencies.by_code.get(d.agency_code or "")
        name = (d.card or {}).get("child_name")
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
        now, version = self.clock(), d.event_version
        if d.acknowledged_at is None:
            ack = DeliveryAcknowledged(
                delivery_id=d.id, request_id=d.request_id, kind=d.kind, agency_code=code,
                acknowledged_at=getattr(answer, "received_at", now), reference=answer.reference,
            )
            version += 1
            await self._emit(uow, d.id, d.region_code, DELIVERY_ACKNOWLEDGED, ack, version)
            await self._update(uow.session, d, status=Status.acknowledged, acknowledged_at=now, event_version=version)
        outcome = answer.model_dump(mode="json", include={"outcome", "decided_at", "reference", "note"})
        if isinstance(answer, MessageAnswered) and d.outcome != outcome:
            answered = AgencyAnswered(
                delivery_id=d.id, request_id=d.request_id, kind=d.kind, agency_code=code, outcome=answer.outcome,
                decided_at=answer.decided_at, note=answer.note,
            )
            version += 1
            await self._emit(uow, d.id, d.region_code, AGENCY_ANSWERED, answered, version)
            await self._update(uow.session, d, status=Status.answered, answered_at=now, outcome=outcome,
                               event_version=version)

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
    async def _attempted(session, ids: list[UUID]) -> dict[UUID, Any]:
        return {d.id: d for d in await session.execute(_to_attempt, {"attempted": ids})}

    @staticmethod
    async def _update(session, d, **values) -> None:
        await session.execute(update(deliveries).where(deliveries.c.id == d.id).values(**values))

    @staticmethod
    async def _emit(uow, delivery_id: UUID, region_code: str, event_type: EventType, data, version: int) -> None:
        """An event of the delivery, its ``version``-th (counted from its locked row: ``event_version``)."""
        await uow.emit(event_type, data, aggregate_id=str(delivery_id), aggregate_version=version, region_code=region_code)


async def _go_on() -> None:
    """No urgent lane to yield to."""
