"""Contact cards from registry.contacts: a run of them is kept in one statement, newest per child."""

import uuid

from sqlalchemy import select

from services.notifications.adapters.orm import contacts
from services.notifications.service_layer import handlers
from shared.contracts.registry_v1 import CHILD_CONTACTS, ContactCard, Person
from tests.integration.notifications.helpers import VILLAGE


def card(child: uuid.UUID, version: int, phone: str):
    data = ContactCard(child_id=child, child_name="李小花", guardian=Person(name="奶奶", phone=phone))
    return CHILD_CONTACTS.envelope(data, producer="registry", aggregate_id=str(child), aggregate_version=version,
                                   region_code=VILLAGE)


async def held(engine, child) -> tuple[int, str]:
    async with engine.connect() as conn:
        row = (await conn.execute(select(contacts.c.version, contacts.c.card).where(contacts.c.child_id == child))).one()
    return row.version, row.card["guardian"]["phone"]


async def test_a_run_of_cards_keeps_the_newest_of_each_child_and_never_goes_back(driven, engines):
    _, uow, _ = driven
    a, b = uuid.uuid4(), uuid.uuid4()
    async with uow() as u:
        await handlers.contacts_changed(u, [card(a, 1, "13900000001"), card(b, 3, "13900000003"), card(a, 2, "13900000002")])
        await u.commit()
    assert await held(engines["notifications"], a) == (2, "13900000002")
    async with uow() as u:  # b's older card arriving late, a's newer one
        await handlers.contacts_changed(u, [card(b, 2, "13900000099"), card(a, 4, "13900000004")])
        await u.commit()
    assert await held(engines["notifications"], a) == (4, "13900000004")
    assert await held(engines["notifications"], b) == (3, "13900000003")
