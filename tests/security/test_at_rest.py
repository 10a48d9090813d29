"""Protection at rest: resident ID numbers sealed under rotatable keys (身份证号加密存储), the guardian's
consent (知情同意), and closed archives de-identified after the retention period (去标识化)."""

from __future__ import annotations

import base64
import json
import os
from datetime import date, timedelta

import pytest
from sqlalchemy import text

from services.registry.adapters.id_vault import IdVault
from services.registry.app import SPEC as REGISTRY
from services.registry.domain.rules import id_check_char
from services.registry.service_layer import protection
from shared.auth import Role
from shared.clock import today_local
from shared.crypto import KeyRing, KeyRingError
from tests.support import child_payload, fresh_county, running_app, token

CHILDREN = "/api/v1/children"


def _spec(*ids: str) -> str:
    return ",".join(f"{i}:{base64.b64encode(os.urandom(32)).decode()}" for i in ids)


def test_a_sealed_value_opens_with_its_key_and_context_only():
    ring = KeyRing.parse(_spec("k1"))
    sealed = ring.seal("410523201406010023", b"record-1")
    assert "410523201406010023" not in sealed and sealed.startswith("k1:")
    assert ring.open(sealed, b"record-1") == "410523201406010023"
    with pytest.raises(KeyRingError):
        ring.open(sealed, b"record-2")  # copied onto another record
    tampered = sealed[:-4] + ("AAAA" if not sealed.endswith("AAAA") else "BBBB")
    with pytest.raises(KeyRingError):
        ring.open(tampered, b"record-1")
    with pytest.raises(KeyRingError):
        KeyRing.parse(_spec("other")).open(sealed, b"record-1")


def test_the_newest_key_seals_and_the_older_ones_still_open():
    old = _spec("2025")
    sealed_old = KeyRing.parse(old).seal("x", b"c")
    rotated = KeyRing.parse(old + "," + _spec("2026"))
    assert rotated.current == "2026" and not rotated.is_current(sealed_old)
    assert rotated.open(sealed_old, b"c") == "x"
    assert rotated.is_current(rotated.seal("x", b"c"))


@pytest.mark.parametrize("spec", ["", "k1:not-base64!", "k1:" + base64.b64encode(b"short").decode(), "bad id:" + "A" * 44])
def test_an_unusable_key_ring_is_refused(spec):
    with pytest.raises(KeyRingError):
        KeyRing.parse(spec)


def id_number(birth: date, area: str, serial: int = 2) -> str:
    first17 = f"{area}{birth:%Y%m%d}00{serial}"
    return first17 + id_check_char(first17)


async def _register(client, settings, **over) -> str:
    r = await client.post(CHILDREN, json=child_payload(**over), headers=token(settings))
    assert r.status_code == 201, r.text
    return r.json()["id"]


async def _row(engines, child_id: str) -> dict:
    async with engines["registry"].connect() as conn:
        return dict((await conn.execute(text("SELECT * FROM children WHERE id = :id"), {"id": child_id})).mappings().one())


async def test_the_number_is_sealed_in_the_database_an_admin_sees_it_and_rotation_reseals_it(settings, engines):
    county = fresh_county()
    number = id_number(date(2014, 6, 1), county)
    old_keys = _spec("2025")
    settings = settings.model_copy(update={"id_encryption_keys": old_keys})
    async with running_app(REGISTRY, settings) as (_, client):
        child_id = await _register(client, settings, village_code=f"{county}001001", id_number=number)
        row = await _row(engines, child_id)
        assert row["id_number_sealed"].startswith("2025:")
        assert number not in json.dumps(row, default=str)  # not in clear anywhere in the row
        r = await client.get(f"{CHILDREN}/{child_id}/id-number", headers=token(settings))
        assert r.status_code == 200 and r.json()["id_number"] == number
        township = token(settings, Role.township, f"{county}001")
        assert (await client.get(f"{CHILDREN}/{child_id}/id-number", headers=township)).status_code == 403
        assert number not in (await client.get(f"{CHILDREN}/{child_id}", headers=township)).text
        # Search by the full number still works (the keyed hash).
        found = await client.get(CHILDREN, params={"q": number}, headers=token(settings))
        assert [c["id"] for c in found.json()["items"]] == [child_id]

    rotated = settings.model_copy(update={"id_encryption_keys": old_keys + "," + _spec("2026")})
    async with running_app(REGISTRY, rotated) as (app, client):
        rt = app.state.runtime
        # The county of this test only: the worker's database holds other tests' archives, sealed with their keys.
        assert await protection.rotate_keys(rt.uow, IdVault.from_settings(rotated), region=county) == 1
        assert (await _row(engines, child_id))["id_number_sealed"].startswith("2026:")
        assert await protection.rotate_keys(rt.uow, IdVault.from_settings(rotated), region=county) == 0
    only_new = rotated.model_copy(update={"id_encryption_keys": rotated.id_encryption_keys.split(",")[1]})
    async with running_app(REGISTRY, only_new) as (_, client):
        r = await client.get(f"{CHILDREN}/{child_id}/id-number", headers=token(only_new))
        assert r.json()["id_number"] == number  # the old key is no longer needed


