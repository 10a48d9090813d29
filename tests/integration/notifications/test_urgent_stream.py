"""Urgent requests on their own stream (notifications.requests.urgent), their first attempt made in the
transaction that plans them: delivered once, handed over with the same delivery id if that transaction
rolls back, and a refused webhook's fallback left to the urgent lane."""

import asyncio
import uuid

from sqlalchemy import text

from services.notifications.app import build_spec
from services.notifications.entrypoints.lanes import UrgentFirst
from services.notifications.service_layer.handlers import URGENT_ATTEMPT
from shared.contracts.notifications_v1 import NOTIFICATION_URGENT_REQUESTS, Channel, URGENT_MESSAGE_REQUESTED, message_requested
from shared.outbox import DATA_FIELD
from tests.conftest import scalar
from shared.contracts.registry_v1 import CHILD_CONTACTS, ContactCard, Person
from tests.integration.notifications.helpers import VILLAGE, add_child, delivery_rows, message
from tests.support import running_app, wait_until

VIOLENCE = [{"role": "agency", "agency": "public_security"}]


def requested(request):
    return message_requested(request).envelope(request, producer="visits", aggregate_id=str(request.request_id),
                                               aggregate_version=1, region_code=VILLAGE)


async def timer_of(engine, delivery_id) -> tuple[str, bool]:
    async with engine.connect() as conn:
        row = (await conn.execute(text("SELECT kind, fired_at IS NOT NULL AS fired FROM timers WHERE key = :k"),
                                  {"k": f"{delivery_id}:1"})).one()
    return row.kind, row.fired


async def test_an_urgent_request_on_its_stream_reaches_the_webhook_once_without_the_urgent_lane(
    config, clock, settings, redis, webhook, engines,
):
    slow = settings.model_copy(update={"timer_poll_ms": 600_000})  # no lane's poll within the test
    request = message("violence_report", VIOLENCE, urgency="urgent", case_id="C-1")
    event = requested(request)
    stream = slow.stream(NOTIFICATION_URGENT_REQUESTS)
    assert message_requested(request) is URGENT_MESSAGE_REQUESTED
    async with running_app(build_spec(config, clock), slow):
        await redis.xadd(stream, {DATA_FIELD: event.model_dump_json()})
        await wait_until(lambda: _true(len(webhook.accepted()) == 1), what="the urgent webhook delivered")
        again = await redis.xadd(stream, {DATA_FIELD: event.model_dump_json()})  # a relay that crashed after XADD

        async def consumed() -> bool:
            [group] = [g for g in await redis.xinfo_groups(stream) if g["name"] == b"notifications"]
            return group["last-delivered-id"] == again and group["pending"] == 0

        await wait_until(consumed, what="the repeat consumed")
    [sent] = webhook.requests
    assert sent["verified"] and sent["body"]["request_id"] == str(request.request_id)
    [d] = (await delivery_rows(engines["notifications"], request.request_id)).values()
    assert d["status"] == "delivered" and sent["delivery"] == str(d["id"])
    assert await timer_of(engines["notifications"], d["id"]) == (URGENT_ATTEMPT, True)  # fired in that transaction
    handled = "SELECT count(*) FROM inbox WHERE consumer = 'notifications' AND event_id = :e"
    assert await scalar(engines["notifications"], handled, e=event.event_id) == 1


async def test_a_planning_transaction_rolled_back_after_the_webhook_hands_over_the_same_delivery_again(
    driven, webhook, engines,
):
    """The webhook went out, then the transaction did not commit (a crash, a failed commit): the redelivered
    request plans the same delivery, so the receiver is handed the same delivery id and can de-duplicate."""
    notifier, uow, poller = driven
    request = message("violence_report", VIOLENCE, urgency="urgent")
    async with uow() as u:
        await notifier.requests_received(u, [requested(request)])
        # no commit: rolled back
    assert len(webhook.requests) == 1
    assert await delivery_rows(engines["notifications"], request.request_id) == {}
    async with uow() as u:
        await notifier.requests_received(u, [requested(request)])
        await u.commit()
    [d] = (await delivery_rows(engines["notifications"], request.request_id)).values()
    assert [r["delivery"] for r in webhook.requests] == [str(d["id"])] * 2
    assert [r["body"]["message_id"] for r in webhook.requests] == [str(d["id"])] * 2
    assert d["status"] == "delivered" and d["attempts"] == 0
    assert await poller.fire_due() == 0  # nothing left armed: delivered once, as far as the agency can tell


