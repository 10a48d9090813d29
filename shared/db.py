"""Database plumbing shared by the services: metadata conventions, engine, Alembic."""

from __future__ import annotations

from pathlib import Path

from collections.abc import Sequence
from typing import Any

from sqlalchemy import BindParameter, ColumnElement, MetaData, Table, any_, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY, Insert, insert
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_metadata() -> MetaData:
    return MetaData(naming_convention=NAMING_CONVENTION)


def array_param(name: str, column) -> BindParameter:
    """A parameter holding a list of ``column``'s values, sent as one PostgreSQL array."""
    return bindparam(name, type_=ARRAY(column.type))


def insert_rows(table: Table, columns: Sequence[str]) -> Insert:
    """INSERT of many rows as ``SELECT ... FROM unnest(:col1, :col2, ...)``; execute it with
    ``columns_of(rows)``. One array per column: the statement is the same for any number of rows, so
    it is built, compiled and prepared once and PostgreSQL receives one message, not one per row.
    Scalar columns only (unnest flattens arrays)."""
    source = func.unnest(*(array_param(c, table.c[c]) for c in columns)).table_valued(*columns).render_derived()
    return insert(table).from_select(list(columns), select(*(source.c[c] for c in columns)))


def columns_of(rows: Sequence[dict[str, Any]]) -> dict[str, list[Any]]:
    """Rows as one list per column: the parameters of ``insert_rows``."""
    return {c: [r[c] for r in rows] for c in rows[0]} if rows else {}


def among(column, name: str) -> ColumnElement[bool]:
    """``column = ANY(:name)``, ``name`` a list: one parameter whatever the number of values (an IN
    list is a new statement for each length) and a hashed lookup in PostgreSQL."""
    return column == any_(array_param(name, column))


def make_engine(url: str, *, pool_size: int = 10, application_name: str = "shouhu", worker: bool = False) -> AsyncEngine:
    """``worker``: the engine of the service's own work (consumers, pollers, the outbox relay), which
    runs a transaction per batch, so a round trip per transaction counts (issue 10). No pre-ping on
    check-out (three round trips with asyncpg: BEGIN, a probe, ROLLBACK): a connection that died shows
    as an outage of that batch, which stays pending and is delivered again, and SQLAlchemy then
    discards the pool's older connections. And its connections start under the system scope, so a
    transaction under that scope skips the set_config (shared/security/rls.py, ``WORKER_SCOPE``)."""
    from shared.security.rls import WORKER_SCOPE, started_under

    server_settings = {
        "application_name": application_name,
        # A generic plan, chosen once while a table is small (a sequential scan), stays on for the
        # prepared statement's life: an IN of 200 ids over 10,000 rows then takes 50 ms, not 1 ms.
        "plan_cache_mode": "force_custom_plan",
    }
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=not worker,
        # Statement parameters hold names and phones: keep them out of exception texts and logs.
        hide_parameters=True,
        connect_args={"server_settings": server_settings | (WORKER_SCOPE if worker else {})},
        execution_options=started_under(WORKER_SCOPE) if worker else {},
    )


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker:
    """Sessions whose transactions carry the caller's scope (row-level security: shared/security/rls.py)."""
    from shared.security.rls import ScopedSession

    return async_sessionmaker(engine, expire_on_commit=False, sync_session_class=ScopedSession)


def migrations_dir(service: str) -> Path:
    return Path(__file__).resolve().parent.parent / "services" / service / "migrations"


def alembic_config(service: str, url: str):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir(service)))
    # Alembic's ini interpolation treats % specially.
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def run_migrations_online(metadata: MetaData) -> None:
    """Body of every service's ``migrations/env.py`` (async engine, one transaction)."""
    import asyncio

    from alembic import context
    from sqlalchemy.ext.asyncio import async_engine_from_config
    from sqlalchemy.pool import NullPool

    config = context.config

    def do_run(connection) -> None:
        context.configure(connection=connection, target_metadata=metadata, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()

    async def run() -> None:
        engine = async_engine_from_config(
            config.get_section(config.config_ini_section, {}), prefix="sqlalchemy.", poolclass=NullPool
        )
        async with engine.connect() as conn:
            await conn.run_sync(do_run)
        await engine.dispose()

    asyncio.run(run())


async def create_database(url: str) -> bool:
    """Create the database named in ``url`` if missing; True when it was created."""
    import asyncpg
    from sqlalchemy.engine import make_url

    u = make_url(url)
    conn = await asyncpg.connect(
        host=u.host, port=u.port or 5432, user=u.username, password=u.password, database="postgres"
    )
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", u.database)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{u.database}"')
        return not exists
    finally:
        await conn.close()
