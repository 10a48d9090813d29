"""A registration queued on a phone carries the archive's id made there (client_id): sent again after
a lost answer, it answers the same archive and creates nothing new, neither a row nor an event."""

from __future__ import annotations

from uuid import uuid4

from services.registry.app import SPEC as REGISTRY
from shared.auth import Role
from tests.conftest import scalar
from tests.support import child_payload, fresh_county, running_app, token


async def test_a_registration_sent_again_with_its_client_id_creates_nothing_new(settings, engines):
    county = fresh_county()
    village = f"{county}001001"
    async with running_app(REGISTRY, settings) as (_, client):
        auth = token(settings, Role.village_supervisor, village)
        body = child_payload(name="孙小雨", village_code=village) | {"client_id": str(uuid4())}

        async def written() -> tuple[int, int]:
            rows = await scalar(engines["registry"], "SELECT count(*) FROM children WHERE village_code = :v", v=village)
            events = await scalar(engines["registry"], "SELECT count(*) FROM outbox WHERE aggregate_id = :c",
                                  c=body["client_id"])
            return rows, events

        first = await client.post("/api/v1/children", json=body, headers=auth)
        assert first.status_code == 201, first.text
        assert first.json()["id"] == body["client_id"]
        after_first = await written()
        assert after_first[0] == 1 and after_first[1] > 0

        again = await client.post("/api/v1/children", json=body, headers=auth)
        assert again.status_code == 200, again.text
        assert (again.json()["id"], again.json()["version"]) == (first.json()["id"], first.json()["version"])
        assert await written() == after_first

        # The same id with another child's particulars is not taken for a retry.
        other = await client.post("/api/v1/children", json=body | {"name": "孙小雷"}, headers=auth)
        assert other.status_code == 409 and other.json()["detail"]["field"] == "client_id"
        # Nor from another village's supervisor, who is told nothing of the archive.
        elsewhere = token(settings, Role.village_supervisor, f"{county}001002")
        moved = body | {"village_code": f"{county}001002"}
        assert (await client.post("/api/v1/children", json=moved, headers=elsewhere)).status_code == 409
        assert await written() == after_first
