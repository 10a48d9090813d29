"""考核汇总: the set-based evaluation of a whole area agrees with judging each child on its own."""

from collections import Counter

from services.visits.domain.windows import today_local
from shared.auth import Role
from tests.integration.visits.conftest import month_start


async def test_region_totals_agree_with_each_childs_own_compliance(start_visits):
    county, today = "410721", today_local()
    async with start_visits() as visits:
        kids = [await visits.child(n, county=county) for n in (1, 1, 2)]
        mother = await visits.helper("caring_mother", region=county)
        await visits.pair([mother], kids, started_on=month_start(today), region=county)
        for kind in ("home_visit", "home_visit", "parent_contact"):
            assert (await visits.record(mother, kids[0], kind, region=county)).status_code == 201
        assert (await visits.record(mother, kids[1], "home_visit", region=county)).status_code == 201
        activity = {"kind": "family_call", "held_on": today.isoformat(), "place": "留守儿童之家", "organiser": "村委会",
                    "region_code": f"{county}100002", "child_ids": [str(kids[2])], "guardians": 1}
        assert (await visits.client.post("/api/v1/activities", json=activity,
                                         headers=visits.auth(region=county))).status_code == 201

        expected, required, done = Counter(), Counter(), Counter()
        for child in kids:
            r = await visits.client.get(f"/api/v1/children/{child}/compliance", headers=visits.auth(region=county))
            for item in r.json()["items"]:
                if item["window"] == "month":
                    expected[item["rule_code"], item["status"]] += 1
                    required[item["rule_code"]] += item["required"]
                    done[item["rule_code"]] += min(item["done"], item["required"])

        r = await visits.client.get("/api/v1/compliance", params={"period": "month"}, headers=visits.auth(region=county))
        assert r.status_code == 200, r.text
        items = [i for i in r.json()["items"] if i["window"] == "month"]
        got = Counter({(i["rule_code"], s): i[s] for i in items for s in ("done", "due", "overdue") if i[s]})
        assert got == expected and expected[("companion_monthly_visits", "done")] == 1
        assert {i["rule_code"]: i["required"] for i in items if i["required"]} == dict(required)
        assert {i["rule_code"]: i["contacts_done"] for i in items if i["contacts_done"]} == {k: v for k, v in done.items() if v}
        assert expected[("monthly_parent_contact", "done")] == 2  # the family call at the children's home counts

        # The province (every county with children) holds this county's figures as they are.
        everywhere = await visits.client.get("/api/v1/compliance", headers=visits.auth(Role.admin, ""))
        assert [i for i in everywhere.json()["items"] if i["county"] == county] == r.json()["items"]

        # A township sees its own villages only; rolling is not a period.
        township = await visits.client.get("/api/v1/compliance", headers=visits.auth(region=f"{county}100"))
        assert township.status_code == 200
        r = await visits.client.get("/api/v1/compliance", params={"period": "rolling"}, headers=visits.auth(region=county))
        assert r.status_code == 422 and r.json()["detail"]["errors"][0]["field"] == "period"
