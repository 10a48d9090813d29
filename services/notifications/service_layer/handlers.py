"""What notifications does with the registry's contact cards: keep the newest."""

from sqlalchemy import func
from sqlalchemy.dialects.postgresql import insert

from services.notifications.adapters.orm import contacts
from shared.contracts import EventEnvelope
from shared.contracts.registry_v1 import ContactCard


async def contacts_changed(uow, event: EventEnvelope[ContactCard]) -> None:
    values = {"card": event.data.model_dump(mode="json"), "version": event.aggregate_version}
    stmt = insert(contacts).values(child_id=event.data.child_id, **values)
    await uow.session.execute(
        stmt.on_conflict_do_update(index_elements=["child_id"], set_={**values, "updated_at": func.now()})
    )
