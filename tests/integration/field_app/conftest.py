"""The field app in headless Chromium against the registry, visits and reporting, each in this process behind a
real uvicorn server (the browser needs real ports), on the test databases and a stream namespace
of the test's own. The app is the build `make field-app` leaves in apps/field/dist."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import pytest
import uvicorn

from services.registry.app import SPEC as REGISTRY
from services.reporting.app import SPEC as REPORTING
from services.visits.app import SPEC as VISITS
from shared.auth import Role, issue_token
from shared.service import create_app
from tests.browser import browser  # noqa: F401  (the session fixture)
from tests.conftest import scalar
from tests.infra import free_port
from tests.support import child_payload, fresh_county, wait_until

BUILT = VISITS.web_app / "index.html"
PHONE = {"width": 360, "height": 740}


@asynccontextmanager
async def serving(spec, settings, port: int):
    """The service as ``python -m services.<name>`` would run it, but in this process: a real port."""
    server = uvicorn.Server(uvicorn.Config(create_app(spec, settings), host="127.0.0.1", port=port, log_config=None,
                                           access_log=False))
    task = asyncio.create_task(server.serve())

    async def started() -> bool:
        if task.done():
            task.result()  # raises what stopped it
        return server.started

    await wait_until(started, what=f"{spec.name} on port {port}")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@dataclass
class Field:
    """The running services, a county of the test's own, and what a test sets up through the APIs."""

    registry: str
    visits: str
    reporting: str
    settings: object
    engines: dict
    county: str

    @property
    def village(self) -> str:
        return f"{self.county}001001"

    def token(self, role: Role, region: str, subject: str = "dev", **claims) -> str:
        return issue_token(self.settings, role=role, region=region, subject=subject, **claims)

    def auth(self, role: Role = Role.county_office, region: str | None = None, subject: str = "dev") -> dict:
        return {"Authorization": f"Bearer {self.token(role, region or self.county, subject)}"}

    async def api(self, service: str, method: str, path: str, **kw) -> httpx.Response:
        kw.setdefault("headers", self.auth())
        async with httpx.AsyncClient(base_url=getattr(self, service)) as client:
            return await client.request(method, path, **kw)

    async def child(self, name: str, **over) -> str:
        """A child registered in the registry and known, with its name, to visits."""
        body = child_payload(name=name, village_code=self.village, **over)
        r = await self.api("registry", "POST", "/api/v1/children", json=body)
        assert r.status_code == 201, r.text
        child_id = r.json()["id"]

        async def in_visits() -> bool:
            return await scalar(self.engines["visits"], "SELECT count(*) FROM child_contacts WHERE child_id = :c",
                                c=child_id) == 1

        await wait_until(in_visits, what="the child's place and name in visits")
        return child_id

    async def helper(self, role: str, account: str, **extra) -> str:
        body = {"name": "帮扶人", "role": role, "organisation": "县妇联", "region_code": self.village,
                "account": account, **extra}
        r = await self.api("visits", "POST", "/api/v1/helpers", json=body)
        assert r.status_code == 201, r.text
        return r.json()["id"]

    async def pair(self, helper_id: str, *child_ids: str) -> None:
        r = await self.api("visits", "POST", "/api/v1/pairings", json={"helper_ids": [helper_id], "child_ids": list(child_ids)})
        assert r.status_code == 201, r.text

    async def records_of(self, child_id: str) -> int:
        return await scalar(self.engines["visits"], "SELECT count(*) FROM visit_records WHERE child_id = :c", c=child_id)

    async def phone(self, browser, token: str):
        """A cheap phone's screen (360 px wide) in China's time zone, signed in through the link."""
        context = await browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True,
                                            locale="zh-CN", timezone_id="Asia/Shanghai")
        page = await context.new_page()
        await page.goto(f"{self.visits}/app/?token={token}")
        return context, page


@pytest.fixture
async def field(settings, engines):
    if not BUILT.exists():
        pytest.fail(f"the field app is not built ({BUILT} is missing): run `make field-app` (npm ci and npm run build in apps/field)")
    ports = {name: free_port() for name in ("registry", "visits", "reporting")}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    # The app is served by visits and calls the registry and reporting across origins: allowed by their
    # CORS setting, found through the visits service's field_app_apis.
    across = settings.model_copy(update={"cors_origins": urls["visits"]})
    apis = f"registry={urls['registry']},reporting={urls['reporting']}"
    async with serving(REGISTRY, across, ports["registry"]), serving(REPORTING, across, ports["reporting"]), \
            serving(VISITS, settings.model_copy(update={"field_app_apis": apis}), ports["visits"]):
        yield Field(urls["registry"], urls["visits"], urls["reporting"], settings, engines, fresh_county())
