"""The workers' engine (shared/db.py make_engine(worker=True)): its connections open under the system
scope, so a consumer's transaction needs no set_config, and a transaction under another scope still sets
its own, which never outlives it; no pre-ping, so a connection that died fails one transaction as an outage
(the batch stays pending) and the next one gets a new connection."""

from __future__ import annotations

import uuid

import asyncpg
import pytest
from sqlalchemy import event, text

from shared.auth import Principal, Role
from shared.db import make_engine, make_sessionmaker
from shared.messaging import _is_outage
from shared.security.access import Access, accessing
from tests.security.conftest import as_service_role  # noqa: F401  (the fixture: a non-superuser role)


@pytest.fixture
async def worker_of(as_service_role):  # noqa: F811
    """``worker_of(service)``: (sessionmaker, statements run) on a workers' engine as the non-superuser role."""
    made = []

    async def worker_of(service: str):
        await as_service_role(service)
        engine = make_engine(as_service_role.urls[service], pool_size=1, worker=True)
        made.append(engine)
        statements: list[str] = []
        event.listen(engine.sync_engine, "before_cursor_execute",
                     lambda conn, cursor, statement, *_: statements.append(statement))
        return make_sessionmaker(engine), statements

    yield worker_of
    for engine in made:
        await engine.dispose()


def _township(region: str) -> Access:
    return Access(Principal(subject="t1", role=Role.township, region=region))


async def _seen(sessions, county: str = "") -> tuple[int, str, int]:
    """(``county``'s child_facts rows visible, shouhu.scope, the connection's backend) in a transaction of ``sessions``."""
    async with sessions() as s:
        row = (await s.execute(text(
            "SELECT (SELECT count(*) FROM child_facts WHERE starts_with(village_code, :county)), "
            "current_setting('shouhu.scope', true), pg_backend_pid()"
        ), {"county": county})).one()
        return tuple(row)


async def test_a_workers_transaction_runs_under_the_system_scope_without_setting_it_and_another_scope_never_outlives_its_transaction(
    worker_of,
):
    sessions, statements = await worker_of("reporting")
    county = f"9{uuid.uuid4().int % 10**5:05d}"
    async with sessions() as s:  # a consumer's batch: the system scope may write any place
        await s.execute(text(
            "INSERT INTO child_facts (child_id, village_code, gender, left_behind_type, hukou_status, risk_categories) "
            "VALUES (:id, :village, 'female', 'both_parents_out', 'registered', '{}')"
        ), {"id": uuid.uuid4(), "village": f"{county}100201"})
        await s.commit()
    visible, scope, backend = await _seen(sessions, county)
    assert (visible, scope) == (1, "system")
    assert not [s for s in statements if "set_config" in s]

    with accessing(_township(f"{county}200")):  # another township: sets its scope, sees nothing
        assert (await _seen(sessions, county))[:2] == (0, f"region:{county}200")
    assert [s for s in statements if "set_config" in s]
    with pytest.raises(RuntimeError), accessing(_township(f"{county}200")):
        async with sessions() as s:  # a transaction under another scope that is rolled back
            await s.execute(text("SELECT 1"))
            raise RuntimeError("rolled back")
    assert await _seen(sessions, county) == (1, "system", backend)  # the same connection, back under its own scope


async def test_a_requests_engine_still_sets_the_system_scope_and_a_plain_connection_of_it_sees_nothing(
    as_service_role,  # noqa: F811
):
    sessions = await as_service_role("reporting")
    engine = make_engine(as_service_role.urls["reporting"], pool_size=1)
    try:
        assert (await _seen(make_sessionmaker(engine)))[1] == "system"
        async with engine.connect() as conn:  # outside a session: no scope, no protected row
            assert await conn.scalar(text("SELECT coalesce(current_setting('shouhu.scope', true), '')")) == ""
    finally:
        await engine.dispose()
    assert (await _seen(sessions))[1] == "system"


async def test_a_workers_connection_that_died_fails_one_transaction_as_an_outage_and_the_next_reconnects(
    infra, database_urls,
):
    engine = make_engine(database_urls["reporting"], pool_size=1, worker=True)
    sessions = make_sessionmaker(engine)
    try:
        backend = (await _seen(sessions))[2]
        admin = await asyncpg.connect(infra.pg_url.replace("+asyncpg", ""))
        try:
            await admin.execute("SELECT pg_terminate_backend($1)", backend)
        finally:
            await admin.close()
        with pytest.raises(Exception) as failed:  # no pre-ping: the dead connection is found by the batch
            await _seen(sessions)
        assert _is_outage(failed.value)  # an outage: the batch stays pending, never counted towards the DLQ
        visible, scope, again = await _seen(sessions)
        assert scope == "system" and again != backend
    finally:
        await engine.dispose()
