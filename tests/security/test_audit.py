"""The record of access (访问日志): reads of a child's archive are on record with who, from where
and why; only an admin reads the log; nobody can change or delete it, not even the superuser."""

from __future__ import annotations

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
