"""`shouhu reporting rebuild` gives the same figures from the streams alone, and the quarterly
report carries them as JSON, as an xlsx with Chinese headers and as the printable work brief."""

import json
from io import BytesIO

from openpyxl import load_workbook

from services.registry.app import SPEC as REGISTRY
from services.reporting.app import SPEC as REPORTING
from services.reporting.entrypoints.cli import rebuild
from services.reporting.service_layer import queries
from services.visits.app import SPEC as VISITS
from shared.auth import Role
from shared.clock import today_local
from shared.db import make_sessionmaker
from shared.uow import SqlUnitOfWork
from tests.integration.reporting.scenario import comparable, direct_figures, fresh_reporting, run_scenario, this_quarter
from tests.support import fresh_county, running_app, token, wait_until


async def _everything(engine, county, period, today) -> str:
    async with SqlUnitOfWork(make_sessionmaker(engine)) as uow:
        figures = await queries.figures(uow, county, period, today)
        places = await queries.places(uow, county, today)
        trend = await queries.trend(uow, county, period.months)
        drill = await queries.children_behind(uow, county, "children", today, 100, 0)
    return json.dumps([figures, places, trend, drill], default=str, sort_keys=True)


async def test_rebuild_from_the_streams_into_fresh_tables_gives_identical_figures(settings, engines, infra):
    county, today = fresh_county(), today_local()
    period = this_quarter(today)
    async with running_app(REGISTRY, settings) as (_, registry), running_app(VISITS, settings) as (_, visits), \
            running_app(REPORTING, settings) as (_, reporting):
        script = await run_scenario(registry, visits, settings, county)
        expected = json.loads(json.dumps(await direct_figures(engines, county, today, period, script), default=str))
        auth = token(settings, Role.county_office, county)

        async def caught_up() -> bool:
            figures = (await reporting.get("/api/v1/figures", params={"region": county}, headers=auth)).json()
            places = (await reporting.get("/api/v1/figures/places", params={"region": county}, headers=auth)).json()
            return comparable(figures, places, expected) == expected

        await wait_until(caught_up, timeout=30, what="reporting to apply the scenario")
        live = await _everything(engines["reporting"], county, period, today)

        # Quarterly report: JSON, xlsx (one sheet per section, Chinese headers), printable brief.
        params = {"region": county, "quarter": period.label}
        report = (await reporting.get("/api/v1/reports/quarterly", params=params, headers=auth)).json()
        headline = {h["key"]: h for h in report["headlines"]}
        assert headline["total"]["value"] == 5 and headline["returned"]["value"] == 1 and headline["returned"]["previous"] == 0
        xlsx = await reporting.get("/api/v1/reports/quarterly", params={**params, "format": "xlsx"}, headers=auth)
        book = load_workbook(BytesIO(xlsx.content))
        assert book.sheetnames == ["总览", "儿童", "建档", "监护", "走访", "活动", "辍学", "下级地区"]
        rows = {r[0]: r[1] for r in book["总览"].iter_rows(min_row=3, values_only=True)}
        assert rows["留守儿童数"] == 5 and rows["劝返复学"] == 1 and rows["30天以上未联系"] == 3
        assert [c.value for c in book["下级地区"][1]][:2] == ["地区/学校", "留守儿童数"]
        brief = await reporting.get("/api/v1/reports/quarterly", params={**params, "format": "pdf"}, headers=auth)
        assert "工作简报" in brief.text and "劝返复学" in brief.text and "测试儿童" not in brief.text
        bad = await reporting.get("/api/v1/reports/quarterly", params={**params, "quarter": "2026Q7"}, headers=auth)
        assert bad.status_code == 422 and bad.json()["detail"]["errors"][0]["field"] == "quarter"

    # A fresh, migrated database; the replay of the test's streams into it.
    async with fresh_reporting(infra, "shouhu_rebuild") as (url, engine):
        replayed = await rebuild(settings.model_copy(update={"reporting_database_url": url}))
        assert replayed["registry.events"] > 6 and replayed["visits.events"] >= 5
        assert await _everything(engine, county, period, today) == live
        # Twice gives the same: the replay starts from empty tables.
        await rebuild(settings.model_copy(update={"reporting_database_url": url}))
        assert await _everything(engine, county, period, today) == live
