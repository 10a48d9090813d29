"""The 劝返复学 dropout flow end to end: the four services as real processes, the education bureau
simulated on its agency stream (services/notifications/agency_sim.py).

absence reported -> case opened -> persuasion fails -> written report delivered -> the bureau
acknowledges -> the bureau reports "returned" -> case closed, the registry shows the child in school.
A second run where the bureau never answers: the acknowledgement deadline passes while the visits
service is down, and after its restart the case is reminded and reported to the leading-group office.
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from uuid import UUID

import httpx
import pytest
from redis.asyncio import Redis

from services.notifications.agency_sim import AgencySimulator
from shared.auth import Role
from shared.clock import today_local
from shared.contracts.agency_v1 import OutcomeCode, to_agency
from shared.outbox import DATA_FIELD
from tests.infra import free_port
from tests.support import ServiceProcess, child_payload, fresh_county, token, wait_until

pytestmark = pytest.mark.slow
SERVICES = ("registry", "visits", "notifications", "reporting")
AGENCIES = {"edu": "education_bureau", "zf": "township_government", "mz": "civil_affairs", "ldxz": "leading_group_office"}
TODAY = today_local()


class County:
    """A county of the test's own, its agencies reached on their streams, and the four services."""

    def __init__(self, settings, tmp_path) -> None:
        self.code = fresh_county()
        self.settings = settings.model_copy(update={"timer_poll_ms": 200})
        agencies = tmp_path / "agencies.json"
        agencies.write_text(json.dumps([
            {"code": f"{p}-{self.code}", "kind": kind, "region": self.code, "name": f"{kind} {self.code}", "channels": ["agency_stream"]}
            for p, kind in AGENCIES.items()
        ]), encoding="utf-8")
        env = {"SHOUHU_NOTIFICATIONS_AGENCIES_FILE": str(agencies), "SHOUHU_NOTIFICATIONS_AGENCY_KEY": "test-agency-key",
               "SHOUHU_NOTIFICATIONS_QUIET_START": "00:00", "SHOUHU_NOTIFICATIONS_QUIET_END": "00:00"}
        self.procs = {s: ServiceProcess(s, self.settings, free_port(), **env) for s in SERVICES}
        self.headers = token(self.settings, Role.admin)

    def agency(self, prefix: str) -> str:
        return f"{prefix}-{self.code}"

    async def start(self, *services: str) -> None:
        for s in services or SERVICES:
            self.procs[s].start()
        for s in services or SERVICES:
            await self.procs[s].ready(timeout=60)

    def stop(self) -> None:
        for p in self.procs.values():
            p.stop()

    def url(self, service: str, path: str) -> str:
        return f"{self.procs[service].url}{path}"


async def _call(client: httpx.AsyncClient, method: str, url: str, headers: dict, expected: int = 200, **kw) -> dict:
    r = await client.request(method, url, headers=headers, **kw)
    assert r.status_code == expected, (url, r.status_code, r.text)
    return r.json() if r.content and r.headers.get("content-type", "").startswith("application/json") else {}


async def _dropout_case(c: County, client: httpx.AsyncClient) -> tuple[str, str, dict]:
    """A pupil with a class teacher, three unexcused school days, and the case they open."""
    village = f"{c.code}001001"
    body = child_payload(name="王小军", village_code=village, school_id=f"school-{c.code}", class_name="五年级一班")
    child = (await _call(client, "POST", c.url("registry", "/api/v1/children"), c.headers, 201, json=body))["id"]

    async def known() -> bool:
        r = await client.get(c.url("visits", f"/api/v1/children/{child}/compliance"), headers=c.headers)
        return r.status_code == 200

    await wait_until(known, what="visits to know the pupil")
    # A class teacher is paired at once with the known pupils of the class.
    teacher = (await _call(client, "POST", c.url("visits", "/api/v1/helpers"), c.headers, 201, json={
        "name": "张老师", "role": "class_teacher", "organisation": "中心小学", "region_code": c.code,
        "school_id": f"school-{c.code}", "class_name": "五年级一班",
    }))["id"]
    start = TODAY - timedelta(days=7 + TODAY.weekday())  # Monday of last week: three school days
    await _call(client, "POST", c.url("registry", f"/api/v1/children/{child}/absences"), c.headers, 201, json={
        "from_date": start.isoformat(), "to_date": (start + timedelta(days=2)).isoformat(), "school_days": 3, "excused": False,
    })
    case: dict = {}

    async def opened() -> bool:
        nonlocal case
        r = await client.get(c.url("visits", "/api/v1/referrals"), params={"policy": "dropout"}, headers=c.headers)
        found = [x for x in r.json()["items"] if x["child_id"] == child]
        case = found[0] if found else {}
        return bool(found)

    await wait_until(opened, what="the dropout case opened from the absences")
    assert (case["stage"], case["trigger"]) == ("persuasion", "registry.absence.reported")
    assert teacher in case["helper_ids"]
    return child, teacher, case


