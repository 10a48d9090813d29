"""The Redis ACL users of shared/redis_acl.py on the real Redis: ACL DRYRUN says what each may do,
and two services run their whole pipeline logged in as their own users. The users live under a
name prefix of this test, on streams of its namespace, and are deleted afterwards."""

import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest

from services.notifications.acl import agency_user
from services.notifications.config import NotificationsConfig
from services.registry.app import SPEC as REGISTRY
from services.reporting.app import SPEC as REPORTING
from shared.redis_acl import service_rules
from shared.settings import SERVICES
from tests.support import child_payload, fresh_county, running_app, token, wait_until


@pytest.fixture
async def users(redis, settings):
    """Every service's user and two agencies', as ACL SETUSER under this test's prefix: name -> (user, password)."""
    prefix, ns = f"t{uuid.uuid4().hex[:8]}-", settings.stream_namespace
    made = {}
    for service in SERVICES:
        password = uuid.uuid4().hex
        await redis.execute_command("ACL", "SETUSER", prefix + service, *service_rules(service, password, ns))
        made[service] = (prefix + service, password)
    agencies = NotificationsConfig().agencies().by_code
    for code in ("edu-410523", "mz-410523"):
        user = agency_user(agencies[code], uuid.uuid4().hex, namespace=ns, user_prefix=prefix + "agency-")
        await redis.execute_command("ACL", "SETUSER", user.name, *user.rules)
        made[code] = (user.name, None)
    yield made
    await redis.execute_command("ACL", "DELUSER", *(name for name, _ in made.values()))


async def allowed(redis, user: str, *command: str) -> bool:
    answer = await redis.execute_command("ACL", "DRYRUN", user, *command)
    return answer in (b"OK", "OK")


async def test_each_user_may_touch_only_its_own_streams(redis, settings, users):
    ns = settings.stream_namespace

    def read(stream):
        return ("XREADGROUP", "GROUP", "g", "c", "STREAMS", ns + stream, ">")

    def add(stream):
        return ("XADD", ns + stream, "*", "__data__", "{}")

    cases = [
        ("registry", add("registry.events"), True), ("registry", add("registry.contacts"), True),
        ("registry", read("registry.events"), False), ("registry", add("visits.events"), False),
        ("visits", read("registry.contacts"), True), ("visits", add("registry.events.dlq"), True),
        ("visits", add("registry.events"), False), ("visits", ("GET", ns + "anything"), False),
        ("reporting", read("registry.events"), True),
        # No name ever reaches reporting: the stream with names and phones is closed to it.
        ("reporting", read("registry.contacts"), False), ("reporting", add("registry.events"), False),
        ("notifications", add("to-agency.edu-410523"), True), ("notifications", read("from-agency.edu-410523"), True),
        ("notifications", read("to-agency.edu-410523"), False),
        ("edu-410523", read("to-agency.edu-410523"), True), ("edu-410523", add("from-agency.edu-410523"), True),
        ("edu-410523", add("to-agency.edu-410523"), False), ("edu-410523", read("from-agency.edu-410523"), False),
        ("edu-410523", read("to-agency.mz-410523"), False), ("edu-410523", add("from-agency.mz-410523"), False),
        ("edu-410523", read("registry.events"), False),
    ]
    wrong = [(who, cmd[0], cmd[-3] if cmd[0] == "XADD" else cmd[-2], expected)
             for who, cmd, expected in cases if await allowed(redis, users[who][0], *cmd) != expected]
    assert not wrong, f"(user, command, stream, expected to be allowed) the ACL gets wrong: {wrong}"


def _as(url: str, user: str, password: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{parts.hostname}:{parts.port or 6379}"))


async def test_services_run_logged_in_as_their_own_users(settings, users):
    """Publishing through the outbox, the consumer group with its claimer, /health and /metrics: nothing the
    services do needs a command their user lacks."""
    as_registry = settings.model_copy(update={"redis_url": _as(settings.redis_url, *users["registry"])})
    as_reporting = settings.model_copy(update={"redis_url": _as(settings.redis_url, *users["reporting"])})
    village = f"{fresh_county()}100201"
    async with running_app(REGISTRY, as_registry) as (_, registry), running_app(REPORTING, as_reporting) as (_, reporting):
        r = await registry.post("/api/v1/children", json=child_payload(village_code=village), headers=token(settings))
        assert r.status_code == 201, r.text

        async def counted() -> bool:
            figures = await reporting.get("/api/v1/figures/children", params={"region": village}, headers=token(settings))
            return figures.json().get(village) == 1

        await wait_until(counted, what="the child counted by reporting, both services on their own Redis users")
        for client in (registry, reporting):
            assert (await client.get("/health")).json()["redis"] == "ok"
            metrics = await client.get("/metrics")
            assert metrics.status_code == 200, metrics.text
