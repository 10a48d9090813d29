"""Reporting's projections of the registry's events (no personal data arrives here)."""

from collections import Counter

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert

from services.reporting.adapters.orm import child_facts, region_counts
from services.reporting.domain.places import enclosing_places
from shared.contracts import EventEnvelope
from shared.contracts.registry_v1 import ChildRegistered, ChildUpdated
from shared.db import columns_of, insert_rows

_FACTS = ("village_code", "gender", "left_behind_type", "hukou_status", "risk_categories")


_new_facts = insert(child_facts).on_conflict_do_nothing().returning(child_facts.c.child_id)
_counted = insert_rows(region_counts, ("region_code", "children"))
_add_counts = _counted.on_conflict_do_update(
    index_elements=["region_code"], set_={"children": region_counts.c.children + _counted.excluded.children}
)


async def _count(session, deltas: Counter[str]) -> None:
    """Add to the counts of these places (in code order, so concurrent batches lock alike)."""
    rows = [{"region_code": code, "children": n} for code, n in sorted(deltas.items()) if n]
    if rows:
        await session.execute(_add_counts, columns_of(rows))


async def children_registered(uow, events: list[EventEnvelope[ChildRegistered]]) -> None:
    """A run of registrations: their facts in one statement, the counts of their places in another."""
    facts = [{"child_id": e.data.child_id, **{k: getattr(e.data, k) for k in _FACTS}} for e in events]
    inserted = set(await uow.session.scalars(_new_facts, facts))
    await _count(uow.session, Counter(
        code for f in facts if f["child_id"] in inserted for code in enclosing_places(f["village_code"])
    ))


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
        moved = Counter(enclosing_places(values["village_code"]))
        moved.subtract(enclosing_places(old_village))
        await _count(uow.session, moved)
