"""Retries with back-off, permanent failures, falling back to the next channel,
quiet hours. The clock is the test's: attempts are timers (rows), fired by a
poller on that clock, so hours pass without waiting."""

from datetime import timedelta

from services.notifications.app import build_notifier
from services.notifications.adapters.orm import users
from tests.infra import free_port
from tests.integration.notifications.conftest import attempts, local_time
from tests.integration.notifications.helpers import POLICE, add_child, delivery_rows, enqueue, message, outbox_events


async def test_a_flaky_webhook_is_delivered_exactly_once(driven, webhook, clock, engines):
    notifier, uow, poller = driven
    webhook.script = [503, 503]  # fails twice, then succeeds
    request = message("violence_report", [{"role": "agency", "agency": "public_security"}], urgency="urgent")
    await enqueue(notifier, uow, request)

    assert await poller.fire_due() == 1
    assert await poller.fire_due() == 0  # the retry waits for its back-off
    clock.advance(seconds=30)
    assert await poller.fire_due() == 1
    clock.advance(seconds=59)
    assert await poller.fire_due() == 0  # the second back-off is twice the first
    clock.advance(seconds=1)
    assert await poller.fire_due() == 1
    clock.advance(days=2)
    assert await poller.fire_due() == 0

    [delivery] = (await delivery_rows(engines["notifications"], request.request_id)).values()
    assert [r["status"] for r in webhook.requests] == [503, 503, 200]
    assert len(webhook.accepted()) == 1
    assert {r["delivery"] for r in webhook.requests} == {str(delivery["id"])}  # one id: the receiver can de-duplicate
    assert all(r["verified"] for r in webhook.requests)
    assert delivery["status"] == "delivered" and delivery["channel"] == "webhook"
    assert await outbox_events(engines["notifications"], "notifications.delivery.failed", delivery["id"]) == []


async def test_a_refusing_webhook_is_not_retried_the_next_channel_takes_over_and_the_sender_hears(driven, webhook, mailbox, engines):
    notifier, uow, poller = driven
    webhook.script = [400]
    request = message("violence_report", [{"role": "agency", "agency": "public_security"}], urgency="urgent")
    await enqueue(notifier, uow, request)

    assert await poller.fire_due() == 2  # webhook refused; e-mail, the next channel, at once
    [delivery] = (await delivery_rows(engines["notifications"], request.request_id)).values()
    assert len(webhook.requests) == 1
    assert delivery["status"] == "delivered" and delivery["channel"] == "email"
    assert [to for to, _ in mailbox.messages] == [["gaj@police.example"]]
    [failed] = await outbox_events(engines["notifications"], "notifications.delivery.failed", delivery["id"])
    assert failed["data"] | {"reason": None} == {
        "delivery_id": str(delivery["id"]), "request_id": str(request.request_id), "kind": "violence_report",
        "recipient_role": "agency", "agency_code": POLICE, "channel": "webhook", "permanent": True,
        "next_channel": "email", "reason": None,
    }
    assert "400" in failed["data"]["reason"]


async def test_permanent_failures_with_no_fallback_are_reported_at_once(driven, sms, engines):
    """A bad number, a mailbox that refuses, an agency not configured for the county (that one when
    planned: no channel reaches it, so it has no attempt)."""
    notifier, uow, poller = driven
    child = await add_child(uow, guardian_phone="12345")
    recipients = [{"role": "guardian"}, {"role": "agency", "agency": "civil_affairs"}, {"role": "agency", "agency": "health"}]
    request = message("absence_notice", recipients, child_id=child)
    await enqueue(notifier, uow, request)
    planned = await delivery_rows(engines["notifications"], request.request_id)
    assert [d["status"] for r, d in planned.items() if r.startswith("agency:health")] == ["failed"]

    assert await poller.fire_due() == 2
    rows = await delivery_rows(engines["notifications"], request.request_id)
    assert sms.refused == 1 and sms.messages == []
    reasons = {}
    for recipient, d in rows.items():
        assert d["status"] == "failed" and d["attempts"] == 0
        [failed] = await outbox_events(engines["notifications"], "notifications.delivery.failed", d["id"])
        assert failed["data"]["permanent"] and failed["data"]["next_channel"] is None
        reasons[recipient.partition(":")[0] + ":" + str(failed["data"]["channel"])] = failed["data"]["reason"]
    assert reasons == {
        "guardian:sms": "SMS provider answered 400 invalid_number",
        "agency:email": "SMTP refused the recipient (550)",
        "agency:None": "the recipient has no channel",
    }


async def test_exhausted_retries_fall_back_to_the_next_channel(config, clock, driven, engines):
    _, uow, _ = driven
    down = config.model_copy(update={"sms_url": f"http://127.0.0.1:{free_port()}"})  # nothing listens there
    notifier = build_notifier(down, clock)
    poller = attempts(notifier, uow, clock)
    async with uow() as u:
        await u.session.execute(users.insert().values(user_id="helper-3", phone="13600136000", channels=["sms", "inbox"]))
        await u.commit()
    request = message("visit_reminder", [{"role": "user", "user_id": "helper-3"}], due_on="2026-12-01")
    await enqueue(notifier, uow, request)

    policy = down.retries["sms"]
    for attempt in range(1, policy.max_attempts):
        assert await poller.fire_due() == 1
        [d] = (await delivery_rows(engines["notifications"], request.request_id)).values()
        assert (d["channel"], d["attempts"], d["status"]) == ("sms", attempt, "queued")
        clock.advance(seconds=policy.delay(attempt).total_seconds())
    assert await poller.fire_due() == 2  # the last SMS attempt, then the inbox
    [d] = (await delivery_rows(engines["notifications"], request.request_id)).values()
    assert (d["channel"], d["status"]) == ("inbox", "delivered")
    [failed] = await outbox_events(engines["notifications"], "notifications.delivery.failed", d["id"])
    assert (failed["data"]["channel"], failed["data"]["permanent"], failed["data"]["next_channel"]) == ("sms", False, "inbox")


async def test_quiet_hours_hold_an_sms_until_morning_but_not_an_urgent_one(driven, sms, clock, engines):
    notifier, uow, poller = driven
    clock.now = local_time(23, 30)
    child = await add_child(uow)
    normal = message("absence_notice", [{"role": "guardian"}], child_id=child)
    urgent = message("medical_referral", [{"role": "guardian"}], child_id=child, urgency="urgent")
    await enqueue(notifier, uow, normal)
    await enqueue(notifier, uow, urgent)

    assert await poller.fire_due() == 2
    assert [m["text"][:8] for m in sms.messages] == ["【守护】李小花需"]  # only the urgent one, at 23:30
    [held] = (await delivery_rows(engines["notifications"], normal.request_id)).values()
    morning = local_time(7) + timedelta(days=1)
    assert held["status"] == "held" and held["held_until"] == morning

    clock.now = morning - timedelta(minutes=1)
    assert await poller.fire_due() == 0
    assert len(sms.messages) == 1
    clock.now = morning
    assert await poller.fire_due() == 1
    assert len(sms.messages) == 2 and "缺课" not in sms.messages[1]["text"] and "未到校" in sms.messages[1]["text"]
    [sent] = (await delivery_rows(engines["notifications"], normal.request_id)).values()
    assert sent["status"] == "delivered" and sent["delivered_at"] == morning
