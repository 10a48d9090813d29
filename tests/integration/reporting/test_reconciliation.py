"""Figures reconcile: after a scripted county, each figure reporting shows equals the one computed
directly from the registry's and visits' own databases (all four services in this process)."""

import json

from services.notifications.app import SPEC as NOTIFICATIONS
from services.registry.app import SPEC as REGISTRY
from services.reporting.app import SPEC as REPORTING
from services.visits.app import SPEC as VISITS
from shared.auth import Role
from shared.clock import today_local
from tests.integration.reporting.scenario import comparable, direct_figures, run_scenario, this_quarter
from tests.support import fresh_county, running_app, token, wait_until


async def test_every_figure_equals_the_one_computed_from_the_services_own_data(settings, engines):
    county, today = fresh_county(), today_local()
    period = this_quarter(today)
    async with (
        running_app(REGISTRY, settings) as (_, registry), running_app(VISITS, settings) as (_, visits),
        running_app(NOTIFICATIONS, settings), running_app(REPORTING, settings) as (_, reporting),
    ):
        script = await run_scenario(registry, visits, settings, county)
        expected = json.loads(json.dumps(await direct_figures(engines, county, today, period, script), default=str))
        auth = token(settings, Role.county_office, county)
        got: dict = {}

        async def reconciled() -> bool:
            nonlocal got
            figures = (await reporting.get("/api/v1/figures", params={"region": county, "quarter": period.label}, headers=auth)).json()
            places = (await reporting.get("/api/v1/figures/places", params={"region": county}, headers=auth)).json()
            got = comparable(figures, places, expected)
            return got == expected

        try:
            await wait_until(reconciled, timeout=30, what="reporting's figures to equal the services' own")
        finally:
            assert got == expected
        # The scenario exercised what it set out to: not a reconciliation of zeros.
        assert expected["children"]["total"] == 5 and expected["dropouts"]["returned"] == 1
        assert expected["guardianship"]["expiring_30_days"] == 1 and expected["visits"]["no_contact_30_days"] == 3

        # A drill-down lists exactly the children behind its figure.
        drill = (await reporting.get("/api/v1/figures/drilldown", params={"region": county, "figure": "no_contact_30_days"},
                                     headers=auth)).json()
        c0, c1, c2, c3, c4, c5 = script["ids"]
        assert sorted(c["child_id"] for c in drill["children"]) == sorted([c1, c2, c3]) and drill["total"] == 3
        incomplete = (await reporting.get("/api/v1/figures/drilldown", params={"region": county, "figure": "incomplete"},
                                          headers=auth)).json()
        assert sorted(c["child_id"] for c in incomplete["children"]) == sorted([c1, c2, c3])
        # Scoped by the token: another county's office sees nothing of this one.
        other = token(settings, Role.county_office, fresh_county())
        assert (await reporting.get("/api/v1/figures", params={"region": county}, headers=other)).status_code == 403
