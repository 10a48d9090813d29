"""The guardian's consent, from the registry's API to visits through real Redis and PostgreSQL
(services/visits/domain/consent.py): withdrawn, a caring mother's record is refused and the class
teacher's and the village supervisor's are taken, the child leaves the mother's worklist and the
county's count of her rules; given again, everything is back."""

from __future__ import annotations

from sqlalchemy import text

from services.registry.app import SPEC as REGISTRY
from services.visits.app import SPEC as VISITS
from shared.auth import Role
from shared.clock import today_local
from tests.support import child_payload, fresh_county, running_app, token, wait_until

COMPANION_RULES = {"companion_monthly_visits", "caring_mother_monthly_contact", "monthly_guardian_contact"}


async def test_consent_withdrawn_stops_a_volunteers_visits_and_not_the_teachers(settings, engines):
    county = fresh_county()
    village, school, today = f"{county}001001", f"school-{county}", today_local()
    auth = token(settings, Role.county_office, county)
    async with running_app(REGISTRY, settings) as (_, registry), running_app(VISITS, settings) as (_, visits):
        body = child_payload(village_code=village, school_id=school, class_name="三年级二班")
        r = await registry.post("/api/v1/children", json=body, headers=token(settings))
        assert r.status_code == 201, r.text
        child = r.json()["id"]

        async def known() -> bool:
            return (await visits.get(f"/api/v1/children/{child}/compliance", headers=auth)).status_code == 200

        await wait_until(known, what="visits to know the child")
        helpers = {}
        for role, extra in (("caring_mother", {}), ("village_supervisor", {}),
                            ("class_teacher", {"school_id": school, "class_name": "三年级二班"})):
            r = await visits.post("/api/v1/helpers", headers=auth, json={
                "name": "帮扶人", "role": role, "organisation": "县妇联", "region_code": county, **extra})
            assert r.status_code == 201, r.text
            helpers[role] = r.json()["id"]
        r = await visits.post("/api/v1/pairings", headers=auth,
                              json={"helper_ids": [helpers["caring_mother"]], "child_ids": [child]})
        assert r.status_code == 201, r.text  # the class teacher was paired when registered

        async def record(role: str, kind: str = "home_visit"):
            return await visits.post("/api/v1/records", headers=auth, json={
                "helper_id": helpers[role], "child_id": child, "kind": kind, "visited_on": today.isoformat()})

        async def codes() -> set[str]:
            r = await visits.get(f"/api/v1/children/{child}/compliance", headers=auth)
            return {i["rule_code"] for i in r.json()["items"]}

        async def worklist() -> set[str]:
            r = await visits.get(f"/api/v1/helpers/{helpers['caring_mother']}/worklist", params={"days": 62}, headers=auth)
            assert r.status_code == 200, r.text
            return {i["child_id"] for i in r.json()["items"]}

        async def counted(rule: str) -> int:
            r = await visits.get("/api/v1/compliance", headers=auth)
            return sum(i["done"] + i["due"] + i["overdue"] for i in r.json()["items"] if i["rule_code"] == rule)

        async def consent(value: str) -> None:
            r = await registry.put(f"/api/v1/children/{child}/consent", json={"consent": value}, headers=token(settings))
            assert r.status_code == 200 and r.json()["consent"] == value, r.text

        async def applied(withdrawn: bool):
            async def check() -> bool:
                async with engines["visits"].connect() as conn:
                    row = (await conn.execute(text(
                        "SELECT consent_withdrawn_on, consent_given_on FROM children WHERE child_id = :c"), {"c": child})).one()
                return (row.consent_withdrawn_on is not None and row.consent_given_on is None) == withdrawn
            await wait_until(check, what=f"visits to hold the consent {'withdrawn' if withdrawn else 'given'}")

        assert (await record("caring_mother")).status_code == 201
        assert COMPANION_RULES <= await codes() and child in await worklist()
        assert await counted("companion_monthly_visits") == 1

        await consent("withdrawn")
        await applied(True)
        refused = await record("caring_mother")
        assert refused.status_code == 422, refused.text
        [error] = refused.json()["detail"]["errors"]
        assert error["type"] == "consent_withdrawn"
        assert "撤回知情同意" in error["message_zh"] and "withdrawn consent" in error["message_en"]
        for statutory in ("class_teacher", "village_supervisor"):
            r = await record(statutory, "talk")
            assert r.status_code == 201, r.text
        left = await codes()
        assert not COMPANION_RULES & left and "class_teacher_monthly_talk" in left
        assert child not in await worklist()
        assert await counted("companion_monthly_visits") == 0 and await counted("class_teacher_monthly_talk") == 1

        await consent("given")
        await applied(False)
        assert (await record("caring_mother")).status_code == 201
        assert COMPANION_RULES <= await codes() and child in await worklist()
        assert await counted("companion_monthly_visits") == 1
