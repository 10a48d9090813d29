"""Building requests and contact cards, and looking at deliveries, for the notifications tests."""

from __future__ import annotations

import uuid

from sqlalchemy import select, text

from services.notifications.adapters.orm import deliveries
from services.notifications.service_layer import handlers
from shared.contracts.notifications_v1 import MessageRequested
from shared.contracts.registry_v1 import CHILD_CONTACTS, ContactCard, Person

COUNTY = "410523"
VILLAGE = "410523100201"
EDUCATION, POLICE, CIVIL_AFFAIRS = f"edu-{COUNTY}", f"gaj-{COUNTY}", f"mz-{COUNTY}"
AGENCY_KEY = "test-agency-key"
GUARDIAN_PHONE = "13900139000"


async def add_child(uow_factory, *, name: str = "李小花", guardian_phone: str | None = GUARDIAN_PHONE) -> uuid.UUID:
    child = uuid.uuid4()
    card = ContactCard(child_id=child, child_name=name, guardian=Person(name="奶奶", phone=guardian_phone),
                       guardian_relationship="grandparent")
    event = CHILD_CONTACTS.envelope(card, producer="registry", aggregate_id=str(child), aggregate_version=1, region_code=VILLAGE)
    async with uow_factory() as uow:
        await handlers.contacts_changed(uow, [event])
        await uow.commit()
    return child


def message(kind: str, recipients: list[dict], *, child_id=None, urgency: str = "normal", **data) -> MessageRequested:
    return MessageRequested(request_id=uuid.uuid4(), kind=kind, urgency=urgency, child_id=child_id, region_code=VILLAGE,
                            recipients=recipients, data=data)


async def enqueue(notifier, uow_factory, request: MessageRequested) -> list[uuid.UUID]:
    async with uow_factory() as uow:
        created = await notifier.request(uow, request, requested_by="test")
        await uow.commit()
    return created


async def delivery_rows(engine, request_id) -> dict[str, dict]:
    """The request's deliveries by recipient."""
    async with engine.connect() as conn:
        rows = (await conn.execute(select(deliveries).where(deliveries.c.request_id == request_id))).mappings()
        return {r["recipient"]: dict(r) for r in rows}


async def outbox_events(engine, event_type: str, aggregate_id) -> list[dict]:
    import json

    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT stream, payload FROM outbox WHERE event_type = :t AND aggregate_id = :a ORDER BY id"),
            {"t": event_type, "a": str(aggregate_id)},
        )
        return [{"stream": r.stream, **json.loads(r.payload)} for r in rows]
