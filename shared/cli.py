"""``shouhu``: the operators' command (tokens, databases, DLQ, running the services)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from typing import Annotated, Optional

import typer

from shared.settings import SERVICE_PORTS, SERVICES, get_settings

app = typer.Typer(help="Shouhu (守护) operator commands.", no_args_is_help=True)
db_app = typer.Typer(help="Databases: create and migrate (建库、迁移).", no_args_is_help=True)
dlq_app = typer.Typer(help="Dead-letter queues (死信队列): list and replay.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(dlq_app, name="dlq")

ServiceArg = Annotated[Optional[str], typer.Argument(help=f"one of {', '.join(SERVICES)}; all when omitted")]


def _services(name: str | None) -> tuple[str, ...]:
    if name is None:
        return SERVICES
    if name not in SERVICES:
        raise typer.BadParameter(f"unknown service {name!r}; expected one of {', '.join(SERVICES)}")
    return (name,)


@app.command()
def token(
    role: Annotated[str, typer.Option(help="admin, county_office, township, village_supervisor, school, helper, agency")],
    region: Annotated[str, typer.Option(help="division-code prefix the token may see")] = "",
    agency: Annotated[Optional[str], typer.Option(help="agency code, for role agency")] = None,
    agency_kind: Annotated[Optional[str], typer.Option(
        help="agency kind, for role agency: education_bureau, civil_affairs, public_security, health, "
             "township_government, leading_group_office (without it the agency sees no case)")] = None,
    school: Annotated[Optional[str], typer.Option(help="school id, for role school")] = None,
    subject: Annotated[str, typer.Option(help="user id")] = "dev",
    hours: Annotated[float, typer.Option(help="validity")] = 8,
) -> None:
    """Print a bearer token signed with the configured key (the development key under SHOUHU_ENV=dev)."""
    from datetime import timedelta

    from shared.auth import Role, issue_token

    try:
        r = Role(role)
    except ValueError:
        raise typer.BadParameter(f"unknown role {role!r}", param_hint="--role") from None
    from shared.contracts.notifications_v1 import AgencyKind

    try:
        kind = AgencyKind(agency_kind) if agency_kind else None
    except ValueError:
        raise typer.BadParameter(f"unknown agency kind {agency_kind!r}", param_hint="--agency-kind") from None
    typer.echo(issue_token(get_settings(), role=r, subject=subject, region=region, agency=agency, agency_kind=kind,
                           school=school, ttl=timedelta(hours=hours)))


@db_app.command("create")
def db_create(service: ServiceArg = None) -> None:
    """Create the service databases that do not exist yet."""
    from shared.db import create_database

    settings = get_settings()
    for s in _services(service):
        created = asyncio.run(create_database(settings.database_url(s)))
        typer.echo(f"{s}: {'created' if created else 'exists'}")


@db_app.command("upgrade")
def db_upgrade(service: ServiceArg = None, revision: str = "heads") -> None:
    """Apply the Alembic migrations of one or all services."""
    from alembic import command

    from shared.db import alembic_config

    settings = get_settings()
    for s in _services(service):
        command.upgrade(alembic_config(s, settings.database_url(s)), revision)
        typer.echo(f"{s}: at {revision}")


@dlq_app.command("list")
def dlq_list_cmd(stream: Annotated[str, typer.Argument(help="stream name, e.g. registry.events")], count: int = 100) -> None:
    """List the entries of <stream>.dlq (JSON lines: id, event, group, error, deliveries)."""
    from shared.messaging import dlq_list

    async def run():
        from redis.asyncio import Redis

        settings = get_settings()
        async with Redis.from_url(settings.redis_url) as r:
            return await dlq_list(r, settings.stream(stream), count)

    for item in asyncio.run(run()):
        typer.echo(json.dumps(item, ensure_ascii=False))


@dlq_app.command("replay")
def dlq_replay_cmd(
    stream: Annotated[str, typer.Argument(help="stream name, e.g. registry.events")],
    ids: Annotated[Optional[list[str]], typer.Argument(help="DLQ entry ids; all when omitted")] = None,
) -> None:
    """Put DLQ entries back on their stream; groups that applied them already skip them."""
    from shared.messaging import dlq_replay

    async def run():
        from redis.asyncio import Redis

        settings = get_settings()
        async with Redis.from_url(settings.redis_url) as r:
            return await dlq_replay(r, settings.stream(stream), ids or None)

    typer.echo(f"replayed {asyncio.run(run())}")


@app.command()
def status(
    service: ServiceArg = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line instead of a table")] = False,
) -> None:
    """Consumer groups (消费组: pending, oldest pending idle, lag, DLQ), outbox backlog and deadlines due, per service."""
    import importlib

    from redis.asyncio import Redis

    from shared.db import make_engine
    from shared.messaging import dlq_name
    from shared.metrics import group_status, timers_due, unsent

    settings = get_settings()

    async def gather() -> list[dict]:
        rows = []
        async with Redis.from_url(settings.redis_url) as r:
            for name in _services(service):
                spec = importlib.import_module(f"services.{name}.app").SPEC
                engine = make_engine(settings.database_url(name), pool_size=1, application_name="shouhu-status")
                try:
                    row = {"service": name, "groups": []}
                    for sub in spec.subscriptions():
                        stream = settings.stream(sub.stream)
                        row["groups"].append(vars(await group_status(r, stream, name, dlq_name(stream))))
                    if spec.outbox is not None:
                        row["outbox_unsent"] = await unsent(engine, spec.outbox)
                    if spec.timers is not None:
                        row["timers_due"] = await timers_due(engine, spec.timers)
                finally:
                    await engine.dispose()
                rows.append(row)
        return rows

    for row in asyncio.run(gather()):
        if as_json:
            typer.echo(json.dumps(row, ensure_ascii=False))
            continue
        extras = "".join(f"  {k} {row[k]}" for k in ("outbox_unsent", "timers_due") if k in row)
        typer.echo(f"{row['service']}{extras}")
        for g in row["groups"]:
            typer.echo(
                f"  {g['stream']}: pending {g['pending']}, oldest pending {g['oldest_pending_idle_s']:.1f} s, "
                f"lag {g['lag'] if g['lag'] is not None else '?'}, dlq {g['dlq']}"
            )


def _url(service: str) -> str:
    return f"http://127.0.0.1:{SERVICE_PORTS[service]}"


@app.command()
def demo(
    county: Annotated[str, typer.Option(help="县级区划代码 of a county in the registry's reference list")] = "410523",
    children: Annotated[int, typer.Option(min=1, help="留守儿童 to register")] = 15_000,
    seed: Annotated[int, typer.Option(help="the same seed (on the same day) gives the same county")] = 1,
    workers: Annotated[int, typer.Option(min=1, max=64, help="concurrent requests")] = 8,
    registry_url: Annotated[str, typer.Option(envvar="SHOUHU_REGISTRY_URL")] = _url("registry"),
    visits_url: Annotated[str, typer.Option(envvar="SHOUHU_VISITS_URL")] = _url("visits"),
    notifications_url: Annotated[str, typer.Option(envvar="SHOUHU_NOTIFICATIONS_URL")] = _url("notifications"),
) -> None:
    """Load a demo county (演示县) through the running services' APIs: townships, villages, schools, children with
    parents and guardians, agreements, helpers, pairings, a month of visits, absences and dropouts (辍学)."""
    from datetime import timedelta

    import httpx
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from services.registry.domain.divisions import counties
    from shared.auth import Role, issue_token
    from shared.demo import DemoError, load, plan_county

    if county not in counties():
        raise typer.BadParameter(f"{county} is not in services/registry/reference/counties.csv", param_hint="--county")
    console = Console(stderr=True)
    plan = plan_county(county, children, seed)
    console.print(f"演示县 demo county {county} {counties()[county]}: " + ", ".join(f"{k} {v}" for k, v in plan.summary().items()))
    headers = {"Authorization": f"Bearer {issue_token(get_settings(), role=Role.admin, subject='shouhu-demo', ttl=timedelta(hours=4))}"}
    office = {"Authorization": f"Bearer {issue_token(get_settings(), role=Role.county_office, region=county, subject='shouhu-demo', ttl=timedelta(hours=4))}"}
    urls = {"registry": registry_url, "visits": visits_url, "notifications": notifications_url}

    async def go(progress: Progress) -> dict[str, int]:
        def step(description: str, total: int):
            task = progress.add_task(description, total=total)
            return lambda n: progress.advance(task, n)

        limits = httpx.Limits(max_connections=workers * 2)
        clients = {s: httpx.AsyncClient(base_url=u, headers=headers, timeout=60, limits=limits) for s, u in urls.items()}
        try:
            return await load(plan, clients, workers=workers, step=step, office=office)
        finally:
            for c in clients.values():
                await c.aclose()

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    try:
        with Progress(*columns, console=console) as progress:
            result = asyncio.run(go(progress))
    except (DemoError, httpx.HTTPError) as exc:
        console.print(f"[red]演示县未完成 demo stopped:[/red] {exc}")
        raise typer.Exit(1) from None
    if "already_loaded" in result:
        console.print(f"{county} already holds {result['already_loaded']} children: left as it is (another --county for a second one)")
        return
    from services.notifications.config import NotificationsConfig

    agencies = [a for a in NotificationsConfig().agencies().by_code.values() if a.region.startswith(county)]
    console.print("loaded: " + ", ".join(f"{k} {v}" for k, v in result.items()))
    console.print("部门 agencies (notifications configuration): " + (", ".join(f"{a.code} {a.name}" for a in agencies) or
                                                                    "none for this county (SHOUHU_NOTIFICATIONS_AGENCIES_FILE)"))


@app.command()
def run(service: ServiceArg = None) -> None:
    """Run one service, or all four as child processes in the foreground (Ctrl-C stops them)."""
    names = _services(service)
    procs = {s: subprocess.Popen([sys.executable, "-m", f"services.{s}"], env=os.environ.copy()) for s in names}
    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    while procs:
        for s, p in list(procs.items()):
            if p.poll() is not None:
                del procs[s]
                if not stopping:
                    typer.echo(f"{s} exited with {p.returncode}; stopping the others", err=True)
                    stop()
        time.sleep(0.2)


def _add_service_commands() -> None:
    """Commands that belong to one service, imported here so `shouhu` is the one entry point."""
    from services.notifications.agency_sim import command as agency_sim_command
    from services.registry.entrypoints.cli import app as registry_app
    from services.registry.entrypoints.cli_import import app as import_app
    from services.reporting.entrypoints.cli import app as reporting_app

    app.add_typer(import_app, name="import")
    app.add_typer(registry_app, name="registry")
    app.add_typer(reporting_app, name="reporting")
    app.command("agency-sim")(agency_sim_command)


_add_service_commands()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
