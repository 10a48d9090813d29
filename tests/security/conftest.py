"""A login role that is not a superuser (superusers bypass row-level security), granted a service's
tables, as the services should connect in production."""

from __future__ import annotations

import uuid

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from shared.db import make_engine, make_sessionmaker


@pytest.fixture
async def as_service_role(infra, database_urls):
    """``sessionmaker(service)``: sessions on the service's database as a fresh non-superuser role
    (``sessionmaker.urls[service]``: its database URL as that role, for a service run on it)."""
    role = f"shouhu_rls_{uuid.uuid4().hex[:10]}"
    admin = infra.pg_url.replace("+asyncpg", "")
    conn = await asyncpg.connect(admin)
    await conn.execute(f'CREATE ROLE "{role}" LOGIN NOSUPERUSER NOBYPASSRLS')
    await conn.close()
    engines, granted = [], []

    async def sessionmaker(service: str):
        url = make_url(database_urls[service])
        db = await asyncpg.connect(admin.rsplit("/", 1)[0] + "/" + url.database)
        try:
            await db.execute(f'GRANT USAGE ON SCHEMA public TO "{role}"; '
                             f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "{role}"; '
                             f'GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO "{role}"')
        finally:
            await db.close()
        granted.append(url.database)
        sessionmaker.urls[service] = url.set(username=role, password=None).render_as_string(hide_password=False)
        engine = make_engine(sessionmaker.urls[service], pool_size=1)
        engines.append(engine)
        return make_sessionmaker(engine)

    sessionmaker.urls = {}
    yield sessionmaker
    for engine in engines:
        await engine.dispose()
    for database in granted:
        db = await asyncpg.connect(admin.rsplit("/", 1)[0] + "/" + database)
        await db.execute(f'DROP OWNED BY "{role}"')
        await db.close()
    conn = await asyncpg.connect(admin)
    await conn.execute(f'DROP ROLE "{role}"')
    await conn.close()
