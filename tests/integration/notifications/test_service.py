"""The running service: requests from the stream and over HTTP, the inbox API,
agencies' streams with a simulated agency, malformed answers, the AsyncAPI."""

import asyncio
import json
import uuid
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import pytest

from services.notifications.agency_sim import AgencySimulator
from services.notifications.app import build_spec
from shared.auth import Role, issue_token
from shared.contracts.agency_v1 import MessageAcknowledged, OutcomeCode
from shared.contracts.notifications_v1 import MESSAGE_REQUESTED
from shared.messaging import dlq_name
from shared.outbox import DATA_FIELD
from tests.conftest import scalar
from tests.integration.notifications.helpers import EDUCATION, POLICE, VILLAGE, add_child, delivery_rows, message
from tests.support import running_app, wait_until


@pytest.fixture
def fast(settings):
    """The service's own timer poller looks often: deliveries start promptly."""
    return settings.model_copy(update={"timer_poll_ms": 50})


def headers(settings, role=Role.county_office, subject="clerk-1", region="410523") -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(settings, role=role, subject=subject, region=region)}"}


async def test_a_redelivered_request_sends_nothing_new_even_after_a_restart(config, clock, fast, redis, webhook, engines):
    request = message("violence_report", [{"role": "agency", "agency": "public_security"}], urgency="urgent")
    stream = fast.stream("notifications.requests")

    async def publish(event) -> bytes:
        return await redis.xadd(stream, {DATA_FIELD: event.model_dump_json()})

    async def consumed(entry_id: bytes) -> bool:
        [group] = [g for g in await redis.xinfo_groups(stream) if g["name"] == b"notifications"]
        return group["last-delivered-id"] == entry_id and group["pending"] == 0

    def event():
        return MESSAGE_REQUESTED.envelope(request, producer="visits", aggregate_id=str(request.request_id),
                                          aggregate_version=1, region_code=VILLAGE)

    first, retried = event(), event()  # the sender retrying after a crash: same request, new event
    async with running_app(build_spec(config, clock), fast):
        await publish(first)
        await wait_until(lambda: _true(len(webhook.accepted()) == 1), what="the webhook delivered")
        again = await publish(first)  # the same event again (a relay that crashed after XADD)
        await wait_until(lambda: consumed(again), what="the repeat consumed")
    async with running_app(build_spec(config, clock), fast):  # a restart
        last = await publish(retried)
        await wait_until(lambda: consumed(last), what="the retried request consumed")
    handled = "SELECT count(*) FROM inbox WHERE consumer = 'notifications' AND event_id = :e"
    for e in (first, retried):
        assert await scalar(engines["notifications"], handled, e=e.event_id) == 1
    assert len(webhook.requests) == 1
    assert len(await delivery_rows(engines["notifications"], request.request_id)) == 1


async def test_an_urgent_message_goes_out_when_its_request_commits_without_waiting_for_the_poller(
    config, clock, settings, webhook, engines,
):
    slow = settings.model_copy(update={"timer_poll_ms": 600_000})  # the timer poller would not look again in this test
    normal = message("dropout_report", [{"role": "agency", "agency": "public_security"}])
    urgent = message("violence_report", [{"role": "agency", "agency": "public_security"}], urgency="urgent")
    async with running_app(build_spec(config, clock), slow) as (_, client):
        await _enqueue(client, slow, normal)
        await _enqueue(client, slow, urgent)
        await wait_until(lambda: _true(len(webhook.accepted()) == 1), what="the urgent webhook delivered")
    [sent] = webhook.accepted()
    assert sent["body"]["request_id"] == str(urgent.request_id) and sent["verified"]
    [waiting] = (await delivery_rows(engines["notifications"], normal.request_id)).values()
    assert waiting["status"] == "queued"  # the normal one waits for the poller's next round


async def test_enqueue_over_http_then_read_and_mark_read_in_the_inbox(config, clock, fast, engines):
    async with running_app(build_spec(config, clock), fast) as (app, client):
        child = await add_child(app.state.runtime.uow, name="王小明")
        body = {"kind": "visit_reminder", "region_code": VILLAGE, "child_id": str(child), "request_id": str(uuid.uuid4()),
                "recipients": [{"role": "user", "user_id": "helper-5"}], "data": {"due_on": "2026-12-01"}}
        r = await client.post("/api/v1/messages", json=body, headers=headers(fast))
        assert r.status_code == 202 and r.json()["new_deliveries"] == 1, r.text
        again = await client.post("/api/v1/messages", json=body, headers=headers(fast))
        assert again.json() == {"request_id": body["request_id"], "new_deliveries": 0}

        mine = headers(fast, role=Role.helper, subject="helper-5")

        async def arrived() -> bool:
            return len((await client.get("/api/v1/inbox", headers=mine)).json()) == 1

        await wait_until(arrived, what="the message in helper-5's inbox")
        [item] = (await client.get("/api/v1/inbox", headers=mine)).json()
        assert "王小明" in item["text"] and item["read_at"] is None
        other = headers(fast, role=Role.helper, subject="helper-6")
        assert (await client.get("/api/v1/inbox", headers=other)).json() == []
        assert (await client.post(f"/api/v1/inbox/{item['id']}/read", headers=other)).status_code == 404
        assert (await client.post(f"/api/v1/inbox/{item['id']}/read", headers=mine)).status_code == 204
        assert (await client.get("/api/v1/inbox", params={"unread": True}, headers=mine)).json() == []

        [receipt] = (await client.get(f"/api/v1/messages/{body['request_id']}", headers=headers(fast))).json()
        assert receipt["status"] == "read" and receipt["read_at"] is not None


