"""Visit records (走访记录), concerns, corrections, group activities; worklists, overviews and scores."""

import uuid
from datetime import timedelta

from services.visits.domain.windows import today_local
from shared.auth import Role
from tests.integration.visits.conftest import month_start, village


async def test_records_are_refused_unpaired_or_too_late_and_raise_concerns_without_names(start_visits):
    today = today_local()
    async with start_visits() as visits:
        child = await visits.child()
        mother = await visits.helper("caring_mother", name="李爱心")
        supervisor = await visits.helper("village_supervisor", region=village(1))

        r = await visits.record(mother, child, "home_visit")
        assert r.status_code == 422
        [err] = r.json()["detail"]["errors"]
        assert (err["field"], err["type"]) == ("helper_id", "not_paired") and err["message_zh"]
        assert (await visits.record(supervisor, child, "home_visit")).status_code == 201  # first responder

        await visits.pair([mother], [child], started_on=today - timedelta(days=60))
        r = await visits.record(mother, child, "home_visit", today - timedelta(days=40))
        assert r.status_code == 422 and r.json()["detail"]["errors"][0]["field"] == "visited_on"
        r = await visits.record(mother, child, "home_visit", today + timedelta(days=1))
        assert r.status_code == 422

        r = await visits.record(mother, child, "home_visit", today - timedelta(days=3), observations=[
            {"area": "psychology", "level": "attention", "note": "想念妈妈，话少"},
            {"area": "safety", "level": "serious"},
        ], concerns=[{"kind": "no_adult_at_home", "severity": "high", "note": "奶奶住院，孩子独自在家"}])
        assert r.status_code == 201, r.text
        record = r.json()
        raised = [e for e in await visits.outbox("visits.concern.raised") if e["data"]["record_id"] == record["id"]]
        assert [(e["data"]["kind"], e["data"]["severity"]) for e in raised] == [("no_adult_at_home", "high")]
        assert raised[0]["aggregate_version"] == 1 and raised[0]["region_code"] == village(1)
        for event in await visits.outbox("visits.record.created") + raised:
            assert "李爱心" not in str(event) and "奶奶住院" not in str(event) and "想念妈妈" not in str(event)

        r = await visits.record(mother, child, "home_visit", observations=[{"area": "study", "level": "bad"}])
        assert r.status_code == 422
        [err] = r.json()["errors"]
        assert err["field"] == "observations.0.level" and err["message_zh"].startswith("不是允许的取值")

        # A correction keeps what the record said before.
        r = await visits.client.patch(f"/api/v1/records/{record['id']}", headers=visits.auth(), json={
            "kind": "talk", "reason": "误选为家访，实为电话后的谈心"})
        assert r.status_code == 200, r.text
        assert (r.json()["kind"], r.json()["version"]) == ("talk", 2)
        r = await visits.client.patch(f"/api/v1/records/{record['id']}", headers=visits.auth(), json={"kind": "talk"})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "reason"
        r = await visits.client.get(f"/api/v1/records/{record['id']}", headers=visits.auth())
        [c] = r.json()["corrections"]
        assert (c["before"]["kind"], c["after"]["kind"], c["version"]) == ("home_visit", "talk", 2)
        corrected = [e for e in await visits.outbox("visits.record.corrected") if e["aggregate_id"] == record["id"]]
        assert [(e["aggregate_version"], e["data"]["corrected_fields"]) for e in corrected] == [(2, ["kind"])]

        # Another county's office sees none of it.
        other = visits.auth(region="410699")
        assert (await visits.client.get(f"/api/v1/records/{record['id']}", headers=other)).status_code == 404
        r = await visits.client.post("/api/v1/records", headers=other, json={
            "helper_id": mother, "child_id": str(child), "kind": "talk", "visited_on": today.isoformat()})
        assert r.status_code == 404


