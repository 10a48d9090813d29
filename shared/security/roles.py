"""A service's database as a deployment has it (deploy/postgres/init/): owned by the service's own login,
``shouhu_<service>``, which is neither a superuser nor BYPASSRLS, so row-level security binds the service
(a superuser skips every policy). For the harnesses that start services on a server they administer, the
benches and chaos: the services connect as their roles, the harness reads as the superuser."""

from __future__ import annotations

import asyncpg
from sqlalchemy.engine import URL, make_url

from shared.settings import SERVICES, Settings


def service_role(service: str) -> str:
    return f"shouhu_{service}"


async def create_owned_database(conn: asyncpg.Connection, database: str, service: str) -> None:
    """``database``, new, owned by ``service``'s role (made if missing), on the server ``conn`` administers."""
    role = service_role(service)
    if not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role):
        await conn.execute(f'CREATE ROLE "{role}" LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE')
    await conn.execute(f'CREATE DATABASE "{database}" OWNER "{role}"')


def as_service_role(url: str, service: str) -> str:
    """``url`` connecting as ``service``'s role (trust authentication: no password)."""
    u = make_url(url)  # made anew: URL.set(password=None) keeps the admin's password
    return URL.create(u.drivername, service_role(service), None, u.host, u.port, u.database, u.query).render_as_string(
        hide_password=False)


def as_service_roles(settings: Settings) -> Settings:
    """The settings a service process runs with: each database as its service's role."""
    return settings.model_copy(update={
        f"{s}_database_url": as_service_role(settings.database_url(s), s) for s in SERVICES
    })
