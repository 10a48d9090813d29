"""A child registered through the API reaches each other service's store exactly once."""

import asyncio

from services.notifications.app import SPEC as NOTIFICATIONS
from services.registry.app import SPEC as REGISTRY
from services.reporting.app import SPEC as REPORTING
from services.visits.app import SPEC as VISITS
from tests.conftest import scalar
from shared.clock import today_local
from tests.support import child_payload, fresh_county, running_app, token, wait_until


async def test_registered_child_appears_exactly_once_in_every_store(settings, engines):
    async with (
        running_app(REGISTRY, settings) as (_, registry),
        running_app(VISITS, settings),
        running_app(NOTIFICATIONS, settings),
        running_app(REPORTING, settings),
    ):
        village = "410523100777"
        r = await registry.post("/api/v1/children", json=child_payload(village_code=village), headers=token(settings))
        assert r.status_code == 201, r.text
        child_id = r.json()["id"]

        checks = {
            "visits": "SELECT count(*) FROM children WHERE child_id = :id",
            "notifications": "SELECT count(*) FROM contacts WHERE child_id = :id",
            "reporting": "SELECT count(*) FROM child_facts WHERE child_id = :id",
        }

        async def everywhere() -> bool:
            counts = [await scalar(engines[s], sql, id=child_id) for s, sql in checks.items()]
            return all(c == 1 for c in counts)

        await wait_until(everywhere, what="the child in visits, notifications and reporting")
        # Redelivering everything the registry published changes nothing.
        await asyncio.sleep(0.5)
        for s, sql in checks.items():
            assert await scalar(engines[s], sql, id=child_id) == 1, s
        assert await scalar(engines["reporting"], "SELECT value FROM place_figures WHERE figure = 'children' AND place = :c", c=village) == 1
        assert await scalar(engines["visits"], "SELECT child_name FROM child_contacts WHERE child_id = :id", id=child_id) == "测试儿童0"


async def test_figures_follow_transfers_closings_reopenings_and_merges(settings, engines):
    """Reporting counts a child where it lives now, and a closed or merged archive nowhere."""
    here, there = fresh_county(), fresh_county()
    async with running_app(REGISTRY, settings) as (_, registry), running_app(REPORTING, settings):
        ids = []
        for n in range(3):
            r = await registry.post("/api/v1/children", json=child_payload(village_code=f"{here}001{n:03d}"), headers=token(settings))
            ids.append(r.json()["id"])
        moved, closed, duplicate = ids
        child = "/api/v1/children/{}"
        today = today_local().isoformat()
        steps = [
            (moved, "transfer", {"to_village_code": f"{there}002001", "effective_on": today}),
            (closed, "close", {"reason": "moved_away", "closed_on": today}),
            (closed, "reopen", None),
            (closed, "close", {"reason": "deceased", "closed_on": today}),
            (duplicate, "merge", {"survivor_id": moved}),
        ]
        for child_id, action, body in steps:
            r = await registry.post(f"{child.format(child_id)}/{action}", json=body, headers=token(settings))
            assert r.status_code == 204, (action, r.text)

        async def counts() -> tuple:
            return tuple([
                await scalar(engines["reporting"], "SELECT coalesce(sum(value), 0) FROM place_figures WHERE figure = 'children' AND place = :c", c=c)
                for c in (here, there, f"{there}002001")
            ])

        async def settled() -> bool:
            return await counts() == (0, 1, 1)

        await wait_until(settled, what="counts after a transfer, a closing and a merge")
        assert await scalar(engines["reporting"], "SELECT count(*) FROM child_facts WHERE closed AND child_id = ANY(:ids)",
                            ids=[closed, duplicate]) == 2
