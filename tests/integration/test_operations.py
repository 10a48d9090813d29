"""Health, AsyncAPI, and no personal data in a real process's logs."""

import httpx
import pytest

from services.notifications.app import SPEC as NOTIFICATIONS
from services.registry.app import SPEC as REGISTRY
from services.reporting.app import SPEC as REPORTING
from services.visits.app import SPEC as VISITS
from shared.contracts.registry_v1 import CHILD_CONTACTS, ContactCard, Person
from shared.outbox import DATA_FIELD
from tests.conftest import scalar
from tests.infra import free_port
from tests.support import ServiceProcess, child_payload, running_app, token, wait_until


@pytest.mark.parametrize("spec", [REGISTRY, VISITS, NOTIFICATIONS, REPORTING], ids=lambda s: s.name)
async def test_health_and_asyncapi_without_auth(spec, settings):
    async with running_app(spec, settings) as (_, client):
        health = await client.get("/health")
        assert health.status_code == 200
        assert health.json() == {"service": spec.name, "redis": "ok", "postgres": "ok", "status": "ok"}
        doc = (await client.get("/asyncapi")).json()
        assert doc["asyncapi"].startswith("3.")
        channels = set(doc["channels"])
        assert channels, "the AsyncAPI document names the service's streams"


async def test_registry_asyncapi_documents_both_streams_and_the_envelope(settings):
    async with running_app(REGISTRY, settings) as (_, client):
        doc = (await client.get("/asyncapi")).json()
    assert {settings.stream("registry.events"), settings.stream("registry.contacts")} <= set(doc["channels"])
    schemas = doc["components"]["schemas"]
    envelope = next(s for name, s in schemas.items() if "ChildRegistered" in name and "Envelope" in name)
    for field in ("event_id", "type", "schema_version", "aggregate_id", "aggregate_version", "region_code", "data"):
        assert field in envelope["properties"], field


async def test_health_reports_a_dead_database(settings):
    broken = settings.model_copy(update={"reporting_database_url": "postgresql+asyncpg://postgres@127.0.0.1:1/none"})
    from shared.service import create_app

    app = create_app(REPORTING, broken)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        r = await client.get("/health")
    assert r.status_code == 503 and r.json()["postgres"].startswith("down")
    await app.state.runtime.redis.aclose()


async def test_contact_cards_keep_the_newest_snapshot(settings, redis, engines):
    """registry.contacts carries whole cards: an older one arriving late is ignored."""
    import uuid

    child = uuid.uuid4()
    cards = {
        v: CHILD_CONTACTS.envelope(
            ContactCard(child_id=child, child_name=f"名{v}", guardian=Person(name="奶奶", phone="13900139000")),
            producer="registry", aggregate_id=str(child), aggregate_version=v, region_code="410523100201",
        ).model_dump_json()
        for v in (2, 5, 3)
    }
    for v in (2, 5, 3):
        await redis.xadd(settings.stream("registry.contacts"), {DATA_FIELD: cards[v]})
    async with running_app(NOTIFICATIONS, settings):
        async def settled() -> bool:
            return (await redis.xpending(settings.stream("registry.contacts"), "notifications"))["pending"] == 0 and (
                await scalar(engines["notifications"], "SELECT version FROM contacts WHERE child_id = :c", c=child) is not None
            )

        await wait_until(settled, what="the cards applied")
    assert await scalar(engines["notifications"], "SELECT card->>'child_name' FROM contacts WHERE child_id = :c", c=child) == "名5"


@pytest.mark.slow
async def test_no_name_phone_or_id_number_in_a_service_log(settings):
    port = free_port()
    proc = await ServiceProcess("registry", settings, port, SHOUHU_LOG_LEVEL="DEBUG").start().ready()
    name, phone, id_number = "王秘密", "13612345678", "110105201406010027"
    try:
        async with httpx.AsyncClient(base_url=proc.url, headers=token(settings)) as c:
            body = child_payload(name=name, id_number=id_number, guardian={"name": name, "relationship": "grandparent", "phone": phone})
            created = await c.post("/api/v1/children", json=body)
            assert created.status_code == 201, created.text
            child = created.json()["id"]
            assert (await c.patch(f"/api/v1/children/{child}", json={"guardian": {"phone": "13612345679"}})).status_code == 200
            assert (await c.post("/api/v1/children", json={**body, "father": {"status": "x", "phone": phone}})).status_code == 422
            assert (await c.get(f"/api/v1/children/{child}")).json()["id_number_masked"] == "1101**********0027"
    finally:
        proc.stop()
    log = proc.log_text()
    assert log.strip(), "the service wrote no log at all"
    for secret in (name, phone, "13612345679", id_number):
        assert secret not in log, f"{secret!r} leaked into the log"
