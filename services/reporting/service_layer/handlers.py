"""Reporting's projections of the registry's events (no personal data arrives here)."""

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert

from services.reporting.adapters.orm import child_facts, region_counts
from services.reporting.domain.places import enclosing_places
from shared.contracts import EventEnvelope
from shared.contracts.registry_v1 import ChildRegistered, ChildUpdated

_FACTS = ("village_code", "gender", "left_behind_type", "hukou_status", "risk_categories")


async def _count(session, village_code: str, delta: int) -> None:
    rows = [{"region_code": code, "children": delta} for code in enclosing_places(village_code)]
    stmt = insert(region_counts).values(rows)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["region_code"], set_={"children": region_counts.c.children + stmt.excluded.children}
        )
    )


async def child_registered(uow, event: EventEnvelope[ChildRegistered]) -> None:
    d = event.data
    inserted = await uow.session.scalar(
        insert(child_facts)
        .values(child_id=d.child_id, **{k: getattr(d, k) for k in _FACTS})
        .on_conflict_do_nothing()
        .returning(child_facts.c.child_id)
    )
    if inserted:
        await _count(uow.session, d.village_code, +1)


async def child_updated(uow, event: EventEnvelope[ChildUpdated]) -> None:
    d = event.data
    values = {k: getattr(d.changes, k) for k in _FACTS if k in d.changed_fields}
    if not values:
        return
    old_village = await uow.session.scalar(
        select(child_facts.c.village_code).where(child_facts.c.child_id == d.child_id).with_for_update()
    )
    await uow.session.execute(update(child_facts).where(child_facts.c.child_id == d.child_id).values(**values))
    if "village_code" in values and old_village and old_village != values["village_code"]:
        await _count(uow.session, old_village, -1)
        await _count(uow.session, values["village_code"], +1)