async def test_pairing_is_all_or_nothing_and_class_teachers_only_for_their_class(start_visits):
    async with start_visits() as visits:
        a, b = await visits.child(6), await visits.child(7, school="school-5", class_name="五班")
        mother = await visits.helper("caring_mother")
        r = await visits.client.post("/api/v1/pairings", headers=visits.auth(),
                                     json={"helper_ids": [mother], "child_ids": [str(a), str(uuid.uuid4())]})
        assert r.status_code == 404
        r = await visits.client.get(f"/api/v1/children/{a}/compliance", headers=visits.auth())
        assert r.json()["items"] == []  # nothing was half-written: no pairing, no rule binds
        teacher = await visits.helper("class_teacher", school_id="school-4", class_name="一班")
        r = await visits.client.post("/api/v1/pairings", headers=visits.auth(),
                                     json={"helper_ids": [teacher], "child_ids": [str(b)]})
        assert r.status_code == 422 and r.json()["detail"]["errors"][0]["type"] == "not_the_class_teacher"
        made = await visits.pair([mother], [a, b])  # one-to-many
        assert {p["child_id"] for p in made} == {str(a), str(b)}
        r = await visits.client.post("/api/v1/pairings", headers=visits.auth(),
                                     json={"helper_ids": [mother], "child_ids": [str(a)]})
        assert r.status_code == 422 and r.json()["detail"]["errors"][0]["type"] == "already_paired"


async def test_activities_count_as_person_times_and_as_the_contact_a_rule_asks(start_visits):
    async with start_visits() as visits:
        child = await visits.child(8)
        mother = await visits.helper("caring_mother")
        await visits.pair([mother], [child])
        r = await visits.client.post("/api/v1/activities", headers=visits.auth(), json={
            "kind": "family_call", "held_on": today_local().isoformat(), "place": "留守儿童之家", "organiser": "镇妇联",
            "region_code": village(8), "child_ids": [str(child)], "guardians": 2})
        assert r.status_code == 201, r.text
        assert r.json()["person_times"] == 3
        [event] = [e for e in await visits.outbox("visits.activity.recorded") if e["aggregate_id"] == r.json()["id"]]
        assert event["data"]["person_times"] == 3
        r = await visits.client.get(f"/api/v1/children/{child}/compliance", headers=visits.auth())
        items = {i["rule_code"]: i["status"] for i in r.json()["items"]}
        assert items["monthly_parent_contact"] == "done"  # 亲情电话 is the call with the parents
        assert items["monthly_guardian_contact"] == "due"


C = "410631"  # a county of its own, so that the overview holds only this test's children


async def test_worklist_overview_and_scores(start_visits):
    today = today_local()
    last_day_of_last_month = month_start(today) - timedelta(days=1)
    async with start_visits() as visits:
        office = visits.auth(region=C)
        quiet, visited = await visits.child(11, county=C), await visits.child(12, county=C)
        mother = await visits.helper("caring_mother", region=C)
        await visits.pair([mother], [quiet, visited], started_on=month_start(last_day_of_last_month), region=C)
        for kind in ("home_visit", "home_visit", "parent_contact", "guardian_contact"):
            assert (await visits.record(mother, visited, kind, last_day_of_last_month, region=C)).status_code == 201

        r = await visits.client.get(f"/api/v1/helpers/{mother}/worklist", params={"days": 31}, headers=office)
        items = r.json()["items"]
        assert {(i["child_id"], i["rule_code"], i["status"]) for i in items} >= {
            (str(quiet), "companion_monthly_visits", "overdue"), (str(quiet), "companion_monthly_visits", "due"),
            (str(visited), "companion_monthly_visits", "due"),
        }
        assert (str(visited), "companion_monthly_visits", "overdue") not in {
            (i["child_id"], i["rule_code"], i["status"]) for i in items}
        assert items[0]["status"] == "overdue"  # overdue first

        r = await visits.client.get("/api/v1/overview", params={"region": village(11, C)[:9], "quiet_days": 366},
                                    headers=visits.auth(Role.township, village(11, C)[:9]))
        rows = r.json()["items"]
        assert [x["child_id"] for x in rows] == [str(quiet), str(visited)]  # nothing recorded: first
        assert rows[0]["last_contact"] is None and rows[0]["quiet"] is True
        assert rows[1]["days_without_contact"] == (today - last_day_of_last_month).days and rows[1]["quiet"] is False
        r = await visits.client.get("/api/v1/overview", headers=visits.auth(Role.helper, village(11, C)))
        assert r.status_code == 403

        scores = {}
        for child in (quiet, visited):
            r = await visits.client.get(f"/api/v1/children/{child}/score", headers=office)
            scores[child] = r.json()
        assert scores[quiet]["score"] == 0.0
        # Last month: 2 visits, parent and guardian contacts and the monthly contact all done.
        assert scores[visited]["score"] == 1.0
        assert scores[visited]["period_end"] == last_day_of_last_month.isoformat()
        r = await visits.client.get(f"/api/v1/helpers/{mother}/score", headers=office)
        assert r.json()["score"] == 0.5  # all done for one child, nothing for the other
