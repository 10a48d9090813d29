"""The registry's HTTP API against real PostgreSQL and Redis.

The databases live for the whole run, so each test works in a county of its own
(a real county no other test of the process has) and counts only what it wrote.
"""

from __future__ import annotations

import json
from datetime import date

import pytest

from services.registry.adapters.repository import ChildRepository
from services.registry.app import SPEC as REGISTRY
from services.registry.domain.rules import id_check_char
from shared.auth import Role
from shared.contracts.registry_v1 import CHILD_CONTACTS
from shared.outbox import Outbox
from tests.conftest import scalar
from tests.support import child_payload, fresh_county, running_app, token

CHILDREN = "/api/v1/children"


def id_number(birth: date, *, female: bool = True, area: str = "410523") -> str:
    first17 = f"{area}{birth:%Y%m%d}00{2 if female else 1}"
    return first17 + id_check_char(first17)


@pytest.fixture
def county() -> str:
    return fresh_county()


def village(county: str, township: int = 1, n: int = 1) -> str:
    return f"{county}{township:03d}{n:03d}"


async def outbox_events(engines, child_id: str) -> list[dict]:
    """The envelopes written for one child, in outbox order."""
    async with engines["registry"].connect() as conn:
        rows = (
            await conn.exec_driver_sql(
                "SELECT payload FROM outbox WHERE aggregate_id = $1 ORDER BY id", (child_id,)
            )
        ).all()
    return [json.loads(r.payload) for r in rows]


async def row_counts(engines) -> tuple[int, int]:
    e = engines["registry"]
    return await scalar(e, "SELECT count(*) FROM children"), await scalar(e, "SELECT count(*) FROM outbox")


async def register(client, settings, **over) -> str:
    r = await client.post(CHILDREN, json=child_payload(**over), headers=token(settings))
    assert r.status_code == 201, r.text
    return r.json()["id"]


# --- register and read ----------------------------------------------------------------


async def test_register_returns_201_and_the_archive_shows_only_the_masked_id_number(settings, engines, county):
    number = id_number(date(2014, 6, 1), area=county)
    async with running_app(REGISTRY, settings) as (_, client):
        r = await client.post(
            CHILDREN, json=child_payload(village_code=village(county), id_number=number), headers=token(settings)
        )
        assert r.status_code == 201, r.text
        child_id = r.json()["id"]
        assert r.json()["version"] == 2

        r = await client.get(f"{CHILDREN}/{child_id}", headers=token(settings))
    assert r.status_code == 200, r.text
    archive = r.json()
    assert archive["id"] == child_id
    assert archive["id_number_masked"] == f"{number[:4]}{'*' * 10}{number[-4:]}"
    assert number not in r.text
    assert not {"id_number", "id_number_hash"} & archive.keys()
    assert (archive["village_code"], archive["birth_date"], archive["version"]) == (village(county), "2014-06-01", 2)
    assert archive["guardian"] == {
        "name": "奶奶", "relationship": "grandparent", "capacity": "limited", "phone": "13900139000"
    }
    assert archive["father"]["work_place"] == "广东东莞"
    stored = await scalar(
        engines["registry"], "SELECT id_number_masked || id_number_hash FROM children WHERE id = :id", id=child_id
    )
    assert number not in stored


async def test_every_event_of_a_registration_is_in_the_outbox_in_the_childs_transaction(settings, engines, county):
    async with running_app(REGISTRY, settings) as (_, client):
        child_id = await register(client, settings, village_code=village(county))

    events = await outbox_events(engines, child_id)
    assert [(e["type"], e["aggregate_version"]) for e in events] == [
        ("registry.child.registered", 1),
        ("registry.guardian.assigned", 2),
        ("registry.child.contacts", 2),
    ]
    assert {e["region_code"] for e in events} == {village(county)}
    # now() is the transaction's start time: equal timestamps mean one transaction.
    distinct = await scalar(
        engines["registry"],
        "SELECT count(DISTINCT created_at) FROM (SELECT created_at FROM children WHERE id = :id "
        "UNION ALL SELECT created_at FROM outbox WHERE aggregate_id = CAST(:id AS text)) t",
        id=child_id,
    )
    assert distinct == 1
    registered = events[0]["data"]
    for personal in ("测试儿童0", "奶奶", "13900139000", "13800138000", "13700137000"):
        assert personal not in json.dumps(registered, ensure_ascii=False)


