"""An ID number is unique across the whole province, not only within the caller's area: on the registry's own
role, under row-level security, a township's registration or census row with a number already on another area's
open archive is refused with the field named (not a database error), and without showing that archive."""

from __future__ import annotations

from datetime import date

from services.registry.app import SPEC as REGISTRY
from shared.auth import Role
from tests.integration.registry_census.rosters import csv_bytes, good, row
from tests.integration.test_registry_api import CHILDREN, id_number
from tests.support import child_payload, fresh_county, running_app, token


async def test_a_number_on_another_areas_archive_is_refused_with_the_field_and_without_its_id(settings, as_service_role):
    county = fresh_county()
    here, there = f"{county}100", f"{county}200"
    await as_service_role("registry")
    on_role = settings.model_copy(update={"registry_database_url": as_service_role.urls["registry"]})
    number = id_number(date(2014, 6, 1), area=county)
    async with running_app(REGISTRY, on_role) as (_, client):
        r = await client.post(CHILDREN, json=child_payload(village_code=f"{there}001", id_number=number),
                              headers=token(on_role, Role.township, there))
        assert r.status_code == 201, r.text
        r = await client.post(CHILDREN, json=child_payload(1, name="另一个", village_code=f"{here}001", id_number=number),
                              headers=token(on_role, Role.township, here))
        assert r.status_code == 409, r.text
        detail = r.json()["detail"]
        assert (detail["code"], detail["field"]) == ("id_number_registered", "id_number"), detail
        assert detail.get("existing_child_id") is None, "an archive outside the caller's area is not shown"
        # In the area that holds it, the archive is named as before.
        r = await client.post(CHILDREN, json=child_payload(2, name="又一个", village_code=f"{there}002", id_number=number),
                              headers=token(on_role, Role.township, there))
        assert r.status_code == 409 and r.json()["detail"]["existing_child_id"], r.text
        # A roster imported in the request by the other township: that row refused the same way, the rest registered.
        roster = [row(good(7, f"{here}003"), 出生日期="2014-06-01", 身份证号=number), good(8, f"{here}003")]
        r = await client.post("/api/v1/imports/census", files={"file": ("名单.csv", csv_bytes(roster))},
                              headers=token(on_role, Role.township, here))
        assert r.status_code == 201, r.text
        job = r.json()
    assert (job["registered"], job["rejected"]) == (1, 1), job["report"]
    [refused] = job["report"]
    assert [(e["column"], e["type"]) for e in refused["errors"]] == [("身份证号", "id_number_registered")], refused
    assert refused.get("child_id") is None and "00000000-0000" not in str(refused), refused