async def test_consent_is_recorded_withdrawn_and_announced_on_registry_events(settings, engines):
    county = fresh_county()
    async with running_app(REGISTRY, settings) as (_, client):
        child_id = await _register(client, settings, village_code=f"{county}001001")
        url = f"{CHILDREN}/{child_id}/consent"
        r = await client.put(url, json={"consent": "withdrawn"}, headers=token(settings, Role.township, f"{county}001"))
        assert r.status_code == 200 and r.json()["consent"] == "withdrawn", r.text
        again = await client.put(url, json={"consent": "withdrawn"}, headers=token(settings))
        assert again.json()["version"] == r.json()["version"]  # no change, no event
        other = token(settings, Role.township, "110101001")
        assert (await client.put(url, json={"consent": "given"}, headers=other)).status_code == 404
        bad = await client.put(url, json={"consent": "maybe"}, headers=token(settings))
        assert bad.status_code == 422
        future = (today_local() + timedelta(days=3)).isoformat()
        late = await client.put(url, json={"consent": "given", "effective_on": future}, headers=token(settings))
        assert late.status_code == 422 and "effective_on" in late.text
    async with engines["registry"].connect() as conn:
        types = (await conn.execute(text(
            "SELECT payload::json->>'type' FROM outbox WHERE aggregate_id = :id AND stream LIKE '%registry.events'"
        ), {"id": child_id})).scalars().all()
    assert types.count("registry.consent.changed") == 1


async def test_purge_closed_deidentifies_archives_closed_longer_than_the_retention_period(settings, engines):
    county = fresh_county()
    today = today_local()
    number = id_number(date(2014, 6, 1), county)
    async with running_app(REGISTRY, settings) as (app, client):
        old = await _register(client, settings, village_code=f"{county}001001", name="旧档案儿童", id_number=number)
        recent = await _register(client, settings, village_code=f"{county}001001", name="新结档儿童")
        still_open = await _register(client, settings, village_code=f"{county}001001", name="在档儿童")
        note = {"noted_on": "2020-01-01", "topic": "family_education", "text": "奶奶说孩子想念在东莞打工的父亲"}
        assert (await client.post(f"{CHILDREN}/{old}/growth-notes", json=note, headers=token(settings))).status_code == 201
        for child, closed_on in ((old, today - timedelta(days=40)), (recent, today - timedelta(days=10))):
            r = await client.post(f"{CHILDREN}/{child}/close", json={"reason": "moved_away", "closed_on": closed_on.isoformat()},
                                  headers=token(settings))
            assert r.status_code == 204, r.text
        before = await _row(engines, old)

        assert await protection.purge_closed(app.state.runtime.uow, retention_days=30, today=today) == 1
        assert await protection.purge_closed(app.state.runtime.uow, retention_days=30, today=today) == 0

        row = await _row(engines, old)
        stored = json.dumps(row, default=str)
        for personal in ("旧档案儿童", number, number[-4:], "13800138000", "13900139000", "奶奶", "父亲", "东莞"):
            assert personal not in stored
        assert row["id_number_hash"] is row["id_number_sealed"] is None and row["deidentified_on"] == today
        # The facts and the pseudonymous id stay.
        assert (row["birth_date"], row["village_code"], row["closed_reason"]) == (before["birth_date"], before["village_code"], "moved_away")
        assert row["guardian"] == {"relationship": "grandparent", "capacity": "limited"}
        notes = (await client.get(f"{CHILDREN}/{old}/growth-notes", headers=token(settings))).json()
        assert [n["text"] for n in notes] == [protection.PLACEHOLDER]
        assert (await _row(engines, recent))["name"] == "新结档儿童"
        assert (await _row(engines, still_open))["name"] == "在档儿童"
        async with engines["registry"].connect() as conn:
            cards = (await conn.execute(text(
                "SELECT payload FROM outbox WHERE aggregate_id = :id AND payload::json->>'type' = 'registry.child.contacts' ORDER BY id"
            ), {"id": old})).scalars().all()
        last = json.loads(cards[-1])["data"]
        assert last["child_name"] == protection.PLACEHOLDER and last["guardian"] == {"name": None, "phone": None}


