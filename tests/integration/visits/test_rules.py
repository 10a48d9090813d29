"""Rules are data: a county changes a number (from the next window) or adds a rule; terms per county."""

from datetime import timedelta

from services.visits.domain.windows import Window, today_local
from shared.auth import Role
from shared.contracts.visits_v1 import WindowKind
from tests.integration.visits.conftest import month_start, next_month_start


async def test_county_changes_monthly_visits_from_2_to_3_and_the_next_window_uses_it(start_visits):
    county = "410601"  # a county of its own: rules are per county
    today = today_local()
    nxt = next_month_start(today)
    async with start_visits() as visits:
        child = await visits.child(county=county)
        mother = await visits.helper("caring_mother", region=county)
        await visits.pair([mother], [child], started_on=month_start(today), region=county)

        r = await visits.client.patch(f"/api/v1/counties/{county}/rules/companion_monthly_visits", json={"count": 3},
                                      headers=visits.auth(region=county))
        assert r.status_code == 200, r.text
        assert (r.json()["count"], r.json()["effective_from"]) == (3, nxt.isoformat())

        async def required(on) -> int:
            r = await visits.client.get(f"/api/v1/children/{child}/compliance", params={"on": on.isoformat()},
                                        headers=visits.auth(region=county))
            assert r.status_code == 200, r.text
            return next(i["required"] for i in r.json()["items"] if i["rule_code"] == "companion_monthly_visits")

        assert await required(today) == 2  # the running month keeps its number
        assert await required(nxt) == 3

        # The timers say the same: this month judged against 2, the next one against 3.
        this_month = Window(WindowKind.month, month_start(today), nxt - timedelta(days=1))
        next_month = Window(WindowKind.month, nxt, next_month_start(nxt) - timedelta(days=1))
        await visits.fire_timers_at(this_month.deadline + timedelta(minutes=1))
        await visits.fire_timers_at(next_month.deadline + timedelta(minutes=1))
        short = {
            e["data"]["window_start"]: e["data"]["required"]
            for e in await visits.outbox("visits.visit.overdue")
            if e["data"]["child_id"] == str(child) and e["data"]["rule_code"] == "companion_monthly_visits"
        }
        assert short == {this_month.start.isoformat(): 2, next_month.start.isoformat(): 3}

        # The neighbouring county still has the default.
        other = await visits.client.get("/api/v1/counties/410602/rules", params={"on": nxt.isoformat()},
                                        headers=visits.auth(Role.admin, ""))
        assert next(x["count"] for x in other.json() if x["code"] == "companion_monthly_visits") == 2


async def test_county_adds_a_rule_that_binds_the_running_window(start_visits):
    county = "410603"
    async with start_visits() as visits:
        child = await visits.child(county=county)
        mother = await visits.helper("caring_mother", region=county)
        await visits.pair([mother], [child], region=county)
        rule = {"code": "monthly_safety_talk", "name": "每月安全教育谈心1次", "roles": ["caring_mother"], "kinds": ["talk"],
                "count": 1, "window": "month"}
        r = await visits.client.post(f"/api/v1/counties/{county}/rules", json=rule, headers=visits.auth(region=county))
        assert r.status_code == 201, r.text
        assert any(":monthly_safety_talk:" in k for k in await visits.pending_timer_keys(child))
        again = await visits.client.post(f"/api/v1/counties/{county}/rules", json=rule, headers=visits.auth(region=county))
        assert again.status_code == 422 and again.json()["detail"]["errors"][0]["field"] == "code"


async def test_rule_changes_are_checked_and_only_for_the_county_office(start_visits):
    county = "410604"
    async with start_visits() as visits:
        url = f"/api/v1/counties/{county}/rules/companion_monthly_visits"
        r = await visits.client.patch(url, json={"count": 0}, headers=visits.auth(region=county))
        assert r.status_code == 422
        [err] = r.json()["errors"]
        assert err["field"] == "count" and err["message_zh"] and err["message_en"]
        r = await visits.client.patch(url, json={"count": 3}, headers=visits.auth(Role.township, county + "100"))
        assert r.status_code == 403
        r = await visits.client.patch(url, json={"count": 3}, headers=visits.auth(region="410605"))
        assert r.status_code == 403
        r = await visits.client.patch(url, json={"count": 3})
        assert r.status_code == 401
        r = await visits.client.put(f"/api/v1/counties/{county}/terms", headers=visits.auth(region=county),
                                    json={"terms": [{"starts_on": "2026-09-01", "ends_on": "2026-08-01"}]})
        assert r.status_code == 422 and r.json()["errors"][0]["message_zh"] == "学期结束日期应晚于开始日期"
