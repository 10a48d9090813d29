"""Row-level security (行级安全): the caller's area enforced a second time, by PostgreSQL. Queries
run as a non-superuser role (a superuser bypasses RLS) with the service-layer check removed
(region ''): under a township's scope they return only that township's rows."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from services.registry.app import SPEC as REGISTRY
from services.registry.service_layer.unit_of_work import RegistryUnitOfWork
from shared.auth import Principal, Role
from shared.security.access import Access, accessing
from tests.support import child_payload, fresh_county, running_app, token

PROTECTED = {
    "registry": {"children", "agreements", "absences", "growth_notes"},
    "visits": {"children", "visit_records", "referrals"},
    "reporting": {"child_facts", "place_figures", "monthly_figures", "visit_records"},
}


async def _list_all(uow) -> list:
    """The repository's list with the area check of the service layer removed (region '')."""
    items, _ = await uow.children.list(region="", school_id=None, risk=None, name=None, id_number_hash=None,
                                       include_closed=True, limit=10_000, offset=0)
    return items


async def test_a_township_scope_sees_only_its_own_children_even_with_the_check_removed(settings, as_service_role):
    county = fresh_county()
    ours, theirs = f"{county}100", f"{county}101"
    async with running_app(REGISTRY, settings) as (_, client):
        ids = {}
        for township in (ours, theirs):
            r = await client.post("/api/v1/children", json=child_payload(village_code=f"{township}001"), headers=token(settings))
            assert r.status_code == 201, r.text
            ids[township] = r.json()["id"]
        note = {"noted_on": "2026-03-01", "topic": "study", "text": "进步明显"}
        r = await client.post(f"/api/v1/children/{ids[theirs]}/growth-notes", json=note, headers=token(settings))
        assert r.status_code == 201, r.text

    uow = RegistryUnitOfWork(await as_service_role("registry"))
    township = Principal(subject="t1", role=Role.township, region=ours)
    with accessing(Access(township)):
        async with uow:
            seen = await _list_all(uow)
            assert {str(c.id) for c in seen} == {ids[ours]}
            assert await uow.children.get(ids[theirs]) is None
            assert await uow.growth_notes.of_child(ids[theirs]) == []  # a child's records follow the child
            changed = await uow.session.execute(text("UPDATE children SET class_name = 'x' WHERE id = :id"), {"id": ids[theirs]})
            assert changed.rowcount == 0
    with accessing(Access(None)):  # a request without a verified principal
        async with uow:
            assert await _list_all(uow) == []
    async with uow:  # the service's own workers (no request): every place
        assert {ids[ours], ids[theirs]} <= {str(c.id) for c in await _list_all(uow)}
        assert len(await uow.growth_notes.of_child(ids[theirs])) == 1


@pytest.mark.parametrize("service", sorted(PROTECTED))
async def test_the_tables_holding_childrens_data_force_row_level_security(service, engines):
    async with engines[service].connect() as conn:
        rows = (await conn.execute(text(
            "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, count(p.polname) AS policies "
            "FROM pg_class c LEFT JOIN pg_policy p ON p.polrelid = c.oid "
            "WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r' GROUP BY 1, 2, 3"
        ))).all()
    forced = {r.relname for r in rows if r.relrowsecurity and r.relforcerowsecurity and r.policies == 4}
    assert PROTECTED[service] <= forced


async def test_the_visits_records_of_another_township_are_invisible_under_a_township_scope(engines, as_service_role):
    county = fresh_county()
    async with engines["visits"].begin() as conn:
        for n, township in enumerate(("100", "101")):
            await conn.execute(text(
                "INSERT INTO referrals (id, child_id, policy, county, stage, trigger, village_code, opened_on, version) "
                "VALUES (gen_random_uuid(), gen_random_uuid(), 'hardship', :county, 'persuasion', 'manual', :v, current_date, 1)"
            ), {"county": county, "v": f"{county}{township}00{n}"})
    sessions = await as_service_role("visits")
    township = Principal(subject="t1", role=Role.township, region=f"{county}100")
    with accessing(Access(township)):
        async with sessions() as session, session.begin():
            places = (await session.execute(text("SELECT village_code FROM referrals WHERE village_code LIKE :c"),
                                            {"c": f"{county}%"})).scalars().all()
    assert places == [f"{county}100000"]  # not {county}101001