async def test_http_refusals_are_bilingual_and_scoped(config, clock, fast):
    async with running_app(build_spec(config, clock), fast) as (_, client):
        bad = {"kind": "nonsense", "region_code": VILLAGE, "recipients": [{"role": "agency"}]}
        r = await client.post("/api/v1/messages", json=bad, headers=headers(fast))
        assert r.status_code == 422
        errors = {e["field"]: e for e in r.json()["errors"]}
        assert errors["kind"]["message_zh"].startswith("不是允许的取值")
        assert errors["recipients.0"]["message_zh"] == "收件人为部门时需填写 agency"
        assert errors["recipients.0"]["message_en"] == "role agency needs an agency kind"

        good = {"kind": "dropout_report", "region_code": VILLAGE, "recipients": [{"role": "agency", "agency": "education_bureau"}]}
        assert (await client.post("/api/v1/messages", json=good, headers=headers(fast, role=Role.helper))).status_code == 403
        assert (await client.post("/api/v1/messages", json=good, headers=headers(fast, region="110105"))).status_code == 403
        assert (await client.post("/api/v1/messages", json=good)).status_code == 401


async def test_an_agency_reads_its_stream_acknowledges_and_answers(config, clock, fast, redis, engines):
    sim = AgencySimulator(redis, EDUCATION, namespace=fast.stream_namespace, ack_after=0, answer_after=0,
                          outcome=OutcomeCode.returned_to_school)
    request = message("dropout_report", [{"role": "agency", "agency": "education_bureau"}], school_days=9)
    async with running_app(build_spec(config, clock), fast) as (_, client), running(sim):
        await _enqueue(client, fast, request)

        async def answered() -> bool:
            rows = await delivery_rows(engines["notifications"], request.request_id)
            return [d["status"] for d in rows.values()] == ["answered"]

        await wait_until(answered, what="the agency's acknowledgement and outcome applied")
    [received] = sim.received
    assert received.kind == "dropout_report" and "9" in received.text
    types = [e["type"] for e in await events_about(redis, fast, received.message_id)]
    assert types == ["notifications.delivery.acknowledged", "notifications.agency.answered"]
    [d] = (await delivery_rows(engines["notifications"], request.request_id)).values()
    assert d["acknowledged_at"] is not None and d["outcome"]["outcome"] == "returned_to_school"


async def test_a_malformed_answer_gets_an_error_reply_goes_to_the_dlq_and_the_consumer_keeps_running(config, clock, fast, redis, engines):
    async def send_bad(sim, msg, from_stream) -> None:
        await sim.send(msg, 1, "agency.message.acknowledged", {"message_id": "not-a-uuid", "received_at": "yesterday"})

    rejection, _ = await _refused_then_applied(config, clock, fast, redis, engines, send_bad)
    assert "message_id" in rejection["reason_en"] and "received_at" in rejection["reason_en"]
    assert rejection["reason_zh"].startswith("数据不符合") and rejection["rejected_event_id"] is not None


@pytest.mark.parametrize("entry", [
    {DATA_FIELD: b"\xff\xfe\x00 binary"},  # raw bytes, not even UTF-8
    {DATA_FIELD: "收到，谢谢 / received, thanks"},  # plain text
    {"note": "received"},  # no envelope field at all
], ids=["bytes", "text", "no-envelope"])
async def test_an_answer_that_is_not_json_gets_an_error_reply_goes_to_the_dlq_and_the_consumer_keeps_running(
    entry, config, clock, fast, redis, engines,
):
    async def send_bad(sim, msg, from_stream) -> str:
        return (await redis.xadd(from_stream, entry)).decode()

    rejection, parked = await _refused_then_applied(config, clock, fast, redis, engines, send_bad)
    entry_id = parked[b"source_id"].decode()
    assert rejection["rejected_event_id"] is None and "JSON" in rejection["reason_en"]
    assert entry_id in rejection["reason_en"] and entry_id in rejection["reason_zh"]


