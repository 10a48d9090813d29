"""The load generator: registrations, visit records and absences (each opening a dropout case) at
a steady rate through the APIs, each write remembered by what the API answered."""

from __future__ import annotations

import asyncio
import random
import time
from datetime import timedelta

import httpx

from chaos.checker import Ledger
from shared.clock import today_local
from tests.support import child_payload

COUNTY = "410523"
VILLAGE = f"{COUNTY}100001"
SCHOOL, CLASS = f"school-{COUNTY}-chaos", "三年级二班"
# Every dropout deadline falls due within seconds: persuasion at once, the bureau's acknowledgement
# after 6 s, then the reminder (催办) and at once the leading-group office (上报).
# The county's agencies, all reached on their streams (nobody answers: every deadline passes).
AGENCY_PREFIXES = {"edu": "education_bureau", "zf": "township_government", "mz": "civil_affairs", "ldxz": "leading_group_office"}
FAST_DROPOUT = {"persuasion_days": 0, "ack_working_days": None, "ack_minutes": 0.1, "escalate_after_working_days": 0}


class Load:
    def __init__(self, urls: dict[str, str], headers: dict[str, str], rng: random.Random) -> None:
        self.urls, self.headers, self.rng = urls, headers, rng
        self.ledger = Ledger()
        self.teacher = ""
        self._absent: set[str] = set()
        self._accepted_at: dict[str, float] = {}

    async def setup(self, client: httpx.AsyncClient) -> None:
        """The county's fast dropout policy and a class teacher, whom visits pairs with every pupil of the class."""
        r = await client.put(f"{self.urls['visits']}/api/v1/referral-policies/{COUNTY}/dropout", json=FAST_DROPOUT,
                             headers=self.headers)
        r.raise_for_status()
        r = await client.post(f"{self.urls['visits']}/api/v1/helpers", headers=self.headers, json={
            "name": "张老师", "role": "class_teacher", "organisation": "中心小学", "region_code": COUNTY,
            "school_id": SCHOOL, "class_name": CLASS,
        })
        r.raise_for_status()
        self.teacher = r.json()["id"]

    async def run(self, client: httpx.AsyncClient, rate: float, seconds: float) -> float:
        """Start a write every 1/rate s whatever the answers take (an open loop, as real users are);
        returns the rate at which they were started."""
        writes, t0 = [], time.monotonic()
        for n in range(int(rate * seconds)):
            await asyncio.sleep(max(0.0, t0 + n / rate - time.monotonic()))
            writes.append(asyncio.create_task(self._one(client, n)))
        started = len(writes) / (time.monotonic() - t0)
        await asyncio.gather(*writes)
        return started

    def _settled_child(self, *, without_absence: bool = False) -> str | None:
        """A child accepted a few seconds ago (visits has most likely heard of it by now)."""
        ripe = [c for c, t in self._accepted_at.items() if time.monotonic() - t > 3
                and not (without_absence and c in self._absent)]
        return self.rng.choice(ripe) if ripe else None

    async def _one(self, client: httpx.AsyncClient, n: int) -> None:
        draw = self.rng.random()
        if draw >= 0.5 and (child := self._settled_child(without_absence=draw >= 0.8)):
            if draw < 0.8:
                await self._record(client, child)
            else:
                self._absent.add(child)
                await self._absence(client, child)
        else:
            await self._register(client, n)

    async def _register(self, client: httpx.AsyncClient, n: int) -> None:
        name = f"混沌儿童{n}"  # unique: a registration left without an answer is found again by its name
        body = child_payload(n, name=name, village_code=VILLAGE, school_id=SCHOOL, class_name=CLASS)
        if (answer := await self._post(client, "child", name, f"{self.urls['registry']}/api/v1/children", body)):
            self.ledger.children[answer["id"]] = name
            self._accepted_at[answer["id"]] = time.monotonic()

    async def _record(self, client: httpx.AsyncClient, child: str) -> None:
        body = {"helper_id": self.teacher, "child_id": child, "kind": "home_visit", "visited_on": today_local().isoformat()}
        if (answer := await self._post(client, "record", child, f"{self.urls['visits']}/api/v1/records", body)):
            self.ledger.records[answer["id"]] = child

    async def _absence(self, client: httpx.AsyncClient, child: str) -> None:
        today = today_local()
        monday = today - timedelta(days=7 + today.weekday())  # three school days of last week
        body = {"from_date": monday.isoformat(), "to_date": (monday + timedelta(days=2)).isoformat(),
                "school_days": 3, "excused": False}
        url = f"{self.urls['registry']}/api/v1/children/{child}/absences"
        if (answer := await self._post(client, "absence", child, url, body)):
            self.ledger.absences[answer["id"]] = child

    async def _post(self, client: httpx.AsyncClient, kind: str, key: str, url: str, body: dict) -> dict | None:
        """The answer when accepted (201). Refused or never sent (no connection): nothing was written.
        Anything else (the connection dropped, a timeout, a 5xx) may or may not have been: unanswered."""
        try:
            r = await client.post(url, json=body, headers=self.headers)
        except (httpx.ConnectError, httpx.ConnectTimeout):
            self.ledger.refused[f"{kind}: service down"] += 1
            return None
        except httpx.HTTPError:
            self.ledger.unanswered[kind].append(key)
            return None
        if r.status_code == 201:
            return r.json()
        if r.status_code >= 500:
            self.ledger.unanswered[kind].append(key)
        else:
            self.ledger.refused[f"{kind}: {r.status_code}"] += 1
        return None