async def test_a_failed_registration_leaves_neither_child_nor_events(settings, engines, county, monkeypatch):
    async def insert_fails(self, child):
        raise RuntimeError("insert failed")

    real_row = Outbox.row

    def card_fails(self, event_type, data, **fields):
        if event_type is CHILD_CONTACTS:
            raise RuntimeError("outbox write failed")
        return real_row(self, event_type, data, **fields)

    async with running_app(REGISTRY, settings) as (_, client):
        before = await row_counts(engines)
        for target, attr, fake in ((ChildRepository, "add", insert_fails), (Outbox, "row", card_fails)):
            with monkeypatch.context() as m:
                m.setattr(target, attr, fake)
                with pytest.raises(RuntimeError):
                    await client.post(
                        CHILDREN, json=child_payload(village_code=village(county)), headers=token(settings)
                    )
            assert await row_counts(engines) == before, attr
        await register(client, settings, village_code=village(county))  # and the API still works
    assert await row_counts(engines) == (before[0] + 1, before[1] + 3)


# --- bad input ------------------------------------------------------------------------


async def test_bad_input_names_every_field_in_both_languages_and_writes_nothing(settings, engines, county):
    body = child_payload(
        village_code="41052310",
        gender="unknown",
        birth_date="2099-01-01",
        id_number="11010519491231002Y",
        extra_field=1,
    )
    body["father"]["phone"] = "123"
    body["mother"] = {"status": "migrant_worker", "phone": "13700137000", "work_place": ""}
    body["guardian"] = {"relationship": "grandparent"}
    body["risk_categories"] = ["orphan", "not-a-category"]
    del body["hukou_status"]

    async with running_app(REGISTRY, settings) as (_, client):
        before = await row_counts(engines)
        r = await client.post(CHILDREN, json=body, headers=token(settings))
        assert r.status_code == 422, r.text
        assert await row_counts(engines) == before

    payload = r.json()
    assert payload["message_zh"] and payload["message_en"]
    errors = {e["field"]: e for e in payload["errors"]}
    assert set(errors) == {
        "village_code", "gender", "birth_date", "id_number", "extra_field", "father.phone", "mother.work_place",
        "guardian.name", "risk_categories.1", "hukou_status",
    }
    for e in errors.values():
        assert e["message_zh"] and e["message_en"], e
    assert errors["village_code"]["type"] == "village_code_format"
    assert errors["father.phone"]["type"] == "phone_format"
    assert errors["birth_date"]["type"] == "birth_date_future"
    assert errors["id_number"]["type"] == "id_number_format"
    assert errors["hukou_status"]["message_en"] == "this field is required"
    assert "身份证" in errors["id_number"]["message_zh"]


async def test_an_id_number_that_contradicts_the_birth_date_is_refused_at_id_number(settings, engines, county):
    body = child_payload(village_code=village(county), id_number=id_number(date(2014, 6, 2), area=county))
    async with running_app(REGISTRY, settings) as (_, client):
        before = await row_counts(engines)
        r = await client.post(CHILDREN, json=body, headers=token(settings))
        assert await row_counts(engines) == before
    assert r.status_code == 422
    [error] = r.json()["errors"]
    assert (error["field"], error["type"]) == ("id_number", "id_number_birth_date")


async def test_patch_errors_name_the_field_and_change_nothing(settings, engines, county):
    async with running_app(REGISTRY, settings) as (_, client):
        with_guardian = await register(client, settings, village_code=village(county))
        without = await register(client, settings, village_code=village(county), guardian=None)
        before = await row_counts(engines)

        cases = [
            (with_guardian, {"father": {"phone": "12345"}}, "father.phone", "phone_format"),
            (with_guardian, {"name": None}, "name", "not_nullable"),
            (with_guardian, {"father": None}, "father", "not_nullable"),
            (with_guardian, {"guardian": {"capacity": None}}, "guardian.capacity", "not_nullable"),
            (with_guardian, {"school_id": "  "}, "school_id", "string_too_short"),
            # past the schema: the handler's rule, answered in the same shape
            (without, {"guardian": {"phone": "13600136000"}}, "guardian", "guardian_incomplete"),
        ]
        for child_id, patch, field, kind in cases:
            r = await client.patch(f"{CHILDREN}/{child_id}", json=patch, headers=token(settings))
            assert r.status_code == 422, (patch, r.text)
            body = r.json()
            assert body["message_zh"] and body["message_en"]
            [error] = body["errors"]
            assert (error["field"], error["type"]) == (field, kind), patch
            assert error["message_zh"] and error["message_en"]

        assert await row_counts(engines) == before
        r = await client.get(f"{CHILDREN}/{without}", headers=token(settings))
        assert (r.json()["guardian"], r.json()["version"]) == (None, 2)  # version 2: flagged 无人监护 at registration


