"""A referral to a county whose agencies notifications does not know (未配置): the message fails at planning
(notifications.delivery.failed, no channel left) and visits shows it on the case, its timeline, the list
of cases held up and visits.referral.message_undeliverable; once per delivery however often it arrives.
visits and notifications run in process on real PostgreSQL and Redis."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta

from services.notifications.app import SPEC as NOTIFICATIONS
from services.visits.adapters.orm import timers
from services.visits.service_layer import referrals
from shared.auth import Role
from shared.clock import today_local
from shared.contracts.notifications_v1 import DELIVERY_FAILED, NOTIFICATION_EVENTS, DeliveryFailed
from shared.contracts.registry_v1 import CHILD_REGISTERED, ENROLMENT_CHANGED, ChildRegistered, EnrolmentChanged
from shared.outbox import DATA_FIELD
from shared.timers import TimerPoller
from tests.conftest import scalar
from tests.integration.visits.conftest import village
from tests.support import fresh_county, running_app, wait_until

UNDELIVERABLE = "visits.referral.message_undeliverable"


async def _register(visits, county: str, *, hukou: str = "registered") -> uuid.UUID:
    child = uuid.uuid4()
    data = ChildRegistered(
        child_id=child, gender="male", birth_date=date(2014, 5, 1), village_code=village(1, county), hukou_status=hukou,
        school_id=f"school-{county}", class_name="四年级一班", left_behind_type="both_parents_out",
        father_status="migrant_worker", mother_status="migrant_worker",
    )
    await visits.publish(CHILD_REGISTERED, data, child, data.village_code)
    await wait_until(lambda: visits.known(child), what="the child in visits")
    return child


async def _the_case(visits, county: str, child) -> dict:
    found: list[dict] = []

    async def opened() -> bool:
        nonlocal found
        r = await visits.client.get("/api/v1/referrals", headers=visits.auth(region=county))
        found = [c for c in r.json()["items"] if c["child_id"] == str(child)]
        return bool(found)

    await wait_until(opened, what="the case opened")
    return found[0]


async def _case(visits, county: str, referral_id: str) -> dict:
    r = await visits.client.get(f"/api/v1/referrals/{referral_id}", headers=visits.auth(region=county))
    assert r.status_code == 200, r.text
    return r.json()


async def _until_undelivered(visits, county: str, referral_id: str, count: int) -> dict:
    seen: dict = {}

    async def arrived() -> bool:
        nonlocal seen
        seen = await _case(visits, county, referral_id)
        return len(seen["undelivered"]) >= count

    await wait_until(arrived, timeout=30, what=f"{count} undelivered message(s) on the case")
    return seen


async def _held_up(visits, county: str) -> set[str]:
    r = await visits.client.get("/api/v1/referrals", params={"undelivered": "true"}, headers=visits.auth(region=county))
    assert r.status_code == 200, r.text
    return {c["id"] for c in r.json()["items"]}


async def _published(visits, referral_id: str) -> list[dict]:
    return [e["data"] for e in await visits.outbox(UNDELIVERABLE) if e["data"]["referral_id"] == referral_id]


async def _consumed(visits, last: bytes) -> bool:
    stream = visits.settings.stream(NOTIFICATION_EVENTS)
    [group] = [g for g in await visits.redis.xinfo_groups(stream) if g["name"] == b"visits"]
    return group["last-delivered-id"] == last and group["pending"] == 0


async def _fire_at(visits, days: int) -> None:
    """The referral deadlines as they would fire ``days`` from now (the service's own poller keeps the real clock)."""
    poller = TimerPoller(timers, visits.app.state.runtime.uow, referrals.TIMER_HANDLERS,
                         now=lambda: datetime.now(UTC) + timedelta(days=days))
    while await poller.fire_due():
        pass


async def test_a_report_to_an_unconfigured_county_shows_on_the_case_once_however_often_its_failure_arrives(start_visits, engines):
    county = fresh_county()  # not in notifications' agencies file: no public security to reach there
    async with start_visits() as visits, running_app(NOTIFICATIONS, visits.settings):
        child = await _register(visits, county, hukou="unregistered")  # 无户籍: reported to public security at once
        opened = await _the_case(visits, county, child)
        assert (opened["policy"], opened["stage"]) == ("no_hukou", "reported")

        case = await _until_undelivered(visits, county, opened["id"], 1)
        [item] = case["undelivered"]
        assert (item["purpose"], item["agency"], item["stage"], item["cause"], item["channel"]) == (
            "report", "public_security", "reported", "no_channel", None)
        assert item["message_zh"].startswith("本县未配置该部门") and item["reason"] == "the recipient has no channel"
        assert [t["step"] for t in case["timeline"]] == ["opened", "reported", "undeliverable"]
        assert case["timeline"][-1]["detail"]["agency"] == "public_security"
        assert opened["id"] in await _held_up(visits, county)

        # At least once: the same entry again (a relay that crashed after XADD) and the same failure in a new
        # event (a notifications that crashed before marking it sent) change nothing.
        stream = visits.settings.stream(NOTIFICATION_EVENTS)
        raw = [f[DATA_FIELD.encode()] for _, f in await visits.redis.xrange(stream)
               if json.loads(f[DATA_FIELD.encode()])["data"].get("request_id") == str(item["request_id"])]
        [first] = raw
        failure = DeliveryFailed.model_validate(json.loads(first)["data"])
        again = DELIVERY_FAILED.envelope(failure, producer="notifications", aggregate_id=str(failure.delivery_id),
                                         aggregate_version=2, region_code=village(1, county))
        await visits.redis.xadd(stream, {DATA_FIELD: first})
        last = await visits.redis.xadd(stream, {DATA_FIELD: again.model_dump_json()})
        await wait_until(lambda: _consumed(visits, last), what="visits to consume the repeats")
        case = await _case(visits, county, opened["id"])
        assert len(case["undelivered"]) == 1
        assert [t["step"] for t in case["timeline"]].count("undeliverable") == 1
        assert await scalar(engines["visits"], "SELECT count(*) FROM referral_undelivered WHERE referral_id = :r",
                            r=uuid.UUID(opened["id"])) == 1
        [event] = await _published(visits, opened["id"])
        assert (event["purpose"], event["agency"], event["cause"], event["stage"]) == (
            "report", "public_security", "no_channel", "reported")
        assert event["delivery_id"] == str(failure.delivery_id)

        # Told by other means, the police acknowledge (the county office records it): the case moves on.
        r = await visits.client.post(f"/api/v1/referrals/{opened['id']}/acknowledgement",
                                     headers=visits.auth(region=county))
        assert r.status_code == 200, r.text
        assert r.json()["undelivered"] == []
        assert (await _case(visits, county, opened["id"]))["undelivered"] == []
        assert opened["id"] not in await _held_up(visits, county)
        # An agency's token sees nothing of how other messages fared.
        agency = visits.auth(Role.agency, region=county)
        r = await visits.client.get("/api/v1/referrals", params={"undelivered": "true"}, headers=agency)
        assert r.status_code == 403


async def test_a_dropout_whose_bureau_is_unreachable_is_reminded_and_escalated_saying_who_was_never_told(start_visits):
    county = fresh_county()
    async with start_visits() as visits, running_app(NOTIFICATIONS, visits.settings):
        # The leading-group office hears a while after the reminder (so the reminders' failures are in first).
        r = await visits.client.put(f"/api/v1/referral-policies/{county}/dropout", json={"escalate_after_working_days": 5},
                                    headers=visits.auth(region=county))
        assert r.status_code == 200, r.text
        child = await _register(visits, county)
        await visits.publish(ENROLMENT_CHANGED, EnrolmentChanged(
            child_id=child, school_id=f"school-{county}", previous="in_school", status="dropped_out",
            effective_on=today_local()), child, village(1, county))
        opened = await _the_case(visits, county, child)
        assert opened["stage"] == "persuasion"

        await _fire_at(visits, 8)  # persuasion's 7 days over: the written report goes out, to nobody
        case = await _until_undelivered(visits, county, opened["id"], 3)
        assert case["stage"] == "reported"
        assert sorted((u["purpose"], u["agency"]) for u in case["undelivered"]) == [
            ("inform", "civil_affairs"), ("report", "education_bureau"), ("report", "township_government")]
        assert opened["id"] in await _held_up(visits, county)

        await _fire_at(visits, 12)  # the bureau's acknowledgement is overdue: 催办, to nobody again
        case = await _until_undelivered(visits, county, opened["id"], 5)
        assert sorted(u["agency"] for u in case["undelivered"] if u["purpose"] == "reminder") == [
            "education_bureau", "township_government"]

        await _fire_at(visits, 30)  # then the leading-group office, which this county has not configured either
        case = await _until_undelivered(visits, county, opened["id"], 6)
        [escalation] = [e["data"] for e in await visits.outbox("notifications.message.requested")
                        if e["data"]["data"].get("case_id") == opened["id"]
                        and e["data"]["recipients"][0]["agency"] == "leading_group_office"]
        assert escalation["data"]["undelivered"] == "civil_affairs,education_bureau,township_government"
        # (The family's notice may be undeliverable too, the child has no contact card: the timeline only.)
        chain = [t for t in case["timeline"] if t["step"] != "undeliverable" or t["detail"]["purpose"] != "notice"]
        steps = [t["step"] for t in chain]
        assert steps[:3] == ["opened", "persuasion_deadline_passed", "reported"]
        assert steps.count("undeliverable") == 6 and steps[-2:] == ["escalated", "undeliverable"]
        assert len(await _published(visits, opened["id"])) == 6
