"""Each agency's Redis user reads only its to-agency stream and writes only its
from-agency stream: checked on the real Redis, with users made for this test."""

import uuid

import pytest
from redis.asyncio import Redis
from redis.exceptions import AuthenticationError, NoPermissionError

from services.notifications.acl import agency_users
from tests.integration.notifications.helpers import CIVIL_AFFAIRS, EDUCATION, POLICE


@pytest.fixture
async def acl_users(config, redis, settings):
    """The generated users, under a unique prefix (the test Redis is shared), deleted afterwards."""
    prefix = f"t{uuid.uuid4().hex[:8]}-agency-"
    users = {u.name.removeprefix(prefix): u for u in agency_users(config, namespace=settings.stream_namespace, user_prefix=prefix)}
    for user in users.values():
        await redis.execute_command("ACL", "SETUSER", user.name, *user.rules)
    yield users
    await redis.execute_command("ACL", "DELUSER", *(u.name for u in users.values()))


async def test_generated_file_has_a_user_per_streaming_agency_and_no_clear_password(config, acl_users):
    assert set(acl_users) == {EDUCATION}  # only education reads a stream in the test configuration
    line = acl_users[EDUCATION].line()
    assert config.agency_secret("redis", EDUCATION) not in line and "#" in line


async def test_an_agency_user_cannot_read_another_agencys_stream(config, redis, settings, acl_users):
    ns = settings.stream_namespace
    own_in, own_out, other_in = (f"{ns}to-agency.{EDUCATION}", f"{ns}from-agency.{EDUCATION}", f"{ns}to-agency.{POLICE}")
    await redis.xadd(own_in, {"__data__": "{}"})
    await redis.xadd(other_in, {"__data__": "{}"})
    await redis.xgroup_create(own_in, "edu", id="0")
    user = acl_users[EDUCATION].name

    async def dry(*command: str) -> str:
        return (await redis.execute_command("ACL", "DRYRUN", user, *command)).decode()

    assert await dry("XREADGROUP", "GROUP", "edu", "c", "STREAMS", own_in, ">") == "OK"
    assert await dry("XADD", own_out, "*", "__data__", "{}") == "OK"
    assert "no permissions" in await dry("XREADGROUP", "GROUP", "edu", "c", "STREAMS", other_in, ">")
    assert "no permissions" in await dry("XADD", own_in, "*", "__data__", "{}")  # cannot forge its own inbox
    assert "no permissions" in await dry("XRANGE", own_out, "-", "+")  # its answer stream is write-only

    # And over a real connection, as the agency would connect.
    agency = Redis.from_url(settings.redis_url, username=user, password=config.agency_secret("redis", EDUCATION))
    try:
        [[_, entries]] = await agency.xreadgroup("edu", "c", {own_in: ">"})
        assert len(entries) == 1
        await agency.xadd(own_out, {"__data__": "{}"})
        for forbidden in (
            agency.xrange(other_in), agency.xrange(f"{ns}from-agency.{CIVIL_AFFAIRS}"), agency.xadd(other_in, {"x": "1"}),
            agency.xadd(f"{ns}from-agency.{POLICE}", {"x": "1"}), agency.delete(own_in), agency.keys("*"),
        ):
            with pytest.raises(NoPermissionError):
                await forbidden
    finally:
        await agency.aclose()
    assert await redis.xlen(own_out) == 1 and await redis.xlen(other_in) == 1

    guess = Redis.from_url(settings.redis_url, username=user, password="guess")
    with pytest.raises(AuthenticationError):
        await guess.ping()
    await guess.aclose()
