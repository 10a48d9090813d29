"""The census import as the registry runs in every deployment: on a non-superuser role, under row-level
security (a superuser skips RLS, and PostgreSQL refuses COPY FROM into a table under it to any other role)."""

from __future__ import annotations

from sqlalchemy import text

from services.registry.app import SPEC as REGISTRY
from shared.auth import Role
from tests.conftest import scalar
from tests.integration.registry_census.rosters import csv_bytes, good, row
from tests.support import fresh_county, running_app, token, wait_until


async def test_a_census_import_registers_its_rows_on_the_services_own_role(settings, engines, as_service_role):
    county = fresh_county()
    township = f"{county}100"
    await as_service_role("registry")
    on_role = settings.model_copy(update={"registry_database_url": as_service_role.urls["registry"]})
    big = [good(n, f"{township}{n % 3:03d}", id_number=None) for n in range(600)]  # a job for the worker
    big[550] = row(big[550], 性别="?")
    small = [good(n, f"{township}201", id_number=None) for n in range(3)]  # registered in the request, under the township's scope
    async with running_app(REGISTRY, on_role) as (_, client):
        r = await client.post("/api/v1/imports/census", files={"file": ("大.csv", csv_bytes(big))}, headers=token(on_role))
        assert r.status_code == 202, r.text
        job_id = r.json()["id"]

        async def finished() -> bool:
            return (await client.get(f"/api/v1/imports/{job_id}", headers=token(on_role))).json()["status"] == "done"

        await wait_until(finished, timeout=60, what="the import job to finish on the service's role")
        job = (await client.get(f"/api/v1/imports/{job_id}", headers=token(on_role))).json()
        r = await client.post("/api/v1/imports/census", files={"file": ("小.csv", csv_bytes(small))},
                              headers=token(on_role, Role.township, township))
        assert r.status_code == 201, r.text
        at_once = r.json()
    assert (job["registered"], job["rejected"], job["error"]) == (599, 1, None)
    assert [(x["row"], x["errors"][0]["type"]) for x in job["report"]] == [(552, "cell_choice")]
    assert (at_once["registered"], at_once["rejected"]) == (3, 0), at_once["report"]
    registry = engines["registry"]
    assert await scalar(registry, "SELECT count(*) FROM children WHERE village_code LIKE :t", t=f"{township}%") == 602
    async with registry.connect() as conn:  # the children written whole, each with its three events
        counts = (await conn.execute(text(
            "SELECT count(DISTINCT c.id), count(o.id), count(*) FILTER (WHERE c.risk_categories IS NULL OR c.father IS NULL) "
            "FROM children c JOIN outbox o ON o.aggregate_id = c.id::text WHERE c.village_code LIKE :t"
        ), {"t": f"{township}%"})).one()
    assert tuple(counts) == (602, 3 * 602, 0)
