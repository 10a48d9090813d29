"""`shouhu import census FILE` against the registry as a real process."""

from __future__ import annotations

import asyncio

import typer
from typer.testing import CliRunner

from services.registry.entrypoints.cli_import import EXIT_ROWS_REJECTED, app
from shared.auth import Role, issue_token
from tests.infra import free_port
from tests.integration.registry_census.rosters import good, row, xlsx
from tests.support import ServiceProcess

# As shared/cli.py mounts it.
shouhu = typer.Typer()
shouhu.add_typer(app, name="import")


async def test_the_cli_uploads_follows_the_job_and_saves_the_report(settings, tmp_path):
    roster = tmp_path / "名单.xlsx"
    roster.write_bytes(xlsx([good(1, "410523100401"), row(good(2, "410523100401"), 性别="?")]))
    proc = await ServiceProcess("registry", settings, free_port()).start().ready()
    try:
        args = ["import", "census", str(roster), "--url", proc.url, "--token", issue_token(settings, role=Role.village_supervisor, region="410523100401")]
        result = await asyncio.to_thread(CliRunner().invoke, shouhu, args)
    finally:
        proc.stop()
    assert result.exit_code == EXIT_ROWS_REJECTED, result.output
    assert "registered 1" in result.output and "rejected 1" in result.output
    assert "第3行" in result.output and "性别" in result.output
    assert (tmp_path / "名单-导入结果.xlsx").stat().st_size > 0