async def test_purge_drops_the_rosters_of_imports_finished_longer_than_the_retention_period(settings, engines):
    """The roster goes, the import's counts and row outcomes stay, and its report answers 410 naming it."""
    from tests.integration.registry_census.rosters import csv_bytes, good, row

    county = fresh_county()
    township, village = f"{county}001", f"{county}001001"
    clerk = token(settings, Role.township, township)
    rosters = {
        # No ID numbers: a number is on one open archive only, and the tests share a database.
        "old": [row(good(1, village, id_number=None), 姓名="覃旧名单"), row(good(2, village, id_number=None), 性别="未知")],
        "recent": [row(good(3, village, id_number=None), 姓名="覃新名单")],
    }
    today = today_local()
    async with running_app(REGISTRY, settings) as (app, client):
        jobs = {}
        for which, rows in rosters.items():
            r = await client.post("/api/v1/imports/census", files={"file": ("名单.csv", csv_bytes(rows))}, headers=clerk)
            assert r.status_code == 201, r.text
            jobs[which] = r.json()
        async with engines["registry"].begin() as conn:  # finished 31 days ago: past a retention of 30
            await conn.execute(text("UPDATE census_imports SET finished_at = now() - interval '31 days' WHERE id = :id"),
                               {"id": jobs["old"]["id"]})

        assert await protection.purge_rosters(app.state.runtime.uow, retention_days=30, today=today) >= 1
        assert await protection.purge_rosters(app.state.runtime.uow, retention_days=30, today=today) == 0

        async with engines["registry"].connect() as conn:
            stored = {w: dict((await conn.execute(text("SELECT * FROM census_imports WHERE id = :id"), {"id": j["id"]})).mappings().one())
                      for w, j in jobs.items()}
        old = stored["old"]
        assert bytes(old["content"]) == b"" and old["content_key"] == f"purged:{today.isoformat()}"
        assert (old["registered"], old["rejected"], old["rows_total"]) == (1, 1, 2)  # the counts stay
        assert stored["recent"]["content_key"] == IdVault.from_settings(settings).keys.current
        assert len(bytes(stored["recent"]["content"])) > 0
        # Nothing to re-seal in a purged roster (and the recent one is under the current key).
        assert await protection.rotate_roster_keys(app.state.runtime.uow, IdVault.from_settings(settings), region=county) == 0

        progress = await client.get(f"/api/v1/imports/{jobs['old']['id']}", headers=clerk)
        assert progress.status_code == 200
        assert [(x["row"], x["outcome"]) for x in progress.json()["report"]] == [(3, "rejected")]  # outcome and reason stay
        assert progress.json()["report"][0]["errors"][0]["column"] == "性别"
        gone = await client.get(f"/api/v1/imports/{jobs['old']['id']}/report.xlsx", headers=clerk)
        assert gone.status_code == 410, gone.text
        detail = gone.json()["detail"]
        assert jobs["old"]["id"] in detail["message_zh"] and jobs["old"]["id"] in detail["message_en"]
        assert "purged under retention" in detail["message_en"] and "保存期限" in detail["message_zh"]
        recent = await client.get(f"/api/v1/imports/{jobs['recent']['id']}/report.xlsx", headers=clerk)
        assert recent.status_code == 200
        audit = await client.get("/api/v1/audit", params={"record_id": jobs["old"]["id"]}, headers=token(settings))
        assert audit.json() == []  # nothing left the system: no export on record
