"""Registry events move the schedule: transfer (转移), archive closed (结档), merge (合并)."""

from datetime import date

from shared.auth import Role
from shared.contracts.registry_v1 import (
    ARCHIVE_CLOSED, CHILD_MERGED, CHILD_TRANSFERRED, ArchiveClosed, ChildMerged, ChildTransferred,
)
from tests.conftest import scalar
from tests.integration.visits.conftest import village
from tests.support import wait_until

NEW_COUNTY = "410621"


async def test_a_transfer_moves_the_schedule_and_ends_the_old_class_teacher_for_re_pairing(start_visits):
    async with start_visits() as visits:
        child = await visits.child(school="school-1", class_name="三年级二班")
        old_teacher = await visits.helper("class_teacher", school_id="school-1", class_name="三年级二班")
        new_teacher = await visits.helper("class_teacher", region=NEW_COUNTY, school_id="school-9", class_name="四年级一班")
        mother = await visits.helper("caring_mother")
        await visits.pair([mother], [child])
        assert (await visits.record(mother, child, "home_visit")).status_code == 201
        rule = {"code": "new_county_monthly_talk", "name": "每月谈心", "roles": ["caring_mother"], "kinds": ["talk"],
                "count": 1, "window": "month"}
        r = await visits.client.post(f"/api/v1/counties/{NEW_COUNTY}/rules", json=rule, headers=visits.auth(region=NEW_COUNTY))
        assert r.status_code == 201
        keys = await visits.pending_timer_keys(child)
        assert any(":class_teacher_monthly_talk:" in k for k in keys) and not any(":new_county_" in k for k in keys)

        moved = ChildTransferred(child_id=child, from_village_code=village(1), to_village_code=village(1, NEW_COUNTY),
                                 from_school_id="school-1", to_school_id="school-9", to_class_name="四年级一班",
                                 effective_on=date.today())
        await visits.publish(CHILD_TRANSFERRED, moved, child, moved.to_village_code)

        async def moved_there() -> bool:
            return await scalar(visits.engine, "SELECT village_code FROM children WHERE child_id = :c", c=child) == \
                moved.to_village_code

        await wait_until(moved_there, what="the transfer applied")
        ended = [e["data"] for e in await visits.outbox("visits.pairing.ended") if e["data"]["child_id"] == str(child)]
        assert [(e["helper_id"], e["reason"]) for e in ended] == [(old_teacher, "transferred")]
        started = {e["data"]["helper_id"] for e in await visits.outbox("visits.pairing.started")
                   if e["data"]["child_id"] == str(child)}
        assert started == {old_teacher, new_teacher, mother}

        # The schedule follows: the new county's rule is armed; the caring mother's visits go on.
        keys = await visits.pending_timer_keys(child)
        assert any(":new_county_monthly_talk:" in k for k in keys)
        assert any(":companion_monthly_visits:" in k for k in keys)

        new_office = visits.auth(region=NEW_COUNTY)
        r = await visits.client.get(f"/api/v1/children/{child}/compliance", headers=new_office)
        items = {i["rule_code"]: i for i in r.json()["items"]}
        assert items["companion_monthly_visits"]["done"] == 1  # the history came along
        assert "new_county_monthly_talk" in items
        assert (await visits.client.get(f"/api/v1/children/{child}/compliance", headers=visits.auth())).status_code == 404

        # Listed for re-pairing where the child now is (the new class already has its teacher: nothing to do there).
        r = await visits.client.get("/api/v1/pairings/to-repair", headers=visits.auth(Role.admin, ""))
        assert all(x["child_id"] != str(child) for x in r.json())


async def test_a_transfer_to_a_class_without_teacher_is_listed_for_re_pairing(start_visits):
    async with start_visits() as visits:
        child = await visits.child(school="school-2", class_name="一班")
        teacher = await visits.helper("class_teacher", school_id="school-2", class_name="一班")
        moved = ChildTransferred(child_id=child, from_village_code=village(1), to_village_code=village(2),
                                 from_school_id="school-2", to_school_id="school-3", to_class_name="二班",
                                 effective_on=date.today())
        await visits.publish(CHILD_TRANSFERRED, moved, child, moved.to_village_code)

        async def listed() -> list:
            r = await visits.client.get("/api/v1/pairings/to-repair", headers=visits.auth(Role.township, village(2)[:9]))
            return [x for x in r.json() if x["child_id"] == str(child)]

        await wait_until(listed, what="the pairing listed for re-pairing")
        [row] = await listed()
        assert (row["helper_id"], row["helper_role"], row["end_reason"]) == (teacher, "class_teacher", "transferred")
        assert not any(":class_teacher_" in k for k in await visits.pending_timer_keys(child))


async def test_a_closed_archive_ends_pairings_and_schedule_and_a_merge_moves_to_the_survivor(start_visits):
    async with start_visits() as visits:
        survivor, duplicate, closing = [await visits.child(n) for n in (3, 4, 5)]
        mother = await visits.helper("caring_mother")
        await visits.pair([mother], [duplicate, closing])
        assert (await visits.record(mother, duplicate, "home_visit")).status_code == 201

        await visits.publish(ARCHIVE_CLOSED, ArchiveClosed(child_id=closing, reason="parents_returned",
                                                           closed_on=date.today()), closing, village(5))
        await visits.publish(CHILD_MERGED, ChildMerged(child_id=duplicate, survivor_id=survivor), duplicate, village(4))

        async def applied() -> bool:
            return await scalar(visits.engine, "SELECT count(*) FROM children WHERE closed_on IS NOT NULL "
                                "AND child_id IN (:a, :b)", a=closing, b=duplicate) == 2

        await wait_until(applied, what="closure and merge applied")
        assert await visits.pending_timer_keys(closing) == []
        assert await visits.pending_timer_keys(duplicate) == []
        assert any(":companion_monthly_visits:" in k for k in await visits.pending_timer_keys(survivor))
        reasons = {e["data"]["child_id"]: e["data"]["reason"] for e in await visits.outbox("visits.pairing.ended")}
        assert (reasons[str(closing)], reasons[str(duplicate)]) == ("archive_closed", "merged")
        r = await visits.client.get(f"/api/v1/children/{survivor}/compliance", headers=visits.auth())
        visits_done = next(i for i in r.json()["items"] if i["rule_code"] == "companion_monthly_visits")
        assert visits_done["done"] == 1  # the duplicate's record is the survivor's now
        r = await visits.client.post("/api/v1/pairings", headers=visits.auth(),
                                     json={"helper_ids": [mother], "child_ids": [str(closing)]})
        assert r.status_code == 422 and r.json()["detail"]["errors"][0]["type"] == "archive_closed"