async def _persuade_and_fail(c: County, client: httpx.AsyncClient, child: str, teacher: str) -> None:
    for outcome, cause in (("unreachable", None), ("refused", "work"), ("refused", "work")):
        await _call(client, "POST", c.url("visits", "/api/v1/records"), c.headers, 201, json={
            "helper_id": teacher, "child_id": child, "kind": "persuasion_visit", "visited_on": TODAY.isoformat(),
            "persuasion": {"outcome": outcome, "cause": cause, "guardian_view": "家里缺劳力，想让孩子去打工"},
        })


async def _messages(redis: Redis, stream: str) -> list[dict]:
    return [json.loads(fields[DATA_FIELD.encode()]) for _, fields in await redis.xrange(stream)]


async def test_a_dropout_returns_to_school_through_the_written_report_and_the_bureau(settings, redis, tmp_path):
    c = County(settings, tmp_path)
    bureau = AgencySimulator(redis, c.agency("edu"), namespace=c.settings.stream_namespace, ack_after=0.2,
                             answer_after=0.5, outcome=OutcomeCode.returned_to_school)
    stop = asyncio.Event()
    simulating = asyncio.create_task(bureau.run(stop))
    try:
        await c.start()
        async with httpx.AsyncClient(timeout=30) as client:
            child, teacher, case = await _dropout_case(c, client)

            # The school registers the dropout (辍学登记): it joins the open case.
            await _call(client, "PUT", c.url("registry", f"/api/v1/children/{child}/enrolment"), c.headers, 204,
                        json={"status": "dropped_out", "effective_on": TODAY.isoformat()})

            async def joined() -> bool:
                r = await _call(client, "GET", c.url("visits", f"/api/v1/referrals/{case['id']}"), c.headers)
                return "triggered_again" in [t["step"] for t in r["timeline"]]

            await wait_until(joined, what="the dropout registration to reach the case")
            await _persuade_and_fail(c, client, child, teacher)

            async def closed() -> bool:
                r = await _call(client, "GET", c.url("visits", f"/api/v1/referrals/{case['id']}"), c.headers)
                return r["stage"] == "closed"

            await wait_until(closed, timeout=60, what="the bureau's outcome to close the case")
            done = await _call(client, "GET", c.url("visits", f"/api/v1/referrals/{case['id']}"), c.headers)
            report = await client.get(c.url("visits", f"/api/v1/referrals/{case['id']}/report"), headers=c.headers)

            async def in_school() -> bool:
                r = await _call(client, "GET", c.url("registry", f"/api/v1/children/{child}"), c.headers)
                return r["enrolment_status"] == "in_school"

            await wait_until(in_school, what="the registry to show the pupil back in school")

            figures: dict = {}

            async def counted() -> bool:
                nonlocal figures
                figures = await _call(client, "GET", c.url("reporting", "/api/v1/figures"), c.headers, params={"region": c.code})
                d, ref = figures["dropouts"], figures["referrals"]
                return (d["registered"], d["returned"], d["still_out"], ref["closed"]) == (1, 1, 0, 1)

            await wait_until(counted, what="reporting to count one returned dropout and its closed case")
    finally:
        stop.set()
        await simulating
        c.stop()

    assert (done["outcome"], done["refusals"]) == ("returned", 2)
    referrals = figures["referrals"]
    assert (referrals["opened_by_policy"], referrals["open_now"]) == ({"dropout": 1}, {})
    assert (referrals["acknowledged"], referrals["acknowledged_in_time"], referrals["deadlines_missed"]) == (1, 1, {})
    assert referrals["closed_by_outcome"] == {"dropout:returned": 1} and referrals["closed_without_missed_deadline"] == 1
    steps = [t["step"] for t in done["timeline"]]
    # The school's dropout registration joined the open case rather than opening another.
    assert steps == ["opened", "triggered_again", "attempt", "attempt", "attempt", "persuasion_failed", "reported",
                     "acknowledged", "closed"]
    assert [a["outcome"] for a in done["attempts"]] == ["unreachable", "refused", "refused"]
    disclosed = {(d["agency"], d["purpose"]) for d in done["disclosures"]}
    assert disclosed == {("education_bureau", "report"), ("township_government", "report"), ("civil_affairs", "inform")}
    assert all("name" in d["fields"] and "guardian_view" in d["fields"] for d in done["disclosures"])
    # The written report: Chinese, printable, the attempts and the guardian's view; the bureau got its message.
    assert report.status_code == 200 and "辍学学生劝返复学书面报告" in report.text
    assert "王小军" in report.text and report.text.count("拒绝返校") == 2 and "家里缺劳力" in report.text
    [message] = bureau.received
    assert (message.kind, message.data["case_id"]) == ("dropout_report", case["id"])
    assert message.data["school_days"] == 3 and "guardian_view" not in message.data
    # Only the education bureau and the township were asked to act, civil affairs informed: nobody else.
    for prefix in ("zf", "mz"):
        assert [m["data"]["kind"] for m in await _messages(redis, c.settings.stream_namespace + to_agency(c.agency(prefix)))] == ["dropout_report"]
    assert await _messages(redis, c.settings.stream_namespace + to_agency(c.agency("ldxz"))) == []


