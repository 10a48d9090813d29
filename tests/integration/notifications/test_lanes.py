"""Attempts in lanes: a batch's messages go to their channel concurrently, within the lane's bound,
and an urgent message never waits behind normal ones held up in a slow channel."""

import asyncio

from services.notifications.adapters.orm import timers
from services.notifications.app import build_notifier
from services.notifications.entrypoints.lanes import UrgentFirst, WarmStart
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


async def test_the_normal_lane_hands_nothing_over_from_an_urgent_request_seen_until_the_urgent_lane_has_fired_it(
    config, clock, driven, webhook, engines,
):
    """The lanes share one event loop, database and cores: an urgent request seen (before its commit)
    holds the normal lane's hand-overs until the urgent lane, having fired what was due, releases them."""
    _, uow, _ = driven
    notifier = build_notifier(config, clock)
    first = UrgentFirst(most_s=60)  # no time-out within the test: only the release lets them go
    notifier.urgent_seen, notifier.yield_to_urgent = first.hold, first.wait
    sms = notifier.channels[Channel.sms] = SlowSms()
    sms.go.set()  # an SMS provider that answers at once: only the priority holds them
    normal = BatchTimerPoller(timers, uow, [ATTEMPT], notifier.attempter(yielding=True), now=clock)
    urgent = BatchTimerPoller(timers, uow, [URGENT_ATTEMPT], notifier.attempter(), now=clock)
    child = await add_child(uow)
    notices = [message("absence_notice", [{"role": "guardian"}], child_id=child) for _ in range(3)]
    for notice in notices:
        await enqueue(notifier, uow, notice)
    seen = first.seen
    await enqueue(notifier, uow, message("violence_report", [{"role": "agency", "agency": "public_security"}],
                                         urgency="urgent"))
    assert first.seen == seen + 1

    held = asyncio.create_task(normal.fire_due())
    await asyncio.sleep(0.3)
    assert not held.done() and sms.sent == 0  # claimed, rendered, and waiting for the urgent lane

    looked = first.seen
    assert await asyncio.wait_for(urgent.fire_due(), timeout=10) == 1
    assert len(webhook.accepted()) == 1
    first.release(looked - 1)  # a release for fewer than were seen lets nothing go
    await asyncio.sleep(0.1)
    assert sms.sent == 0
    first.release(looked)
    assert await asyncio.wait_for(held, timeout=10) == 3
    assert sms.sent == 3


async def test_the_urgent_lane_begun_before_its_request_commits_still_claims_the_attempt(config, clock, driven, webhook):
    """The urgent lane begins its transaction while the request is planned (``WarmStart``): its claim, a
    statement of its own, sees the attempt committed after that BEGIN, and the begun unit of work is used once."""
    _, uow, _ = driven
    notifier = build_notifier(config, clock)
    warm = WarmStart(uow)
    urgent = BatchTimerPoller(timers, warm, [URGENT_ATTEMPT], notifier.attempter(), now=clock)
    await warm.begin()
    report = message("violence_report", [{"role": "agency", "agency": "public_security"}], urgency="urgent")
    await enqueue(notifier, uow, report)

    assert await urgent.fire_due() == 1
    assert [r["body"]["request_id"] for r in webhook.accepted()] == [str(report.request_id)]
    async with warm() as fresh:
        assert not fresh.session.in_transaction()  # the begun one went to the poller; this one is new
