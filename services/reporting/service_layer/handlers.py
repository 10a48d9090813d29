"""Reporting's projections of the registry's events (no personal data arrives here)."""

from collections import Counter

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert

from services.reporting.adapters.orm import child_facts, region_counts
from services.reporting.domain.places import enclosing_places
from shared.contracts import EventEnvelope
from shared.contracts.registry_v1 import (
    ArchiveClosed,
    ArchiveReopened,
    ChildMerged,
    ChildRegistered,
    ChildTransferred,
    ChildUpdated,
)
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


async def _change(uow, child_id, **values) -> None:
    """New facts of a child; when its village changed, it counts in its new places and not the old
    (a closed archive counts nowhere)."""
    before = (await uow.session.execute(
        select(child_facts.c.village_code, child_facts.c.closed).where(child_facts.c.child_id == child_id).with_for_update()
    )).first()
    if before is None:
        return
    await uow.session.execute(update(child_facts).where(child_facts.c.child_id == child_id).values(**values))
    village, closed = values.get("village_code", before.village_code), values.get("closed", before.closed)
    moved: Counter[str] = Counter()
    if not closed:
        moved.update(enclosing_places(village))
    if not before.closed:
        moved.subtract(enclosing_places(before.village_code))
    await _count(uow.session, moved)


async def child_updated(uow, event: EventEnvelope[ChildUpdated]) -> None:
    d = event.data
    values = {k: getattr(d.changes, k) for k in _FACTS if k in d.changed_fields}
    if values:
        await _change(uow, d.child_id, **values)


async def child_transferred(uow, event: EventEnvelope[ChildTransferred]) -> None:
    """转移: the child counts where it now lives."""
    await _change(uow, event.data.child_id, village_code=event.data.to_village_code)


async def archive_closed(uow, event: EventEnvelope[ArchiveClosed | ChildMerged]) -> None:
    """结档, or merged into another archive: no longer a left-behind child anywhere."""
    await _change(uow, event.data.child_id, closed=True)


async def archive_reopened(uow, event: EventEnvelope[ArchiveReopened]) -> None:
    await _change(uow, event.data.child_id, closed=False)