async def test_a_bureau_that_never_answers_is_reminded_then_reported_to_the_leading_group_office_across_a_restart(settings, redis, tmp_path):
    c = County(settings, tmp_path)
    try:
        await c.start()
        async with httpx.AsyncClient(timeout=30) as client:
            # This county acknowledges within seconds, for the test; escalation follows the reminder at once.
            await _call(client, "PUT", c.url("visits", f"/api/v1/referral-policies/{c.code}/dropout"), c.headers,
                        json={"ack_working_days": None, "ack_minutes": 0.1, "escalate_after_working_days": 0})
            child, teacher, case = await _dropout_case(c, client)
            c.procs["visits"].stop()  # down before the report: its deadline is a row, not a sleeping task
            c.procs["visits"].start()
            await c.procs["visits"].ready(timeout=60)
            await _persuade_and_fail(c, client, child, teacher)
            c.procs["visits"].kill()  # and down again while the acknowledgement deadline passes
            await asyncio.sleep(7)
            c.procs["visits"].start()
            await c.procs["visits"].ready(timeout=60)

            async def escalated() -> bool:
                r = await _call(client, "GET", c.url("visits", f"/api/v1/referrals/{case['id']}"), c.headers)
                return "escalated" in [t["step"] for t in r["timeline"]]

            await wait_until(escalated, timeout=60, what="the escalation to the leading-group office")
            done = await _call(client, "GET", c.url("visits", f"/api/v1/referrals/{case['id']}"), c.headers)

            async def office_told() -> bool:
                return bool(await _messages(redis, c.settings.stream_namespace + to_agency(c.agency("ldxz"))))

            await wait_until(office_told, what="the leading-group office's message")
    finally:
        c.stop()
    steps = [t["step"] for t in done["timeline"]]
    assert steps[-3:] == ["reported", "reminded", "escalated"], steps
    assert done["stage"] == "reported"
    edu = [m["data"] for m in await _messages(redis, c.settings.stream_namespace + to_agency(c.agency("edu")))]
    assert [m["data"].get("reminder") for m in edu] == [None, True]  # the report, then the reminder (催办)
    [office] = [m["data"] for m in await _messages(redis, c.settings.stream_namespace + to_agency(c.agency("ldxz")))]
    assert office["data"]["case_id"] == case["id"]
    assert ("leading_group_office", "escalation") in {(d["agency"], d["purpose"]) for d in done["disclosures"]}
