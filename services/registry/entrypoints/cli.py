"""``shouhu registry ...``: operations on the archive's protection run by an operator."""

from __future__ import annotations

import asyncio

import typer

from shared.clock import today_local

app = typer.Typer(help="Registry (档案) operations: retention and keys.", no_args_is_help=True)


def _run(work) -> int:
    from services.registry.adapters.orm import outbox
    from services.registry.service_layer.unit_of_work import RegistryUnitOfWork
    from shared.db import make_engine, make_sessionmaker
    from shared.outbox import Outbox
    from shared.settings import get_settings

    settings = get_settings()

    async def go() -> int:
        engine = make_engine(settings.database_url("registry"), application_name="shouhu-registry-cli")
        sessions = make_sessionmaker(engine)
        try:
            return await work(lambda: RegistryUnitOfWork(sessions, Outbox(outbox, "registry", settings.stream_namespace)), settings)
        finally:
            await engine.dispose()

    return asyncio.run(go())


@app.command("purge-closed")
def purge_closed() -> None:
    """去标识化: remove names, phones, ID data and growth notes' text from archives closed longer than SHOUHU_RETENTION_DAYS,
    and the stored rosters of census imports finished longer ago than that."""
    from services.registry.service_layer.protection import purge_closed as purge, purge_rosters

    n = _run(lambda uow, s: purge(uow, retention_days=s.retention_days, today=today_local()))
    typer.echo(f"去标识化 de-identified: {n}")
    n = _run(lambda uow, s: purge_rosters(uow, retention_days=s.retention_days, today=today_local()))
    typer.echo(f"摸底名单已删除 census rosters purged: {n}")


@app.command("rotate-keys")
def rotate_keys() -> None:
    """Re-seal every ID number and every stored census roster under the newest key of
    SHOUHU_ID_ENCRYPTION_KEYS (then older keys can go); rosters stored in clear before migration 0007 are sealed."""
    from services.registry.adapters.id_vault import IdVault
    from services.registry.service_layer.protection import rotate_keys as rotate, rotate_roster_keys

    n = _run(lambda uow, s: rotate(uow, IdVault.from_settings(s)))
    typer.echo(f"重新加密 re-sealed: {n}")
    n = _run(lambda uow, s: rotate_roster_keys(uow, IdVault.from_settings(s)))
    typer.echo(f"摸底名单重新加密 census rosters re-sealed: {n}")
