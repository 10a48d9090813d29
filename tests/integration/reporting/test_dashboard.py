"""The dashboard in a real (headless, system) Chromium, served by a reporting process, on a small
scripted county: headline figures equal the API's, a click goes down to a township."""

import httpx

from services.registry.app import SPEC as REGISTRY
from services.visits.app import SPEC as VISITS
from shared.auth import Role, issue_token
from tests.browser import browser, screenshot_path  # noqa: F401 (the session fixture)
from tests.infra import free_port
from tests.integration.reporting.scenario import run_scenario
from tests.support import ServiceProcess, fresh_county, running_app, token, wait_until


async def test_dashboard_shows_the_api_figures_and_drills_down_to_a_township(settings, browser):  # noqa: F811
    county = fresh_county()
    reporting = ServiceProcess("reporting", settings, free_port()).start()
    try:
        await reporting.ready()
        auth = token(settings, Role.county_office, county)
        # The registry and visits run until reporting has applied it all: their relays publish after commit.
        async with running_app(REGISTRY, settings) as (_, registry), running_app(VISITS, settings) as (_, visits), \
                httpx.AsyncClient(base_url=reporting.url, headers=auth) as api:
            script = await run_scenario(registry, visits, settings, county)

            async def applied() -> bool:
                f = (await api.get("/api/v1/figures")).json()
                return f["activities"]["person_times"] == 4 and f["dropouts"]["returned"] == 1

            await wait_until(applied, timeout=30, what="reporting to apply the scenario")
            figures = (await api.get("/api/v1/figures")).json()
            township = f"{county}001"
            below = (await api.get("/api/v1/figures", params={"region": township})).json()
            assert (await api.get("/dashboard/../app.py")).status_code == 404

        bearer = issue_token(settings, role=Role.county_office, region=county)
        page = await browser.new_page(viewport={"width": 1366, "height": 900})
        await page.goto(f"{reporting.url}/?token={bearer}")
        value = page.locator('[data-figure="children.total"]')
        await value.wait_for()
        assert await value.text_content() == str(figures["children"]["total"]) == "5"
        for key in ("guardianship.expiring_30_days", "visits.no_contact_30_days", "dropouts.returned", "activities.person_times"):
            section, name = key.split(".")
            assert await page.locator(f'[data-figure="{key}"]').text_content() == str(figures[section][name]), key
        assert await page.locator("h1").text_content() == "留守儿童关爱保护统计"
        assert await page.locator("canvas").count() >= 2  # ECharts drew both charts

        await page.locator(f'tr[data-place="{township}"] td').first.click()
        await page.wait_for_function(f"document.querySelector('#place-title').textContent === '{township}'")
        await page.wait_for_function(
            f"document.querySelector('[data-figure=\"children.total\"]').textContent === '{below['children']['total']}'")
        assert await page.locator(f'tr[data-place="{county}001001"]').count() == 1  # its villages
        await page.screenshot(path=str(screenshot_path("reporting-dashboard-township")), full_page=True)

        await page.locator("#lang").click()
        assert await page.locator("h1").text_content() == "Left-behind children: care and protection"
        phone = await browser.new_page(viewport={"width": 360, "height": 740})
        await phone.goto(f"{reporting.url}/?token={bearer}&lang=zh")
        await phone.locator('[data-figure="children.total"]').wait_for()
        assert await phone.evaluate("document.documentElement.scrollWidth") <= 360
        await phone.screenshot(path=str(screenshot_path("reporting-dashboard-phone")), full_page=True)
        await page.close()
        await phone.close()
        assert script["ids"]
    finally:
        reporting.stop()
