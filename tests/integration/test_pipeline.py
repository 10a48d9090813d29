"""A child registered through the API reaches each other service's store exactly once."""

import asyncio

from services.notifications.app import SPEC as NOTIFICATIONS
from services.registry.app import SPEC as REGISTRY
from services.reporting.app import SPEC as REPORTING
from services.visits.app import SPEC as VISITS
from tests.conftest import scalar
from tests.support import child_payload, running_app, token, wait_until


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
        assert await scalar(engines["reporting"], "SELECT children FROM region_counts WHERE region_code = :c", c=village) == 1
        assert await scalar(engines["visits"], "SELECT child_name FROM child_contacts WHERE child_id = :id", id=child_id) == "测试儿童0"
