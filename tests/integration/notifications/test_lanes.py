"""Attempts in lanes: a batch's messages go to their channel concurrently, within the lane's bound,
and an urgent message never waits behind normal ones held up in a slow channel."""

import asyncio

from services.notifications.adapters.orm import timers
from services.notifications.app import build_notifier
from services.notifications.service_layer.handlers import ATTEMPT, URGENT_ATTEMPT
from shared.contracts.notifications_v1 import Channel
from shared.timers import BatchTimerPoller
from tests.integration.notifications.helpers import add_child, delivery_rows, enqueue, message
from tests.support import wait_until


class SlowSms:
    """An SMS provider that answers only when let go, counting the messages in flight."""

    def __init__(self) -> None:
        self.in_flight = self.most = self.sent = 0
        self.go = asyncio.Event()

    async def send(self, uow, message) -> None:
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        try:
            await self.go.wait()
        finally:
            self.in_flight -= 1
        self.sent += 1


async def test_a_batch_is_handed_over_concurrently_within_the_bound_and_urgent_ones_pass_a_stuck_lane(
    config, clock, driven, webhook, engines,
):
    _, uow, _ = driven
    notifier = build_notifier(config.model_copy(update={"send_concurrency": 3}), clock)
    sms = notifier.channels[Channel.sms] = SlowSms()
    normal = BatchTimerPoller(timers, uow, [ATTEMPT], notifier.attempter(), now=clock)
    urgent = BatchTimerPoller(timers, uow, [URGENT_ATTEMPT], notifier.attempter(), now=clock)
    child = await add_child(uow)
    notices = [message("absence_notice", [{"role": "guardian"}], child_id=child) for _ in range(8)]
    for notice in notices:
        await enqueue(notifier, uow, notice)
    report = message("violence_report", [{"role": "agency", "agency": "public_security"}], urgency="urgent")
    await enqueue(notifier, uow, report)

    stuck = asyncio.create_task(normal.fire_due())

    async def bound_reached() -> bool:
        return sms.most >= 3

    await wait_until(bound_reached, timeout=10, what="three SMS in flight at once")
    assert await asyncio.wait_for(urgent.fire_due(), timeout=10) == 1  # while the normal lane waits on SMS
    assert len(webhook.accepted()) == 1
    await asyncio.sleep(0.1)
    assert (sms.most, sms.sent) == (3, 0)  # never more than the bound at once
    sms.go.set()
    assert await stuck == 8
    for notice in notices:
        [d] = (await delivery_rows(engines["notifications"], notice.request_id)).values()
        assert d["status"] == "delivered"
