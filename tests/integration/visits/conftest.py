"""The visits service in process, fed registry events through real Redis, with a clock for timers."""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import text

from services.visits.adapters.orm import timers
from services.visits.app import SPEC as VISITS
from services.visits.domain.windows import today_local
from services.visits.service_layer.schedule import TIMER_HANDLERS
from shared.auth import Role
from shared.contracts.registry_v1 import CHILD_REGISTERED, ChildRegistered
from shared.outbox import DATA_FIELD
from shared.timers import TimerPoller
from tests.conftest import scalar
from tests.support import running_app, token, wait_until

COUNTY = "410523"


def village(n: int = 1, county: str = COUNTY) -> str:
    return f"{county}100{n:03d}"


class Visits:
    """One running visits service and what a test does with it."""

    def __init__(self, app, client, settings, redis, engine) -> None:
        self.app, self.client, self.settings, self.redis, self.engine = app, client, settings, redis, engine
        self.versions: dict[str, int] = {}

    def auth(self, role: Role = Role.county_office, region: str = COUNTY) -> dict[str, str]:
        return token(self.settings, role, region)

    async def publish(self, event_type, data, child_id: uuid.UUID, region_code: str) -> None:
        """A registry event on its stream, the next version of the child's aggregate."""
        version = self.versions[str(child_id)] = self.versions.get(str(child_id), 0) + 1
        envelope = event_type.envelope(data, producer="registry", aggregate_id=str(child_id),
                                       aggregate_version=version, region_code=region_code)
        await self.redis.xadd(self.settings.stream(event_type.stream), {DATA_FIELD: envelope.model_dump_json()})

    async def child(self, n: int = 1, *, county: str = COUNTY, school: str | None = None,
                    class_name: str | None = None) -> uuid.UUID:
        """A registered child; tests share a database, so a class teacher's school and class are each test's own."""
        child_id = uuid.uuid4()
        data = ChildRegistered(
            child_id=child_id, gender="female", birth_date=date(2015, 3, 1), village_code=village(n, county),
            hukou_status="registered", school_id=school, class_name=class_name, left_behind_type="both_parents_out",
            father_status="migrant_worker", mother_status="migrant_worker",
        )
        await self.publish(CHILD_REGISTERED, data, child_id, data.village_code)
        await wait_until(lambda: self.known(child_id), what="the child in visits")
        return child_id

    async def known(self, child_id: uuid.UUID) -> bool:
        return await scalar(self.engine, "SELECT count(*) FROM children WHERE child_id = :c", c=child_id) == 1

    async def helper(self, role: str, *, region: str = COUNTY, **extra) -> str:
        body = {"name": "帮扶人", "role": role, "organisation": "县妇联", "region_code": region, **extra}
        r = await self.client.post("/api/v1/helpers", json=body, headers=self.auth(region=region[:6]))
        assert r.status_code == 201, r.text
        return r.json()["id"]

    async def pair(self, helper_ids: list[str], child_ids: list, started_on: date | None = None, **auth) -> list[dict]:
        body = {"helper_ids": helper_ids, "child_ids": [str(c) for c in child_ids]}
        if started_on:
            body["started_on"] = started_on.isoformat()
        r = await self.client.post("/api/v1/pairings", json=body, headers=self.auth(**auth))
        assert r.status_code == 201, r.text
        return r.json()

    async def record(self, helper_id: str, child_id, kind: str, on: date | None = None, *, region: str = COUNTY,
                     **extra):
        body = {"helper_id": helper_id, "child_id": str(child_id), "kind": kind,
                "visited_on": (on or today_local()).isoformat(), **extra}
        return await self.client.post("/api/v1/records", json=body, headers=self.auth(region=region))

    async def fire_timers_at(self, now: datetime) -> int:
        """The timer poller as it would run at ``now`` (the service's own poller runs on the real clock)."""
        poller = TimerPoller(timers, self.app.state.runtime.uow, TIMER_HANDLERS, now=lambda: now)
        # The worker's database holds other tests' timers too (a demo county's hundreds): fire them all.
        fired = 0
        while (n := await poller.fire_due()) > 0:
            fired += n
        return fired

    async def outbox(self, event_type: str) -> list[dict]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(text("SELECT payload FROM outbox WHERE event_type = :t ORDER BY id"), {"t": event_type})
            return [json.loads(r.payload) for r in rows]

    async def pending_timer_keys(self, child_id) -> list[str]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                text("SELECT key FROM timers WHERE key LIKE :k AND fired_at IS NULL ORDER BY key"), {"k": f"{child_id}:%"}
            )
            return [r.key for r in rows]


@pytest.fixture
def start_visits(settings, redis, engines):
    """``async with start_visits() as visits``: the service, startable again for a restart."""
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def start():
        async with running_app(VISITS, settings) as (app, client):
            yield Visits(app, client, settings, redis, engines["visits"])

    return start


def month_start(day: date) -> date:
    return day.replace(day=1)


def next_month_start(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)
