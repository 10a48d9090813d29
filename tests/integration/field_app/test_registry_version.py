"""An archive changed meanwhile is never overwritten: a PATCH carrying the version the writer saw
(If-Match) is refused with 409 version_conflict when the archive has moved on."""

from __future__ import annotations

from services.registry.app import SPEC as REGISTRY
from tests.support import child_payload, fresh_county, running_app, token


async def test_a_change_made_on_an_older_version_is_refused_and_names_both_versions(settings):
    county = fresh_county()
    async with running_app(REGISTRY, settings) as (_, client):
        auth = token(settings)
        r = await client.post("/api/v1/children", json=child_payload(village_code=f"{county}001001"), headers=auth)
        assert r.status_code == 201, r.text
        child, seen = r.json()["id"], r.json()["version"]
        url = f"/api/v1/children/{child}"

        moved = await client.patch(url, json={"guardian": {"name": "外婆"}}, headers=auth | {"If-Match": str(seen)})
        assert moved.status_code == 200 and moved.json()["version"] > seen
        now = moved.json()["version"]

        stale = await client.patch(url, json={"guardian": {"name": "姑姑", "relationship": "relative"}},
                                   headers=auth | {"If-Match": f'"{seen}"'})
        assert stale.status_code == 409
        detail = stale.json()["detail"]
        assert (detail["code"], detail["current_version"], detail["your_version"]) == ("version_conflict", str(now), str(seen))
        assert (await client.get(url, headers=auth)).json()["guardian"]["name"] == "外婆"

        bad = await client.patch(url, json={"guardian": {"name": "姑姑"}}, headers=auth | {"If-Match": "abc"})
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "header.If-Match"

        # Without If-Match a change applies as before (the API's other clients are unchanged).
        assert (await client.patch(url, json={"guardian": {"name": "姑姑"}}, headers=auth)).status_code == 200
