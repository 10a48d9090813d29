"""`shouhu demo`'s loader against the four services (in this process, real Redis and PostgreSQL): what it
planned is what the APIs then show, and a second run leaves the county alone."""

from collections import Counter
from datetime import timedelta

from shared.auth import Role
from shared.demo import load, plan_county
from services.notifications.app import SPEC as NOTIFICATIONS
from services.registry.app import SPEC as REGISTRY
from services.reporting.app import SPEC as REPORTING
from services.visits.app import SPEC as VISITS
from tests.support import fresh_county, running_app, token, wait_until

CHILDREN = 200


async def metric_sum(client, name: str, **labels: str) -> float:
    """The sum of a Prometheus counter's samples on the service's /metrics, those with ``labels``."""
    text = (await client.get("/metrics")).text
    wanted = [f'{k}="{v}"' for k, v in labels.items()]
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name + "{") and all(w in line for w in wanted))


async def consumed(client) -> float:
    return await metric_sum(client, "shouhu_events_consumed_total", outcome="done")


async def test_demo_county_is_what_the_apis_show(settings):
    county = fresh_county()
    plan = plan_county(county, CHILDREN, seed=3)
    async with (
        running_app(REGISTRY, settings) as (_, registry),
        running_app(VISITS, settings) as (_, visits),
        running_app(NOTIFICATIONS, settings) as (_, notifications),
        running_app(REPORTING, settings) as (_, reporting),
    ):
        admin = token(settings)
        clients = {"registry": registry, "visits": visits, "notifications": notifications}
        for client in (*clients.values(), reporting):
            client.headers.update(admin)
        office = token(settings, Role.county_office, county)
        before = {name: await consumed(client) for name, client in (("visits", visits), ("reporting", reporting))}
        requests_before = await metric_sum(registry, "shouhu_http_requests_total")
        result = await load(plan, clients, workers=4, visits_timeout=120, office=office)
        assert result == plan.summary()
        assert result["children"] == CHILDREN and result["visit_records"] > 0 and result["agreements"] > 0

        page = (await registry.get("/api/v1/children", params={"region": county, "page_size": 200})).json()
        assert page["total"] == CHILDREN
        by_village = Counter(c["village_code"] for c in page["items"])
        assert set(by_village) <= set(plan.villages) and len(by_village) > 1
        assert all(code[:9] in plan.townships for code in by_village)
        unguarded = (await registry.get("/api/v1/children", params={"region": county, "risk": "no_guardian"})).json()
        assert unguarded["total"] == sum(c.body["guardian"] is None for c in plan.children)

        ids = {(c["name"], c["birth_date"], c["village_code"]): c["id"] for c in page["items"]}
        for c in (c for c in plan.children if c.school_stage or c.agreement):
            child_id = ids[(c.body["name"], c.body["birth_date"], c.body["village_code"])]
            if c.school_stage:
                child = (await registry.get(f"/api/v1/children/{child_id}")).json()
                # An absence alone leaves the status to the registry's own rules (an escalation may follow).
                expected = {"dropped_out": "dropped_out", "returned": "in_school"}.get(c.school_stage)
                assert expected in (None, child["enrolment_status"]), (c.school_stage, child["enrolment_status"])
                assert len((await registry.get(f"/api/v1/children/{child_id}/absences")).json()) == 1
        agreements = 0
        for child_id in ids.values():
            agreements += len((await registry.get(f"/api/v1/children/{child_id}/agreements")).json())
        assert agreements == result["agreements"]

        # Reporting counts every child where it lives, from the events alone.
        async def counted() -> bool:
            figures = (await reporting.get("/api/v1/figures/children", params={"region": county})).json()
            return {k: v for k, v in figures.items() if len(k) == 12} == dict(by_village)

        await wait_until(counted, timeout=60, what="reporting's figures of the demo county")
        # The operators' view moves with the demo: events consumed, requests served (/metrics).
        for name, client in (("visits", visits), ("reporting", reporting)):
            assert await consumed(client) >= before[name] + CHILDREN, name
        assert await metric_sum(registry, "shouhu_http_requests_total") >= requests_before + CHILDREN

        # A 劝返 case at each stage, and 无人监护 cases of the children registered without a guardian.
        async def cases(policy: str) -> dict[str, dict]:
            found = (await visits.get("/api/v1/referrals", params={"policy": policy, "page_size": 200}, headers=office)).json()
            return {c["child_id"]: c for c in found["items"]}

        def child_of(c) -> str:
            return ids[(c.body["name"], c.body["birth_date"], c.body["village_code"])]

        dropouts = await cases("dropout")
        planned = {c.case: dropouts[child_of(c)] for c in plan.children if c.case}
        assert planned["persuasion"]["stage"] == "persuasion" and planned["persuasion"]["trigger"] == "registry.absence.reported"
        assert (planned["reported"]["stage"], planned["reported"]["refusals"]) == ("reported", 2)
        reported = (await visits.get(f"/api/v1/referrals/{planned['reported']['id']}", headers=office)).json()
        assert [a["outcome"] for a in reported["attempts"]] == ["refused", "refused"]
        assert (planned["closed"]["stage"], planned["closed"]["outcome"]) == ("closed", "returned")
        unguarded = {child_of(c) for c in plan.children if c.body["guardian"] is None}

        async def unguarded_cases() -> bool:
            return unguarded <= set(await cases("unguarded"))

        await wait_until(unguarded_cases, what="a 无人监护 case of every child registered without a guardian")

        # Last month's windows have closed: some children had every contact asked, some are overdue (逾期).
        last_month = (plan.today.replace(day=1) - timedelta(days=1)).isoformat()
        compliance = (await visits.get("/api/v1/compliance", params={"on": last_month}, headers=office)).json()
        monthly = [i for i in compliance["items"] if i["rule_code"] == "companion_monthly_visits"]
        assert monthly and monthly[0]["done"] > 0 and monthly[0]["overdue"] > 0, compliance

        assert await load(plan, clients) == {"already_loaded": CHILDREN}


def test_the_same_seed_gives_the_same_county_and_another_seed_another():
    a, b, c = (plan_county("410523", 300, seed) for seed in (5, 5, 6))
    assert [x.body for x in a.children] == [x.body for x in b.children]
    assert [h.body for h in a.helpers] == [h.body for h in b.helpers]
    assert [x.body for x in a.children] != [x.body for x in c.children]
    assert all(code.startswith("410523") and len(code) == 12 for code in a.villages)
    assert all(len(code) == 9 and code[6] in "12" for code in a.townships)
