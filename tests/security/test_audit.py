"""The record of access (访问日志): reads of a child's archive are on record with who, from where
and why; only an admin reads the log; nobody can change or delete it, not even the superuser."""

from __future__ import annotations

import uuid

import asyncpg
import pytest
from sqlalchemy import text

from services.registry.app import SPEC as REGISTRY
from shared.auth import Role
from shared.settings import SERVICES
from tests.support import child_payload, fresh_county, running_app, token


async def test_reading_and_changing_an_archive_is_on_record_and_an_admin_can_query_it(settings):
    county = fresh_county()
    async with running_app(REGISTRY, settings) as (_, client):
        r = await client.post("/api/v1/children", json=child_payload(village_code=f"{county}100001"), headers=token(settings))
        child_id = r.json()["id"]
        township = token(settings, Role.township, f"{county}100") | {"X-Purpose": "referral:42"}
        assert (await client.get(f"/api/v1/children/{child_id}", headers=township)).status_code == 200
        assert (await client.get(f"/api/v1/children/{child_id}/absences", headers=township)).status_code == 200
        # Another township is refused: not a read of the archive.
        other = token(settings, Role.township, f"{county}101")
        assert (await client.get(f"/api/v1/children/{child_id}", headers=other)).status_code == 404

        assert (await client.get("/api/v1/audit", headers=township)).status_code == 403
        r = await client.get("/api/v1/audit", params={"record_id": child_id}, headers=token(settings))
        assert r.status_code == 200, r.text
    entries = r.json()
    assert [(e["action"], e["role"]) for e in reversed(entries)] == [
        ("create", "admin"), ("read", "township"), ("read", "township"),
    ]
    read = entries[0]
    assert (read["kind"], read["purpose"], read["subject"]) == ("child", "referral:42", "dev")
    assert read["client"]  # the caller's address


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("statement", [
    "UPDATE audit_log SET subject = 'someone else'", "DELETE FROM audit_log", "TRUNCATE audit_log",
])
async def test_nobody_can_change_or_delete_the_audit_log(service, statement, engines):
    async with engines[service].begin() as conn:
        await conn.execute(text("INSERT INTO audit_log (subject, role, action, kind, record_id) "
                                "VALUES ('u', 'admin', 'read', 'child', 'x')"))
    with pytest.raises(Exception) as refused:
        async with engines[service].begin() as conn:
            await conn.execute(text(statement))
    assert isinstance(refused.value.orig.__cause__, asyncpg.InsufficientPrivilegeError), refused.value
    assert "append-only" in str(refused.value)


async def _xmins(engine, record_id: str) -> tuple[str, list[tuple[str, str]]]:
    """The transaction that last wrote the child's row, and (action, transaction) of its audit rows."""
    async with engine.connect() as conn:
        child = await conn.scalar(text("SELECT xmin::text FROM children WHERE id = :id"), {"id": record_id})
        rows = (await conn.execute(text(
            "SELECT action, xmin::text FROM audit_log WHERE record_id = :id ORDER BY id"), {"id": record_id})).all()
    return child, [tuple(r) for r in rows]


async def test_a_write_and_its_record_of_access_commit_in_one_transaction(settings, engines):
    county = fresh_county()
    async with running_app(REGISTRY, settings) as (_, client):
        r = await client.post("/api/v1/children", json=child_payload(village_code=f"{county}100001"), headers=token(settings))
        assert r.status_code == 201, r.text
        child_id = r.json()["id"]
        registered, audited = await _xmins(engines["registry"], child_id)
        assert audited == [("create", registered)]  # exactly one, written by the registration's transaction

        r = await client.patch(f"/api/v1/children/{child_id}", json={"class_name": "四年级一班"}, headers=token(settings))
        assert r.status_code == 200, r.text
        changed, audited = await _xmins(engines["registry"], child_id)
    assert changed != registered
    assert audited == [("create", registered), ("update", changed)]


async def test_a_change_that_fails_before_its_commit_leaves_neither_the_change_nor_its_record(settings, engines, monkeypatch):
    """A crash after the change and its audit row reached the database, before COMMIT: both go."""
    from services.registry.service_layer.unit_of_work import RegistryUnitOfWork

    async def crash_before_commit(uow) -> None:
        await uow.session.flush()  # the rows are written in the open transaction...
        raise RuntimeError("crash before commit")  # ...which never commits

    county = fresh_county()
    async with running_app(REGISTRY, settings) as (_, client):
        child_id = str(uuid.uuid4())
        body = child_payload(village_code=f"{county}100001", client_id=child_id)
        with monkeypatch.context() as m:
            m.setattr(RegistryUnitOfWork, "commit", crash_before_commit)
            with pytest.raises(RuntimeError, match="crash before commit"):
                await client.post("/api/v1/children", json=body, headers=token(settings))
        assert await _xmins(engines["registry"], child_id) == (None, [])

        assert (await client.post("/api/v1/children", json=body, headers=token(settings))).status_code == 201
        with monkeypatch.context() as m:
            m.setattr(RegistryUnitOfWork, "commit", crash_before_commit)
            with pytest.raises(RuntimeError, match="crash before commit"):
                await client.patch(f"/api/v1/children/{child_id}", json={"class_name": "四年级一班"}, headers=token(settings))
        r = await client.get(f"/api/v1/children/{child_id}", headers=token(settings))
    assert r.json()["class_name"] == child_payload()["class_name"]
    registered, audited = await _xmins(engines["registry"], child_id)
    assert [action for action, _ in audited] == ["create", "read"]  # no update: it never happened
    assert audited[0][1] == registered


async def test_each_child_a_census_import_registers_is_on_record_with_the_importer_and_the_import(settings, engines):
    """One ``create`` row per child the roster registered, written with the chunk's children (one
    transaction); a row refused by validation or already registered leaves none."""
    from shared.auth import issue_token
    from tests.integration.registry_census.rosters import csv_bytes, good, row

    county = fresh_county()
    village = f"{county}001001"
    clerk = {"Authorization": f"Bearer {issue_token(settings, role=Role.township, subject='clerk-census', region=f'{county}001')}"}
    # No ID numbers: a number is on one open archive only, and the tests share a database.
    first, second, bad = (good(n, village, id_number=None) for n in (1, 2, 3))
    roster = csv_bytes([first, second, row(bad, 性别="未知"), first])
    async with running_app(REGISTRY, settings) as (_, client):
        r = await client.post("/api/v1/imports/census", files={"file": ("名单.csv", roster)}, headers=clerk)
        assert r.status_code == 201, r.text
        job = r.json()
        assert (job["registered"], job["rejected"], job["already_registered"]) == (2, 1, 1), job["report"]
    async with engines["registry"].connect() as conn:
        registered = (await conn.execute(text(
            "SELECT child_id::text, outcome FROM census_import_rows WHERE import_id = :id ORDER BY row_number"
        ), {"id": job["id"]})).all()
        audited = (await conn.execute(text(
            "SELECT record_id, subject, role, action, kind, purpose FROM audit_log WHERE purpose = :id ORDER BY id"
        ), {"id": job["id"]})).all()
    children = [c for c, outcome in registered if outcome == "registered"]
    assert [o for _, o in registered] == ["registered", "registered", "rejected", "already_registered"]
    assert sorted(a.record_id for a in audited) == sorted(children)
    assert {(a.subject, a.role, a.action, a.kind) for a in audited} == {("clerk-census", "census_import", "create", "child")}
    for child_id in children:
        written, records = await _xmins(engines["registry"], child_id)
        assert records == [("create", written)]  # in the transaction that wrote the child
