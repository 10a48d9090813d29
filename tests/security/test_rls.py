"""Row-level security (行级安全): the caller's area enforced a second time, by PostgreSQL. Queries
run as a non-superuser role (a superuser bypasses RLS) with the service-layer check removed
(region ''): under a township's scope they return only that township's rows."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from services.registry.app import SPEC as REGISTRY
from services.registry.service_layer.unit_of_work import RegistryUnitOfWork
from services.visits.service_layer.unit_of_work import VisitsUnitOfWork
from shared.auth import Principal, Role, issue_token
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
    forced = {r.relname for r in rows if r.relrowsecurity and r.relforcerowsecurity and r.policies >= 4}  # visits narrows too
    assert PROTECTED[service] <= forced


async def test_visits_narrows_its_childrens_tables_with_restrictive_policies(engines):
    async with engines["visits"].connect() as conn:
        rows = (await conn.execute(text(
            "SELECT c.relname, count(*) FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid "
            "WHERE NOT p.polpermissive AND p.polname LIKE 'shouhu_narrow_%' GROUP BY 1"))).all()
    assert dict(rows) == {"children": 4, "visit_records": 4, "referrals": 4}


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


# --- narrowing inside the area (visits: a helper's pairings, an agency's disclosed cases) ------------


async def _seed_visits(engine, county: str) -> dict:
    """As the owner (no RLS): three children of one village, a helper login paired with the first only
    (the second's pairing ended long ago), a record of each child; cases of an unguarded child (open,
    reported to civil affairs, township government informed), a closed one, one in persuasion."""
    village = f"{county}100201"
    ids = {k: uuid.uuid4() for k in ("paired", "unpaired", "old", "helper", "other_helper", "open", "closed", "persuading")}
    account = f"helper-{county}"
    async with engine.begin() as conn:
        for kid in ("paired", "unpaired", "old"):
            await conn.execute(text("INSERT INTO children (child_id, village_code, left_behind_type) VALUES (:c, :v, 'both_parents_out')"),
                               {"c": ids[kid], "v": village})
        for helper, login in (("helper", account), ("other_helper", None)):
            await conn.execute(text(
                "INSERT INTO helpers (id, name, role, organisation, region_code, account) "
                "VALUES (:h, '帮扶人', 'caring_mother', '妇联', :v, :a)"), {"h": ids[helper], "v": village, "a": login})
        for kid, helper, ended in (("paired", "helper", None), ("unpaired", "other_helper", None), ("old", "helper", date.today() - timedelta(days=1000))):
            await conn.execute(text(
                "INSERT INTO pairings (id, helper_id, child_id, started_on, ended_on, version, created_by) "
                "VALUES (gen_random_uuid(), :h, :c, :s, :e, 1, 'test')"),
                {"h": ids[helper], "c": ids[kid], "s": date.today() - timedelta(days=2000), "e": ended})
            await conn.execute(text(
                "INSERT INTO visit_records (id, child_id, helper_id, helper_role, kind, visited_on, observations, village_code, version, recorded_by) "
                "VALUES (gen_random_uuid(), :c, :h, 'caring_mother', 'home_visit', current_date, '[]', :v, 1, 'test')"),
                {"c": ids[kid], "h": ids[helper], "v": village})
        for case, kid, policy, stage in (("open", "unpaired", "unguarded", "reported"), ("closed", "old", "unguarded", "closed"),
                                         ("persuading", "paired", "dropout", "persuasion")):
            await conn.execute(text(
                "INSERT INTO referrals (id, child_id, policy, county, stage, trigger, village_code, opened_on, version) "
                "VALUES (:r, :c, :p, :county, :s, 'manual', :v, current_date, 1)"),
                {"r": ids[case], "c": ids[kid], "p": policy, "county": county, "s": stage, "v": village})
        for case, agency, purpose in (("open", "civil_affairs", "report"), ("open", "township_government", "inform"),
                                      ("closed", "civil_affairs", "report")):
            await conn.execute(text(
                "INSERT INTO referral_disclosures (referral_id, agency, fields, purpose) VALUES (:r, :a, '{village_code}', :p)"),
                {"r": ids[case], "a": agency, "p": purpose})
    return {**ids, "account": account, "village": village}


async def _visible(session, table: str, column: str, county: str) -> set:
    return set((await session.execute(text(f"SELECT {column} FROM {table} WHERE village_code LIKE :c"),
                                      {"c": f"{county}%"})).scalars())


async def test_a_helper_scope_sees_only_its_paired_children_and_their_records_even_with_the_check_removed(engines, as_service_role):
    county = fresh_county()
    s = await _seed_visits(engines["visits"], county)
    uow = VisitsUnitOfWork(await as_service_role("visits"))
    everyone = [s["paired"], s["unpaired"], s["old"]]
    helper = Principal(subject=s["account"], role=Role.helper, region=f"{county}100")
    with accessing(Access(helper)):
        async with uow:
            assert set(await uow.children.get_many(everyone)) == {s["paired"]}  # not a pairing ended 1,000 days ago
            records = await uow.records.contacts(everyone, date.today() - timedelta(days=1), date.today())
            assert set(records) == {s["paired"]}
            assert await _visible(uow.session, "visit_records", "child_id", county) == {s["paired"]}
            assert await _visible(uow.session, "referrals", "id", county) == {s["persuading"]}  # the paired child's case
            with pytest.raises(DBAPIError, match="row-level security"):  # nor write a record of another child
                await uow.session.execute(text(
                    "INSERT INTO visit_records (id, child_id, helper_id, helper_role, kind, visited_on, observations, village_code, version, recorded_by) "
                    "VALUES (gen_random_uuid(), :c, :h, 'caring_mother', 'home_visit', current_date, '[]', :v, 1, 'test')"),
                    {"c": s["unpaired"], "h": s["helper"], "v": s["village"]})
    someone_else = Principal(subject="helper-without-pairings", role=Role.helper, region=f"{county}100")
    with accessing(Access(someone_else)):
        async with uow:
            assert await uow.children.get_many(everyone) == {}
    township = Principal(subject="t1", role=Role.township, region=f"{county}100")
    for access in (Access(township), None):  # an office and the service's own work: the area only
        with accessing(access):
            async with uow:
                assert set(await uow.children.get_many(everyone)) == set(everyone)
                assert await _visible(uow.session, "referrals", "id", county) == {s["open"], s["closed"], s["persuading"]}


def _agency(county: str, kind: str | None) -> Access:
    return Access(Principal(subject=f"agency-{kind}", role=Role.agency, region=county, agency=f"x-{county}", agency_kind=kind))


async def test_an_agency_scope_sees_only_open_cases_disclosed_to_its_kind_even_with_the_check_removed(engines, as_service_role):
    county = fresh_county()
    s = await _seed_visits(engines["visits"], county)
    uow = VisitsUnitOfWork(await as_service_role("visits"))
    every_case = [s["open"], s["closed"], s["persuading"]]
    with accessing(_agency(county, "civil_affairs")):  # the case reported to it: open, not the closed one
        async with uow:
            assert [c for c in every_case if await uow.referrals.get(c) is not None] == [s["open"]]
            assert await _visible(uow.session, "referrals", "id", county) == {s["open"]}
            assert await _visible(uow.session, "children", "child_id", county) == {s["unpaired"]}  # its case's child
            assert await _visible(uow.session, "visit_records", "id", county) == set()
    for kind in ("public_security", "education_bureau", "health", None):  # another kind in the same area, or none
        with accessing(_agency(county, kind)):
            async with uow:
                assert await _visible(uow.session, "referrals", "id", county) == set(), kind
                assert await _visible(uow.session, "children", "child_id", county) == set(), kind
    with accessing(_agency(county, "township_government")):  # informed (通报): reads the case, cannot answer it
        async with uow:
            assert await _visible(uow.session, "referrals", "id", county) == {s["open"]}
            changed = await uow.session.execute(text("UPDATE referrals SET stage = 'acknowledged' WHERE id = :r"), {"r": s["open"]})
            assert changed.rowcount == 0
    with accessing(_agency(county, "civil_affairs")):  # the receiver closes it: seen to the end of that transaction only
        async with uow:
            changed = await uow.session.execute(text("UPDATE referrals SET stage = 'closed' WHERE id = :r"), {"r": s["open"]})
            assert changed.rowcount == 1
            await uow.commit()
        async with uow:
            assert await _visible(uow.session, "referrals", "id", county) == set()
            assert await uow.referrals.get(s["open"]) is None
    async with uow:  # the service's own work still sees every case
        assert await _visible(uow.session, "referrals", "id", county) == set(every_case)


async def test_the_service_run_as_a_non_superuser_serves_a_helper_and_an_agency_within_their_narrowing(
        settings, engines, as_service_role):
    """The service itself on the narrowed policies: a helper records a visit of a paired child and an
    agency answers its case; what is outside their narrowing stays unseen."""
    from services.visits.app import SPEC as VISITS

    county = fresh_county()
    s = await _seed_visits(engines["visits"], county)
    await as_service_role("visits")
    on_role = settings.model_copy(update={"visits_database_url": as_service_role.urls["visits"]})

    def bearer(**claims) -> dict:
        return {"Authorization": f"Bearer {issue_token(on_role, **claims)}"}

    helper = bearer(role=Role.helper, subject=s["account"], region=f"{county}100")
    agency = bearer(role=Role.agency, region=county, agency=f"mz-{county}", agency_kind="civil_affairs")
    police = bearer(role=Role.agency, region=county, agency=f"gaj-{county}", agency_kind="public_security")
    async with running_app(VISITS, on_role) as (_, client):
        mine = (await client.get("/api/v1/helpers/me", headers=helper)).json()
        assert [c["child_id"] for c in mine["children"]] == [str(s["paired"])]
        visit = {"helper_id": str(s["helper"]), "kind": "home_visit", "visited_on": date.today().isoformat()}
        r = await client.post("/api/v1/records", json={**visit, "child_id": str(s["paired"])}, headers=helper)
        assert r.status_code == 201, r.text
        r = await client.post("/api/v1/records", json={**visit, "child_id": str(s["unpaired"])}, headers=helper)
        assert r.status_code == 404, r.text

        case = f"/api/v1/referrals/{s['open']}"
        assert (await client.get(case, headers=police)).status_code == 404
        assert (await client.get(case, headers=agency)).json()["stage"] == "reported"
        r = await client.post(f"{case}/acknowledgement", headers=agency)
        assert r.status_code == 200, r.text
        r = await client.post(f"{case}/outcome", json={"outcome": "resolved"}, headers=agency)
        assert r.status_code == 200 and r.json()["stage"] == "closed", r.text
        assert (await client.get(case, headers=agency)).status_code == 404


async def test_a_township_transfers_a_child_out_of_its_area_under_row_level_security(settings, as_service_role):
    """转移 by the sending township: the archive leaves the caller's area. PostgreSQL holds an update's
    new row to the read policies too; the registry, run as a non-superuser, must still record the move,
    after which the sender no longer sees the child and the receiver does."""
    county = fresh_county()
    ours, theirs = f"{county}100", f"{county}101"
    await as_service_role("registry")
    on_role = settings.model_copy(update={"registry_database_url": as_service_role.urls["registry"]})
    async with running_app(REGISTRY, on_role) as (_, client):
        r = await client.post("/api/v1/children", json=child_payload(village_code=f"{ours}001"),
                              headers=token(on_role, Role.township, ours))
        assert r.status_code == 201, r.text
        child = f"/api/v1/children/{r.json()['id']}"
        move = {"to_village_code": f"{theirs}002", "effective_on": date.today().isoformat()}
        r = await client.post(f"{child}/transfer", json=move, headers=token(on_role, Role.township, ours))
        assert r.status_code == 204, r.text
        assert (await client.get(child, headers=token(on_role, Role.township, ours))).status_code == 404
        r = await client.get(child, headers=token(on_role, Role.township, theirs))
        assert r.status_code == 200 and r.json()["village_code"] == f"{theirs}002", r.text


# --- a school's narrowing (its pupils: the archive's school_id), registry and visits ------------------


def _school(settings, school: str | None, region: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(settings, role=Role.school, subject=f'school-{school}', region=region, school=school)}"}


async def _ids(session, table: str, column: str, where: str, **params) -> set:
    return set((await session.execute(text(f"SELECT {column} FROM {table} WHERE {where}"), params)).scalars())


async def test_a_school_scope_sees_only_its_own_pupils_even_with_the_check_removed(settings, as_service_role):
    """Two schools of one township: under school A's narrowing (raw SQL, no service-layer check) only
    A's pupils and their growth notes; B's child can be neither updated nor given a note; a school
    token without a ``school`` claim sees no child. The registry run as that role: school A registers
    its own pupil (with its school), transfers one to school B, then no longer sees it; B does."""
    county = fresh_county()
    township = f"{county}100"
    async with running_app(REGISTRY, settings) as (_, client):
        ids = {}
        for school in ("A", "B"):
            r = await client.post("/api/v1/children", headers=token(settings), json=child_payload(
                village_code=f"{township}001", school_id=f"school-{county}-{school}"))
            assert r.status_code == 201, r.text
            ids[school] = r.json()["id"]
        r = await client.post(f"/api/v1/children/{ids['B']}/growth-notes", headers=token(settings),
                              json={"noted_on": "2026-03-01", "topic": "study", "text": "进步明显"})
        assert r.status_code == 201, r.text

    sessions = await as_service_role("registry")
    ours = Principal(subject="teacher", role=Role.school, region=township, school=f"school-{county}-A")
    in_county = "village_code LIKE :c"
    with accessing(Access(ours)):
        async with sessions() as session, session.begin():
            assert await _ids(session, "children", "id::text", in_county, c=f"{county}%") == {ids["A"]}
            assert await _ids(session, "growth_notes", "id", "child_id = :k", k=uuid.UUID(ids["B"])) == set()
            changed = await session.execute(text("UPDATE children SET class_name = 'x' WHERE id = :id"), {"id": ids["B"]})
            assert changed.rowcount == 0
            with pytest.raises(DBAPIError, match="row-level security"):
                await session.execute(text("INSERT INTO growth_notes (id, child_id, noted_on, topic, text, actor) "
                                           "VALUES (gen_random_uuid(), :k, current_date, 'study', 'x', 't')"), {"k": ids["B"]})
    without_claim = Principal(subject="teacher", role=Role.school, region=township)
    with accessing(Access(without_claim)):
        async with sessions() as session, session.begin():
            assert await _ids(session, "children", "id", in_county, c=f"{county}%") == set()
    township_office = Principal(subject="t1", role=Role.township, region=township)
    with accessing(Access(township_office)):  # the township's office: both schools
        async with sessions() as session, session.begin():
            assert await _ids(session, "children", "id::text", in_county, c=f"{county}%") == {ids["A"], ids["B"]}

    on_role = settings.model_copy(update={"registry_database_url": as_service_role.urls["registry"]})
    school_a, school_b = _school(on_role, f"school-{county}-A", township), _school(on_role, f"school-{county}-B", township)
    async with running_app(REGISTRY, on_role) as (_, client):
        r = await client.post("/api/v1/children", headers=school_a, json=child_payload(
            village_code=f"{township}001", school_id=f"school-{county}-A"))
        assert r.status_code == 201, r.text
        child = f"/api/v1/children/{r.json()['id']}"
        assert (await client.get(child, headers=school_b)).status_code == 404
        move = {"to_village_code": f"{township}001", "to_school_id": f"school-{county}-B", "effective_on": date.today().isoformat()}
        r = await client.post(f"{child}/transfer", json=move, headers=school_a)
        assert r.status_code == 204, r.text
        assert (await client.get(child, headers=school_a)).status_code == 404
        r = await client.get(child, headers=school_b)
        assert r.status_code == 200 and r.json()["school_id"] == f"school-{county}-B", r.text


async def test_a_school_scope_sees_only_its_pupils_records_and_cases_in_visits_even_with_the_check_removed(engines, as_service_role):
    county = fresh_county()
    s = await _seed_visits(engines["visits"], county)
    async with engines["visits"].begin() as conn:  # the paired child at school A, the others at B
        await conn.execute(text("UPDATE children SET school_id = CASE WHEN child_id = :p THEN :a ELSE :b END "
                                "WHERE village_code = :v"), {"p": s["paired"], "a": f"school-{county}-A",
                                                             "b": f"school-{county}-B", "v": s["village"]})
    sessions = await as_service_role("visits")
    ours = Principal(subject="teacher", role=Role.school, region=f"{county}100", school=f"school-{county}-A")
    with accessing(Access(ours)):
        async with sessions() as session, session.begin():
            assert await _visible(session, "children", "child_id", county) == {s["paired"]}
            assert set((await session.execute(text("SELECT child_id FROM visit_records WHERE village_code = :v"),
                                              {"v": s["village"]})).scalars()) == {s["paired"]}
            assert await _visible(session, "referrals", "id", county) == {s["persuading"]}  # its pupil's case
            with pytest.raises(DBAPIError, match="row-level security"):  # nor write a record of another school's child
                await session.execute(text(
                    "INSERT INTO visit_records (id, child_id, helper_id, helper_role, kind, visited_on, observations, village_code, version, recorded_by) "
                    "VALUES (gen_random_uuid(), :c, :h, 'class_teacher', 'home_visit', current_date, '[]', :v, 1, 'test')"),
                    {"c": s["unpaired"], "h": s["helper"], "v": s["village"]})
    for claimless in (Principal(subject="teacher", role=Role.school, region=f"{county}100"),):
        with accessing(Access(claimless)):
            async with sessions() as session, session.begin():
                assert await _visible(session, "children", "child_id", county) == set()
                assert await _visible(session, "referrals", "id", county) == set()