# --- who may do what ------------------------------------------------------------------


async def test_no_token_is_401_and_a_helper_is_403(settings, county):
    async with running_app(REGISTRY, settings) as (_, client):
        child_id = await register(client, settings, village_code=village(county))
        requests = [
            ("POST", CHILDREN, child_payload(village_code=village(county))),
            ("GET", f"{CHILDREN}/{child_id}", None),
            ("PATCH", f"{CHILDREN}/{child_id}", {"school_id": "x"}),
            ("GET", CHILDREN, None),
        ]
        for method, url, body in requests:
            r = await client.request(method, url, json=body)
            assert r.status_code == 401, (method, url)
            assert r.headers["www-authenticate"] == "Bearer"
            assert r.json()["detail"]["message_en"] == "missing bearer token"

            r = await client.request(method, url, json=body, headers={"Authorization": "Bearer not.a.token"})
            assert r.status_code == 401, (method, url)

            r = await client.request(method, url, json=body, headers=token(settings, Role.helper, county))
            assert r.status_code == 403, (method, url)
            assert r.json()["detail"]["message_zh"]


async def test_a_township_sees_and_edits_only_its_own_children(settings, engines, county):
    mine, theirs = f"{county}001", f"{county}002"
    async with running_app(REGISTRY, settings) as (_, client):
        own = [await register(client, settings, village_code=f"{mine}{n:03d}") for n in (1, 2)]
        other = await register(client, settings, village_code=f"{theirs}001")
        township = token(settings, Role.township, mine)

        assert (await client.get(f"{CHILDREN}/{own[0]}", headers=township)).status_code == 200
        r = await client.get(f"{CHILDREN}/{other}", headers=township)
        assert r.status_code == 404
        assert r.json()["detail"]["message_zh"]
        before = await row_counts(engines)
        r = await client.patch(f"{CHILDREN}/{other}", json={"school_id": "school-x"}, headers=township)
        assert r.status_code == 404
        # nor can it move its own child into the other township
        r = await client.patch(f"{CHILDREN}/{own[0]}", json={"village_code": f"{theirs}001"}, headers=township)
        assert r.status_code == 404
        r = await client.post(CHILDREN, json=child_payload(village_code=f"{theirs}002"), headers=township)
        assert r.status_code == 403
        assert await row_counts(engines) == before

        r = await client.get(CHILDREN, headers=township)
        assert r.status_code == 200
        listed = {c["id"] for c in r.json()["items"]}
        assert listed == set(own) and r.json()["total"] == 2
        # asking for the county does not widen a township's view; asking for another township shows nothing
        r = await client.get(CHILDREN, params={"region": county}, headers=township)
        assert {c["id"] for c in r.json()["items"]} == set(own)
        r = await client.get(CHILDREN, params={"region": theirs}, headers=township)
        assert (r.json()["items"], r.json()["total"]) == ([], 0)

    assert await scalar(engines["registry"], "SELECT school_id FROM children WHERE id = :id", id=other) == "school-1"


# --- lists ----------------------------------------------------------------------------


