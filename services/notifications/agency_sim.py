"""A simulated agency (模拟部门): reads its ``to-agency.<code>`` stream and, after
configurable delays, acknowledges each message and answers with an outcome on
``from-agency.<code>``, as an outside system would (shared/contracts/agency_v1.py).

    shouhu agency-sim edu-410523 --ack-after 1 --answer-after 5 --outcome returned_to_school
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Annotated

import typer
from pydantic import BaseModel, ValidationError
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from shared.contracts.agency_v1 import (
    AGENCY_MESSAGE,
    ANSWER_REJECTED,
    AgencyMessage,
    MessageAcknowledged,
    MessageAnswered,
    OutcomeCode,
    from_agency,
    to_agency,
)
from shared.contracts.envelope import EventEnvelope, parse_event
from shared.logs import log_fields
from shared.outbox import DATA_FIELD

log = logging.getLogger("shouhu.agency-sim")
GROUP = "agency-sim"


class AgencySimulator:
    def __init__(
        self, redis: Redis, code: str, *, namespace: str = "", ack_after: float = 1.0, answer_after: float | None = 5.0,
        outcome: OutcomeCode = OutcomeCode.accepted,
    ) -> None:
        self.redis, self.code = redis, code
        self.inbound, self.outbound = namespace + to_agency(code), namespace + from_agency(code)
        self.ack_after, self.answer_after, self.outcome = ack_after, answer_after, outcome
        self.received: list[AgencyMessage] = []
        self.rejections: list[dict] = []
        self._tasks: set[asyncio.Task] = set()

    async def run(self, stop: asyncio.Event) -> None:
        try:
            await self.redis.xgroup_create(self.inbound, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        while not stop.is_set():
            # Own pending entries first (after a restart), then new ones.
            for start in ("0", ">"):
                batches = await self.redis.xreadgroup(GROUP, "sim", {self.inbound: start}, count=50, block=200)
                for _, entries in batches or []:
                    for entry_id, fields in entries:
                        self._on_entry(fields)
                        await self.redis.xack(self.inbound, GROUP, entry_id)
        for task in self._tasks:  # a simulation stops at once; unanswered messages stay unanswered
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _on_entry(self, fields: dict[bytes, bytes]) -> None:
        try:
            event = parse_event(fields[DATA_FIELD.encode()])
        except (KeyError, ValueError, ValidationError):
            log.warning("unreadable entry skipped", extra=log_fields(stream=self.inbound))
            return
        if event.type == ANSWER_REJECTED.name:
            self.rejections.append(event.data.model_dump(mode="json"))
            log.warning("our answer was rejected", extra=log_fields(reason=event.data.reason_en))
        elif event.type == AGENCY_MESSAGE.name:
            self.received.append(event.data)
            task = asyncio.create_task(self._answer(event.data))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _answer(self, message: AgencyMessage) -> None:
        await asyncio.sleep(self.ack_after)  # a clerk opening the message
        now = datetime.now(UTC)
        await self.send(message, 1, "agency.message.acknowledged",
                        MessageAcknowledged(message_id=message.message_id, received_at=now, reference=f"SIM-{message.message_id.hex[:8]}"))
        if self.answer_after is None:
            return
        await asyncio.sleep(self.answer_after)  # the case being handled
        await self.send(message, 2, "agency.message.answered",
                        MessageAnswered(message_id=message.message_id, outcome=self.outcome, decided_at=datetime.now(UTC)))
        log.info("answered", extra=log_fields(message=str(message.message_id), outcome=self.outcome.value))

    async def send(self, message: AgencyMessage, version: int, type_: str, data: BaseModel | dict) -> None:
        envelope = EventEnvelope[type(data)](
            type=type_, producer=self.code, aggregate_id=str(message.message_id), aggregate_version=version,
            region_code=message.region_code, data=data,
        )
        await self.redis.xadd(self.outbound, {DATA_FIELD: envelope.model_dump_json()})


def command(
    code: Annotated[str, typer.Argument(help="agency code, e.g. edu-410523")],
    ack_after: Annotated[float, typer.Option(help="seconds before acknowledging (收到)")] = 1.0,
    answer_after: Annotated[float, typer.Option(help="seconds after that before the outcome; negative: never")] = 5.0,
    outcome: Annotated[OutcomeCode, typer.Option(help="the outcome reported")] = OutcomeCode.accepted,
) -> None:
    """Run a simulated agency: acknowledge and answer what arrives on to-agency.CODE."""
    from shared.logs import configure_logging
    from shared.settings import get_settings

    settings = get_settings()
    configure_logging("console", settings.log_level)

    async def main() -> None:
        stop = asyncio.Event()
        async with Redis.from_url(settings.redis_url) as redis:
            sim = AgencySimulator(redis, code, namespace=settings.stream_namespace, ack_after=ack_after,
                                  answer_after=answer_after if answer_after >= 0 else None, outcome=outcome)
            typer.echo(f"agency {code}: reading {sim.inbound}, answering on {sim.outbound} (Ctrl-C stops)")
            await sim.run(stop)

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
