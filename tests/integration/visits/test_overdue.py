"""A month with one of two caring-mother visits yields exactly one overdue event, across restarts."""

from datetime import timedelta

from services.visits.adapters.orm import timers
from services.visits.domain.windows import Window, today_local
from shared.contracts.visits_v1 import WindowKind
from shared.db import make_sessionmaker
from shared.timers import schedule
from tests.integration.visits.conftest import month_start, next_month_start
from tests.support import wait_until


async def overdue_of(visits, child) -> list[dict]:
    return [e for e in await visits.outbox("visits.visit.overdue") if e["data"]["child_id"] == str(child)]


async def test_one_of_two_monthly_visits_gives_one_overdue_event_across_restarts(start_visits, settings, redis):
    today = today_local()
    month = Window(WindowKind.month, month_start(today), next_month_start(today) - timedelta(days=1))
    after_month = month.deadline + timedelta(minutes=1)

    async with start_visits() as visits:
        child = await visits.child()
        mother = await visits.helper("caring_mother")
        await visits.pair([mother], [child], started_on=month.start)
        # One visit of two; every other monthly (and, at a quarter's or year's end, longer) rule is met.
        for kind in ("home_visit", "parent_contact", "guardian_contact", "festival"):
            assert (await visits.record(mother, child, kind)).status_code == 201
        key = f"{child}:companion_monthly_visits:{month.key}"
        await visits.fire_timers_at(month.deadline - timedelta(minutes=1))
        assert key in await visits.pending_timer_keys(child)  # not before the month has ended
        assert await overdue_of(visits, child) == []

    async with start_visits() as visits:  # restarted: the deadline is data, not a sleeping task
        await visits.fire_timers_at(after_month)
        mine = await overdue_of(visits, child)
        assert len(mine) == 1
        event = mine[0]
        assert event["data"]["rule_code"] == "companion_monthly_visits"
        assert (event["data"]["required"], event["data"]["done"]) == (2, 1)
        assert event["data"]["helper_ids"] == [mother]
        assert event["data"]["window_start"] == month.start.isoformat()
        # The next month is armed for the same rule.
        nxt = next_month_start(today).isoformat()
        assert f"{child}:companion_monthly_visits:month:{nxt}" in await visits.pending_timer_keys(child)

    async with start_visits() as visits:  # restarted again, the poller runs again, the timer is even re-armed
        await visits.fire_timers_at(after_month)
        assert len(await overdue_of(visits, child)) == 1
        async with make_sessionmaker(visits.engine).begin() as s:
            await schedule(s, timers, "visits.window_end", key, month.deadline, {
                "child_id": str(child), "rule_code": "companion_monthly_visits", "window": "month",
                "start": month.start.isoformat(), "end": month.end.isoformat(),
            })
        assert await visits.fire_timers_at(after_month) >= 1  # the re-armed timer fires ...
        assert len(await overdue_of(visits, child)) == 1  # ... and finds the window already reported

        async def published() -> bool:
            entries = await redis.xrange(settings.stream("visits.events"))
            return any(b"visits.visit.overdue" in f[b"__data__"] for _, f in entries)

        await wait_until(published, what="the overdue event on visits.events")
        entries = await redis.xrange(settings.stream("visits.events"))
        overdue = [f for _, f in entries if b"visits.visit.overdue" in f[b"__data__"] and str(child).encode() in f[b"__data__"]]
        assert len(overdue) == 1
        payload = overdue[0][b"__data__"].decode()
        assert "帮扶人" not in payload  # no helper (or child) names travel on visits.events
