"""Each channel delivers: SMS (the provider simulator), e-mail (a local SMTP
server), a signed webhook, the agency stream (through the outbox) and the inbox."""

import logging
from email import message_from_bytes
from email.header import decode_header, make_header

from sqlalchemy import text

from services.notifications.adapters.orm import users
from services.notifications.service_layer.handlers import ATTEMPT, URGENT_ATTEMPT
from shared.contracts.notifications_v1 import MESSAGE_REQUESTED
from tests.integration.notifications.helpers import (
    EDUCATION,
    GUARDIAN_PHONE,
    POLICE,
    add_child,
    delivery_rows,
    enqueue,
    message,
    outbox_events,
)


async def test_every_channel_hands_the_message_over(driven, sms, mailbox, webhook, engines, settings, caplog):
    caplog.set_level(logging.DEBUG)
    notifier, uow, poller = driven
    child = await add_child(uow, name="李小花")
    async with uow() as u:
        await u.session.execute(users.insert().values(user_id="teacher-9", email="teacher9@school.example", channels=["email"]))
        await u.commit()
    request = message(
        "dropout_report",
        [{"role": "guardian"}, {"role": "user", "user_id": "helper-7"}, {"role": "user", "user_id": "teacher-9"},
         {"role": "agency", "agency": "public_security"}, {"role": "agency", "agency": "education_bureau"}],
        child_id=child, school_days=12, case_id="QF-2026-001",
    )
    assert len(await enqueue(notifier, uow, request)) == 5

    assert await poller.fire_due() == 5
    rows = await delivery_rows(engines["notifications"], request.request_id)
    assert {r: d["status"] for r, d in rows.items()} == {
        f"guardian:{child}": "delivered", "user:helper-7": "delivered", "user:teacher-9": "delivered",
        f"agency:{POLICE}": "delivered", f"agency:{EDUCATION}": "delivered",
    }

    [sent] = sms.messages
    assert sent["to"] == GUARDIAN_PHONE and sent["ref"] == str(rows[f"guardian:{child}"]["id"])
    assert sent["text"].startswith("【守护】李小花") and "[Shouhu]" in sent["text"]  # Chinese first, then English

    [(to, raw)] = mailbox.messages
    mail = message_from_bytes(raw)
    assert to == ["teacher9@school.example"]
    assert str(make_header(decode_header(mail["Subject"]))).startswith("辍学学生劝返无效书面报告")

    [hook] = webhook.requests
    assert hook["verified"] and hook["delivery"] == str(rows[f"agency:{POLICE}"]["id"])
    assert hook["body"]["agency_code"] == POLICE and hook["body"]["data"]["case_id"] == "QF-2026-001"

    [to_agency] = await outbox_events(engines["notifications"], "notifications.agency.message", rows[f"agency:{EDUCATION}"]["id"])
    assert to_agency["stream"] == settings.stream(f"to-agency.{EDUCATION}")
    assert "12" in to_agency["data"]["text"] and to_agency["data"]["kind"] == "dropout_report"

    assert rows["user:helper-7"]["channel"] == "inbox" and "李小花" in rows["user:helper-7"]["text"]
    assert await poller.fire_due() == 0  # nothing is sent twice
    ours = "\n".join(r.getMessage() + str(vars(r)) for r in caplog.records if not r.name.startswith("mail.log"))  # not the test's SMTP server
    for personal in ("李小花", GUARDIAN_PHONE, "teacher9@school.example"):
        assert personal not in ours
    assert ours.count("'delivery'") == 5  # each delivery logged, by id


async def test_a_request_names_no_one_twice_and_repeating_it_plans_nothing(driven, engines):
    notifier, uow, poller = driven
    child = await add_child(uow)
    request = message("absence_notice", [{"role": "guardian"}, {"role": "guardian"}], child_id=child)
    assert len(await enqueue(notifier, uow, request)) == 1
    assert await enqueue(notifier, uow, request) == []
    async with engines["notifications"].connect() as conn:
        n = await conn.scalar(text("SELECT count(*) FROM deliveries WHERE request_id = :r"), {"r": request.request_id})
    assert n == 1


async def test_a_run_of_requests_is_planned_together_and_a_repeated_run_plans_nothing(driven, webhook, engines):
    notifier, uow, _ = driven
    child = await add_child(uow)
    async with uow() as u:
        await u.session.execute(users.insert().values(user_id="helper-9", phone="13600136009", channels=["sms", "inbox"]))
        await u.commit()
    normal = message("absence_notice", [{"role": "guardian"}, {"role": "parents"}], child_id=child)
    urgent = message("violence_report", [{"role": "agency", "agency": "public_security"}], urgency="urgent")
    helper = message("visit_reminder", [{"role": "user", "user_id": "helper-9"}, {"role": "user", "user_id": "nobody"}],
                     due_on="2026-12-01")
    woken = []
    notifier.urgent_planned = lambda: woken.append(True)

    def run():
        return [MESSAGE_REQUESTED.envelope(r, producer="visits", aggregate_id=str(r.request_id), aggregate_version=1,
                                           region_code=r.region_code) for r in (normal, urgent, helper)]

    async with uow() as u:
        await notifier.requests_received(u, run())
        await u.commit()
    # The urgent one's first attempt was made in that transaction: nothing was left for the urgent lane.
    assert woken == [] and [r["body"]["request_id"] for r in webhook.accepted()] == [str(urgent.request_id)]
    async with uow() as u:  # the sender retrying the whole run: new events, same requests
        await notifier.requests_received(u, run())
        await u.commit()
    assert woken == [] and len(webhook.requests) == 1
    async with engines["notifications"].connect() as conn:
        rows = (await conn.execute(text(
            "SELECT d.recipient, d.channels, t.kind FROM deliveries d JOIN timers t ON t.payload->>'delivery_id' = d.id::text "
            "WHERE d.request_id = ANY(:r) ORDER BY d.recipient"),
            {"r": [normal.request_id, urgent.request_id, helper.request_id]})).all()
    assert [(r.recipient.partition(":")[0], r.channels, r.kind) for r in rows] == [
        ("agency", ["webhook", "email"], URGENT_ATTEMPT),
        ("father", ["sms"], ATTEMPT),
        ("guardian", ["sms"], ATTEMPT),
        ("mother", ["sms"], ATTEMPT),
        ("user", ["sms", "inbox"], ATTEMPT),  # helper-9, from the directory
        ("user", ["inbox"], ATTEMPT),  # nobody: not in the directory, reached in the app
    ]
