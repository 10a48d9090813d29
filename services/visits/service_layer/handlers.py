"""What visits does with the registry's events (its own copy of the child's place)."""

from sqlalchemy import func, update
from sqlalchemy.dialects.postgresql import insert

from services.visits.adapters.orm import child_contacts, children
from shared.contracts import EventEnvelope
from shared.contracts.registry_v1 import ChildRegistered, ChildUpdated, ContactCard

_PLACE = ("village_code", "school_id", "class_name", "left_behind_type")


async def child_registered(uow, event: EventEnvelope[ChildRegistered]) -> None:
    d = event.data
    await uow.session.execute(
        insert(children).values(child_id=d.child_id, **{k: getattr(d, k) for k in _PLACE}).on_conflict_do_nothing()
    )


async def child_updated(uow, event: EventEnvelope[ChildUpdated]) -> None:
    d = event.data
    values = {k: getattr(d.changes, k) for k in _PLACE if k in d.changed_fields}
    if values:
        await uow.session.execute(
            update(children).where(children.c.child_id == d.child_id).values(**values, updated_at=func.now())
        )


async def contacts_changed(uow, event: EventEnvelope[ContactCard]) -> None:
    d = event.data
    values = {
        "child_name": d.child_name,
        "guardian_name": d.guardian.name if d.guardian else None,
        "guardian_phone": d.guardian.phone if d.guardian else None,
        "version": event.aggregate_version,
    }
    stmt = insert(child_contacts).values(child_id=d.child_id, **values)
    await uow.session.execute(stmt.on_conflict_do_update(index_elements=["child_id"], set_=values))