async def test_a_webhook_refused_at_once_falls_back_to_email_through_the_urgent_lane(driven, webhook, mailbox, engines):
    notifier, uow, poller = driven
    woken = []
    notifier.urgent_planned = lambda: woken.append(True)
    webhook.script = [400]
    request = message("violence_report", VIOLENCE, urgency="urgent")
    async with uow() as u:
        await notifier.requests_received(u, [requested(request)])
        assert woken == []  # not before the commit
        await u.commit()
    assert woken == [True]  # the next channel, due now, is the urgent lane's
    [d] = (await delivery_rows(engines["notifications"], request.request_id)).values()
    assert (d["status"], d["channel"]) == ("queued", "email")
    assert await poller.fire_due() == 1
    [d] = (await delivery_rows(engines["notifications"], request.request_id)).values()
    assert (d["status"], d["channel"]) == ("delivered", "email")
    assert [to for to, _ in mailbox.messages] == [["gaj@police.example"]] and len(webhook.requests) == 1


async def test_an_attempt_that_raises_at_once_keeps_its_timer_for_the_urgent_lane(driven, webhook, engines):
    notifier, uow, poller = driven
    woken = []
    notifier.urgent_planned = lambda: woken.append(True)
    webhook_channel = notifier.channels[Channel.webhook]

    class Broken:
        async def send(self, uow, message) -> None:
            raise RuntimeError("a bug, not a refusal")

    notifier.channels[Channel.webhook] = Broken()
    request = message("violence_report", VIOLENCE, urgency="urgent")
    async with uow() as u:
        await notifier.requests_received(u, [requested(request)])
        await u.commit()
    assert woken == [True]
    [d] = (await delivery_rows(engines["notifications"], request.request_id)).values()
    assert d["status"] == "queued" and await timer_of(engines["notifications"], d["id"]) == (URGENT_ATTEMPT, False)
    notifier.channels[Channel.webhook] = webhook_channel
    assert await poller.fire_due() == 1
    [d] = (await delivery_rows(engines["notifications"], request.request_id)).values()
    assert d["status"] == "delivered" and len(webhook.accepted()) == 1


async def test_contact_cards_and_ordinary_requests_wait_while_urgent_work_is_under_way(driven, sms, engines):
    """They share the event loop with the urgent report: applied once it is done, not between its steps."""
    notifier, uow, _ = driven
    first = UrgentFirst(most_s=60)  # no time-out within the test
    notifier.yield_to_urgent = first.wait
    child = await add_child(uow)
    new_child = uuid.uuid4()
    card = CHILD_CONTACTS.envelope(ContactCard(child_id=new_child, child_name="王小红", guardian=Person(name="爷爷")),
                                   producer="registry", aggregate_id=str(new_child), aggregate_version=1,
                                   region_code=VILLAGE)
    notice = message("absence_notice", [{"role": "guardian"}], child_id=child)

    async def apply(handler, events) -> None:
        async with uow() as u:
            await handler(u, events)
            await u.commit()

    async def stored() -> tuple[int, int]:
        return (await scalar(engines["notifications"], "SELECT count(*) FROM contacts WHERE child_id = :c", c=new_child),
                len(await delivery_rows(engines["notifications"], notice.request_id)))

    with first.at_once():
        waiting = [asyncio.create_task(apply(notifier.contacts_changed, [card])),
                   asyncio.create_task(apply(notifier.requests_received, [requested(notice)]))]
        await asyncio.sleep(0.3)
        assert not any(t.done() for t in waiting) and await stored() == (0, 0)
    await asyncio.wait_for(asyncio.gather(*waiting), timeout=10)
    assert await stored() == (1, 1)


async def test_asyncapi_documents_the_urgent_stream(config, clock, settings):
    async with running_app(build_spec(config, clock), settings) as (_, client):
        channels = (await client.get("/asyncapi")).json()["channels"]
    urgent = channels[settings.stream(NOTIFICATION_URGENT_REQUESTS) + ":notifications"]
    assert "urgent" in urgent["description"] and "message_requested" in urgent["description"]
    assert settings.stream("notifications.requests") + ":notifications" in channels  # the old one still read


async def _true(value: bool) -> bool:
    return value