async def test_list_filters_by_region_school_and_risk_and_paginates(settings, county):
    admin = token(settings)
    async with running_app(REGISTRY, settings) as (_, client):
        made = {
            "a": await register(client, settings, village_code=village(county, 1, 1), school_id="s-east"),
            "b": await register(client, settings, village_code=village(county, 1, 2), school_id="s-east",
                                risk_categories=["dropout"]),
            "c": await register(client, settings, village_code=village(county, 1, 3), school_id="s-west",
                                risk_categories=["dropout", "dibao_family"]),
            "d": await register(client, settings, village_code=village(county, 2, 1), school_id="s-east"),
            "e": await register(client, settings, village_code=village(county, 2, 2), school_id="s-west",
                                risk_categories=["orphan"]),
        }
        by_id = {v: k for k, v in made.items()}

        async def listed(**params) -> tuple[list[str], int]:
            r = await client.get(CHILDREN, params=params, headers=admin)
            assert r.status_code == 200, r.text
            return [by_id[c["id"]] for c in r.json()["items"]], r.json()["total"]

        assert await listed(region=county) == (["a", "b", "c", "d", "e"], 5)
        assert await listed(region=f"{county}002") == (["d", "e"], 2)
        assert await listed(region=village(county, 1, 3)) == (["c"], 1)
        assert await listed(region=county, school_id="s-east") == (["a", "b", "d"], 3)
        assert await listed(region=county, risk="dropout") == (["b", "c"], 2)
        assert await listed(region=county, risk="dropout", school_id="s-west") == (["c"], 1)
        assert await listed(region=f"{county}001", school_id="s-west") == (["c"], 1)

        pages = [await client.get(CHILDREN, params={"region": county, "page": p, "page_size": 2}, headers=admin)
                 for p in (1, 2, 3, 4)]
        bodies = [p.json() for p in pages]
        assert [(b["total"], b["page"], b["page_size"]) for b in bodies] == [(5, p, 2) for p in (1, 2, 3, 4)]
        assert [[by_id[c["id"]] for c in b["items"]] for b in bodies] == [["a", "b"], ["c", "d"], ["e"], []]

        for params, field in (
            ({"region": "41a"}, "region"), ({"risk": "unhappy"}, "risk"), ({"page": 0}, "page"),
            ({"page_size": 1000}, "page_size"),
        ):
            r = await client.get(CHILDREN, params=params, headers=admin)
            assert r.status_code == 422, params
            assert [e["field"] for e in r.json()["errors"]] == [field]


# --- updates --------------------------------------------------------------------------


async def test_patch_emits_only_the_fields_that_changed(settings, engines, county):
    async with running_app(REGISTRY, settings) as (_, client):
        child_id = await register(client, settings, village_code=village(county))
        url, admin = f"{CHILDREN}/{child_id}", token(settings)

        r = await client.patch(url, json={"school_id": "school-2", "class_name": "三年级二班"}, headers=admin)
        assert r.status_code == 200, r.text
        assert (r.json()["school_id"], r.json()["version"]) == ("school-2", 3)

        r = await client.patch(url, json={"guardian": {"phone": "13600136000"}}, headers=admin)
        assert (r.json()["guardian"]["phone"], r.json()["version"]) == ("13600136000", 4)

        before = await row_counts(engines)
        r = await client.patch(url, json={"school_id": "school-2", "risk_categories": []}, headers=admin)
        assert (r.status_code, r.json()["version"]) == (200, 4)
        assert await row_counts(engines) == before  # no change: no event, no write

        r = await client.patch(url, json={"risk_categories": ["orphan", "dropout", "orphan"]}, headers=admin)
        assert (r.json()["risk_categories"], r.json()["version"]) == (["dropout", "orphan"], 5)
        r = await client.patch(url, json={"risk_categories": ["dropout", "orphan"]}, headers=admin)
        assert r.json()["version"] == 5  # the same set in another order is no change

    events = [(e["type"], e["aggregate_version"], e["data"]) for e in await outbox_events(engines, child_id)][3:]
    assert [(t, v) for t, v, _ in events] == [
        ("registry.child.updated", 3),
        ("registry.child.updated", 4),
        ("registry.child.contacts", 4),
        ("registry.child.updated", 5),
    ]
    school, phone, card, risk = (d for _, _, d in events)
    assert school["changed_fields"] == ["school_id"]
    assert school["changes"]["school_id"] == "school-2"
    assert phone["changed_fields"] == ["guardian.phone"]
    assert "13600136000" not in json.dumps(phone)
    assert card["guardian"]["phone"] == "13600136000"
    assert risk["changed_fields"] == ["risk_categories"]
    assert risk["changes"]["risk_categories"] == ["dropout", "orphan"]
