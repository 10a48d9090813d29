"""``shouhu import census FILE``: upload a roster to the registry, follow the job, show a progress bar."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Optional

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from shared.settings import SERVICE_PORTS

app = typer.Typer(help="Imports (导入): census rosters (摸底排查).", no_args_is_help=True)

POLL_SECONDS = 0.5
SHOWN_PROBLEMS = 20
EXIT_ROWS_REJECTED = 3  # done, but some rows were not registered (2 is a usage error)


@app.command("census")
def census(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="roster .xlsx or .csv")],
    token: Annotated[str, typer.Option(envvar="SHOUHU_TOKEN", help="bearer token (see `shouhu token`)")],
    url: Annotated[str, typer.Option(envvar="SHOUHU_REGISTRY_URL", help="registry base URL")] = f"http://127.0.0.1:{SERVICE_PORTS['registry']}",
    report: Annotated[Optional[Path], typer.Option(help="where to save the report xlsx (default: next to FILE, when rows were not registered)")] = None,
) -> None:
    """Import a census roster (摸底排查名单) into the registry and show its progress."""
    console = Console(stderr=True)
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=600) as client:
        with file.open("rb") as fh:
            r = client.post("/api/v1/imports/census", files={"file": (file.name, fh)})
        if r.status_code not in (201, 202):
            console.print(f"[red]导入被拒绝 import refused ({r.status_code}):[/red] {_reason(r)}")
            raise typer.Exit(1)
        job = _follow(client, r.json(), console)
        _summarise(job, console)
        if job["status"] == "failed":  # the rows registered before it stay; the reason is the server's
            console.print(f"[red]导入中止 import failed:[/red] {job['error']}")
            raise typer.Exit(1)
        if job["report_total"]:
            target = report or file.with_name(f"{file.stem}-导入结果.xlsx")
            target.write_bytes(client.get(job["report_url"]).raise_for_status().content)
            console.print(f"结果表 report: {target}")
            raise typer.Exit(EXIT_ROWS_REJECTED)


def _follow(client: httpx.Client, job: dict, console: Console) -> dict:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(f"导入 {job['filename']}", total=job["rows_total"], completed=job["rows_done"])
        while job["status"] not in ("done", "failed"):
            time.sleep(POLL_SECONDS)  # a client polling a server's job, not a scheduled deadline
            job = client.get(f"/api/v1/imports/{job['id']}", params={"limit": SHOWN_PROBLEMS}).raise_for_status().json()
            progress.update(task, completed=job["rows_done"])
    return job


def _summarise(job: dict, console: Console) -> None:
    console.print(
        f"登记 registered {job['registered']}，已登记 already registered {job['already_registered']}，"
        f"未通过 rejected {job['rejected']}（共 {job['rows_total']} 行 rows）"
    )
    for row in job["report"][:SHOWN_PROBLEMS]:
        for e in row["errors"]:
            console.print(f"  第{row['row']}行 row {row['row']} {e['column'] or ''}: {e['message_zh']} / {e['message_en']}")
    if job["report_total"] > SHOWN_PROBLEMS:
        console.print(f"  …… {job['report_total'] - SHOWN_PROBLEMS} more rows in the report")


def _reason(r: httpx.Response) -> str:
    try:
        body = r.json()
    except ValueError:
        return r.text[:500]
    detail = body.get("detail", body)
    errors = detail.get("errors") if isinstance(detail, dict) else None
    if errors:
        return "; ".join(f"{e['message_zh']} / {e['message_en']}" for e in errors)
    return f"{detail.get('message_zh', '')} / {detail.get('message_en', '')}" if isinstance(detail, dict) else str(detail)
