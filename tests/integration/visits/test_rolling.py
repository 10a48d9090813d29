"""A county's rolling rule (滚动周期, "a contact in any 30 days"): overdue exactly once per lapse, across a
restart; a visit moves the deadline, and the lapse after it is reported in its turn."""

from datetime import timedelta
from uuid import UUID

from services.visits.domain.windows import rolling_window, today_local
from services.visits.service_layer import commands
from shared.contracts.visits_v1 import ContactKind

CODE = "contact_any_30_days"
RULE = {"code": CODE, "name": "任意30天内至少联系1次", "roles": ["caring_mother"], "kinds": ["phone", "home_visit"],
        "count": 1, "window": "rolling", "days": 30}


async def _paired_child_under_rule(visits, county: str) -> tuple[UUID, str]:
    child = await visits.child(county=county)
    mother = await visits.helper("caring_mother", region=county)
    await visits.pair([mother], [child], region=county)
    r = await visits.client.post(f"/api/v1/counties/{county}/rules", json=RULE, headers=visits.auth(region=county))
    assert r.status_code == 201, r.text
    assert (r.json()["window"], r.json()["days"]) == ("rolling", 30)
    return child, mother


async def _lapses(visits, child) -> list[dict]:
    return [e["data"] for e in await visits.outbox("visits.visit.overdue")
            if e["data"]["child_id"] == str(child) and e["data"]["rule_code"] == CODE]


async def _rolling_keys(visits, child) -> list[str]:
    return [k for k in await visits.pending_timer_keys(child) if f":{CODE}:" in k]


async def test_a_rolling_rule_lapses_once_across_a_restart(start_visits):
    county, today = "410711", today_local()
    first = rolling_window(today, 30)  # the rule binds from today: 30 days to the first contact
    async with start_visits() as visits:
        child, _ = await _paired_child_under_rule(visits, county)
        assert await _rolling_keys(visits, child) == [f"{child}:{CODE}:{first.key}"]
        await visits.fire_timers_at(first.deadline - timedelta(minutes=1))
        assert await _lapses(visits, child) == []

    async with start_visits() as visits:  # the deadline is a row: a restart loses nothing
        await visits.fire_timers_at(first.deadline + timedelta(minutes=1))
        [lapse] = await _lapses(visits, child)
        assert (lapse["window"], lapse["window_start"], lapse["window_end"]) == (
            "rolling", first.start.isoformat(), first.end.isoformat())
        assert (lapse["required"], lapse["done"]) == (1, 0)
        # Nothing since: no new window, and polling days later reports nothing again.
        assert await _rolling_keys(visits, child) == []
        await visits.fire_timers_at(first.deadline + timedelta(days=3))
        assert len(await _lapses(visits, child)) == 1


async def test_a_visit_moves_the_deadline_and_the_next_lapse_is_reported(start_visits):
    county, today = "410712", today_local()
    async with start_visits() as visits:
        child, mother = await _paired_child_under_rule(visits, county)
        first = rolling_window(today, 30)

        async def call_on(day):  # entered on the day itself, as the service would see it then
            data = {"child_id": child, "helper_id": UUID(mother), "kind": ContactKind.phone, "visited_on": day,
                    "observations": [], "note": None}
            await commands.record_visit(visits.app.state.runtime.uow(), data, [], region=county, actor="test",
                                        account=None, today=day)

        await call_on(today + timedelta(days=10))
        moved = rolling_window(today + timedelta(days=10), 30)
        assert await _rolling_keys(visits, child) == [f"{child}:{CODE}:{moved.key}"]
        await visits.fire_timers_at(first.deadline + timedelta(minutes=1))
        assert await _lapses(visits, child) == []  # the first deadline has moved: no lapse there

        await visits.fire_timers_at(moved.deadline + timedelta(minutes=1))
        [lapse] = await _lapses(visits, child)
        assert lapse["window_start"] == moved.start.isoformat()

        # A late visit starts a new window; its own lapse is a second event, the first is not repeated.
        late = moved.end + timedelta(days=5)
        await call_on(late)
        again = rolling_window(late, 30)
        assert await _rolling_keys(visits, child) == [f"{child}:{CODE}:{again.key}"]
        await visits.fire_timers_at(again.deadline + timedelta(minutes=1))
        assert [x["window_start"] for x in await _lapses(visits, child)] == [moved.start.isoformat(),
                                                                               again.start.isoformat()]


async def test_rolling_rules_are_checked_and_a_new_length_rearms_the_children(start_visits):
    county, today = "410713", today_local()
    async with start_visits() as visits:
        auth = visits.auth(region=county)
        r = await visits.client.post(f"/api/v1/counties/{county}/rules", json={**RULE, "days": None}, headers=auth)
        assert r.status_code == 422, r.text
        [err] = r.json()["detail"]["errors"]
        assert err["field"] == "days" and err["message_zh"] and err["message_en"]

        child, _ = await _paired_child_under_rule(visits, county)
        r = await visits.client.patch(f"/api/v1/counties/{county}/rules/{CODE}", json={"days": 20}, headers=auth)
        assert (r.status_code, r.json()["effective_from"]) == (200, today.isoformat()), r.text
        assert await _rolling_keys(visits, child) == [f"{child}:{CODE}:{rolling_window(today, 20).key}"]

        r = await visits.client.get(f"/api/v1/children/{child}/score", params={"period": "rolling"}, headers=auth)
        assert r.status_code == 422 and r.json()["detail"]["errors"][0]["field"] == "period"