async def _refused_then_applied(config, clock, fast, redis, engines, send_bad) -> tuple[dict, dict]:
    """A message to the education bureau, a bad answer from it (``send_bad``), then a valid one: the bad
    one is told once and parked once, the valid one still applies. Returns the rejection and the DLQ entry."""
    sim = AgencySimulator(redis, EDUCATION, namespace=fast.stream_namespace, ack_after=3600, answer_after=None)
    request = message("dropout_report", [{"role": "agency", "agency": "education_bureau"}])
    from_stream = fast.stream(f"from-agency.{EDUCATION}")
    async with running_app(build_spec(config, clock), fast) as (_, client), running(sim):
        await _enqueue(client, fast, request)
        await wait_until(lambda: _true(len(sim.received) == 1), what="the message on the agency's stream")
        [msg] = sim.received
        await send_bad(sim, msg, from_stream)
        await wait_until(lambda: _true(len(sim.rejections) == 1), what="the error reply on to-agency")
        await wait_until(lambda: _dlq(redis, from_stream, 1), timeout=30, what="the bad answer in the DLQ")

        await sim.send(msg, 2, "agency.message.acknowledged", MessageAcknowledged(message_id=msg.message_id, received_at=datetime.now(UTC)))

        async def acknowledged() -> bool:
            [d] = (await delivery_rows(engines["notifications"], request.request_id)).values()
            return d["status"] == "acknowledged"

        await wait_until(acknowledged, what="the next, valid answer applied")
    [rejection] = sim.rejections  # told once
    [(_, parked)] = await redis.xrange(dlq_name(from_stream))  # parked once
    return rejection, parked


async def test_a_webhook_agency_acknowledges_and_answers_over_http(config, clock, fast, webhook, redis, engines):
    request = message("violence_report", [{"role": "agency", "agency": "public_security"}], urgency="urgent")
    police = {"Authorization": f"Bearer {issue_token(fast, role=Role.agency, subject='gaj', agency=POLICE)}"}
    education = {"Authorization": f"Bearer {issue_token(fast, role=Role.agency, subject='edu', agency=EDUCATION)}"}
    async with running_app(build_spec(config, clock), fast) as (_, client):
        await _enqueue(client, fast, request)
        await wait_until(lambda: _true(len(webhook.accepted()) == 1), what="the webhook delivered")
        message_id = webhook.accepted()[0]["body"]["message_id"]
        ack = {"message_id": message_id, "received_at": "2026-11-23T08:00:00+08:00", "reference": "GA-7"}
        outcome = {"message_id": message_id, "outcome": "in_progress", "decided_at": "2026-11-23T09:00:00+08:00"}

        assert (await client.post("/api/v1/agency/acknowledgements", json=ack, headers=education)).status_code == 404
        assert (await client.post("/api/v1/agency/acknowledgements", json=ack, headers=headers(fast))).status_code == 403
        bad = await client.post("/api/v1/agency/answers", json={**outcome, "outcome": "maybe"}, headers=police)
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "outcome"
        for _ in range(2):  # a repeat changes nothing
            assert (await client.post("/api/v1/agency/acknowledgements", json=ack, headers=police)).status_code == 204
            assert (await client.post("/api/v1/agency/answers", json=outcome, headers=police)).status_code == 204
        [receipt] = (await client.get(f"/api/v1/messages/{request.request_id}", headers=headers(fast))).json()
        assert receipt["status"] == "answered" and receipt["acknowledged_at"] is not None

        async def both_published() -> bool:
            return len(await events_about(redis, fast, message_id)) == 2

        await wait_until(both_published, what="the receipts published")
        acknowledged, answered = await events_about(redis, fast, message_id)
    assert (acknowledged["type"], acknowledged["data"]["reference"]) == ("notifications.delivery.acknowledged", "GA-7")
    assert (answered["type"], answered["data"]["outcome"]) == ("notifications.agency.answered", "in_progress")
    assert [acknowledged["aggregate_version"], answered["aggregate_version"]] == [1, 2]


async def test_asyncapi_documents_the_agency_streams(config, clock, fast):
    async with running_app(build_spec(config, clock), fast) as (_, client):
        own = (await client.get("/asyncapi")).json()
        agency = (await client.get("/asyncapi/agency")).json()
    channels = set(own["channels"])
    assert {fast.stream("to-agency.{agency_code}"), fast.stream("notifications.events"),
            fast.stream(f"from-agency.{EDUCATION}") + ":notifications"} <= channels
    assert set(agency["channels"]) == {"to-agency.{agency_code}", "from-agency.{agency_code}"}
    schemas = agency["components"]["schemas"]
    assert {"AgencyMessage", "AnswerRejected", "MessageAcknowledged", "MessageAnswered"} <= set(schemas)
    assert set(schemas["MessageAcknowledged"]["required"]) == {"message_id", "received_at"}


@asynccontextmanager
async def running(sim: AgencySimulator):
    stop = asyncio.Event()
    task = asyncio.create_task(sim.run(stop))
    try:
        yield sim
    finally:
        stop.set()
        await task


async def _enqueue(client, settings, request) -> None:
    r = await client.post("/api/v1/messages", json=json.loads(request.model_dump_json()), headers=headers(settings))
    assert r.status_code == 202, r.text


async def _true(value: bool) -> bool:
    return value


async def events_about(redis, settings, delivery_id) -> list[dict]:
    """What notifications published on notifications.events about one delivery."""
    events = [json.loads(f[DATA_FIELD.encode()]) for _, f in await redis.xrange(settings.stream("notifications.events"))]
    return [e for e in events if e["aggregate_id"] == str(delivery_id)]


async def _dlq(redis, stream: str, n: int) -> bool:
    return await redis.xlen(dlq_name(stream)) == n
