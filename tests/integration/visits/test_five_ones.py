"""A term's 五个一 (home visit, talk, class-teacher contact, guardian contact, letter) accounted."""

from datetime import timedelta

from services.visits.domain.windows import Window, today_local
from shared.contracts.visits_v1 import WindowKind


async def test_a_terms_five_ones_are_accounted_and_the_missing_ones_are_overdue_at_term_end(start_visits):
    county = "410611"
    today = today_local()
    term = Window(WindowKind.term, today - timedelta(days=20), today + timedelta(days=70))
    async with start_visits() as visits:
        r = await visits.client.put(f"/api/v1/counties/{county}/terms", headers=visits.auth(region=county), json={
            "terms": [{"starts_on": term.start.isoformat(), "ends_on": term.end.isoformat()}]
        })
        assert r.status_code == 200, r.text
        child = await visits.child(county=county)
        tutor = await visits.helper("volunteer_tutor", region=county)
        await visits.pair([tutor], [child], started_on=term.start, region=county)
        for kind in ("home_visit", "talk", "letter"):
            assert (await visits.record(tutor, child, kind, region=county)).status_code == 201

        r = await visits.client.get(f"/api/v1/children/{child}/compliance", headers=visits.auth(region=county))
        body = r.json()
        assert body["groups"]["五个一"] == {"items": 5, "done": 3}
        five = {i["rule_code"]: (i["status"], i["window_start"], i["window_end"]) for i in body["items"] if i["group"]}
        assert five == {
            "five_ones_home_visit": ("done", term.start.isoformat(), term.end.isoformat()),
            "five_ones_talk": ("done", term.start.isoformat(), term.end.isoformat()),
            "five_ones_letter": ("done", term.start.isoformat(), term.end.isoformat()),
            "five_ones_school_contact": ("due", term.start.isoformat(), term.end.isoformat()),
            "five_ones_guardian_contact": ("due", term.start.isoformat(), term.end.isoformat()),
        }

        await visits.fire_timers_at(term.deadline + timedelta(minutes=1))
        missed = sorted(
            e["data"]["rule_code"] for e in await visits.outbox("visits.visit.overdue")
            if e["data"]["child_id"] == str(child) and e["data"]["window"] == "term"
        )
        assert missed == ["five_ones_guardian_contact", "five_ones_school_contact"]
