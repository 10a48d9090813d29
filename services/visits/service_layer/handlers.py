"""What visits does with the registry's events: its copy of the child's place and school,
and the pairings and schedule that follow the child (转移、结档、合并)."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from uuid import UUID

from services.visits.domain import consent
from services.visits.domain.model import ChildPlace, teaches
from services.visits.domain.windows import today_local
from services.visits.service_layer import schedule
from services.visits.service_layer.commands import finish_pairing, pair_class_teachers, start_pairing
from shared.contracts import EventEnvelope
from shared.contracts.registry_v1 import (
    ArchiveClosed, ArchiveReopened, ChildMerged, ChildRegistered, ChildTransferred, ChildUpdated, Consent, ConsentChanged,
    ContactCard,
)
from shared.contracts.visits_v1 import HelperRole, PairingEndReason

_PLACE = ("village_code", "school_id", "class_name", "left_behind_type")
_ACTOR = "visits.registry-sync"


async def children_registered(uow, events: list[EventEnvelope[ChildRegistered]]) -> None:
    """A run of new children: their places, their class teachers, their schedule (armed once per county)."""
    await uow.children.add_many([{"child_id": e.data.child_id, **{k: getattr(e.data, k) for k in _PLACE}} for e in events],
                                teachers_into=uow.helpers)
    ids = [e.data.child_id for e in events]
    kids = list((await uow.children.get_many(ids)).values())
    today = today_local()
    await pair_class_teachers(uow, kids, today, _ACTOR)
    # Only a pairing binds a child to a rule: the children of the run without one in force have no window to
    # arm (most of a census, before its helpers are paired). A child added now has none but those paired now.
    paired = uow.pairings.children_paired_now.intersection(ids)
    added = uow.children.added(ids)
    if earlier := [c for c in ids if c not in added]:
        paired |= set(await uow.pairings.children_paired_in("", today, earlier))
    by_county: dict[str, list[UUID]] = defaultdict(list)
    for child in kids:
        if child.closed_on is None and child.child_id in paired:
            by_county[child.county].append(child.child_id)
    for county, child_ids in sorted(by_county.items()):
        await schedule.arm(uow, today, county=county, child_ids=child_ids)


async def child_updated(uow, event: EventEnvelope[ChildUpdated]) -> None:
    d = event.data
    values = {k: getattr(d.changes, k) for k in _PLACE if k in d.changed_fields}
    if values:
        before = await uow.children.get(d.child_id, for_update=True)
        await uow.children.update(d.child_id, **values)
        after = await uow.children.get(d.child_id)
        await _follow(uow, after, before, PairingEndReason.class_changed, today_local())


async def child_transferred(uow, event: EventEnvelope[ChildTransferred]) -> None:
    """转移: the child keeps its history; its schedule moves with it, its old class teacher stays behind."""
    d = event.data
    before = await uow.children.get(d.child_id, for_update=True)
    values = {"village_code": d.to_village_code}
    if d.to_school_id != d.from_school_id or d.to_class_name is not None:
        values |= {"school_id": d.to_school_id, "class_name": d.to_class_name}
    await uow.children.update(d.child_id, **values)
    after = await uow.children.get(d.child_id)
    await _follow(uow, after, before, PairingEndReason.transferred, d.effective_on)


async def _follow(uow, child: ChildPlace, before: ChildPlace | None, reason: PairingEndReason, on: date) -> None:
    """After the child's place or class changed: pairings that cannot follow end (listed for
    re-pairing), the new class teacher is paired, and the schedule is armed where the child now is."""
    today = today_local()
    if before is not None and (before.school_id, before.class_name) != (child.school_id, child.class_name):
        held = [p for p, role in await uow.pairings.active(child_id=child.child_id) if role is HelperRole.class_teacher]
        teachers = await uow.helpers.get_many([p.helper_id for p in held])
        for p in held:
            if not teaches(teachers[p.helper_id], child):
                await finish_pairing(uow, p, HelperRole.class_teacher, child.village_code, on, reason, _ACTOR)
    await pair_class_teachers(uow, [child], today, _ACTOR)
    if before is None:
        await schedule.arm(uow, today, county=child.county, child_ids=[child.child_id])
    else:  # windows of rules that no longer bind the child (or of the old county) are dropped
        await schedule.rearm_child(uow, child.child_id, child.county, today)


async def _end_all(uow, child: ChildPlace, on: date, reason: PairingEndReason) -> None:
    for p, role in await uow.pairings.active(child_id=child.child_id):
        await finish_pairing(uow, p, role, child.village_code, on, reason, _ACTOR)
    await uow.schedule.disarm(child.child_id)


async def archive_closed(uow, event: EventEnvelope[ArchiveClosed]) -> None:
    """结档: its pairings and schedule end."""
    d = event.data
    child = await uow.children.get(d.child_id, for_update=True)
    if child is None or child.closed_on is not None:
        return
    await uow.children.update(d.child_id, closed_on=d.closed_on)
    await _end_all(uow, child, d.closed_on, PairingEndReason.archive_closed)


async def archive_reopened(uow, event: EventEnvelope[ArchiveReopened]) -> None:
    """The archive is followed again; pairings are made anew (the class teacher at once)."""
    d = event.data
    await uow.children.update(d.child_id, closed_on=None)
    child = await uow.children.get(d.child_id)
    if child is not None:
        await _follow(uow, child, None, PairingEndReason.class_changed, d.reopened_on)


async def child_merged(uow, event: EventEnvelope[ChildMerged]) -> None:
    """重复档案合并: pairings, records and the schedule move to the surviving archive."""
    d = event.data
    merged = await uow.children.get(d.child_id, for_update=True)
    survivor = await uow.children.get(d.survivor_id, for_update=True)
    if merged is None:
        return
    if survivor is None:
        raise LookupError("the surviving child is not known yet; the event is retried")
    today = today_local()
    held = {p.helper_id for p, _ in await uow.pairings.active(child_id=survivor.child_id)}
    moving = await uow.pairings.active(child_id=merged.child_id)
    helpers = await uow.helpers.get_many([p.helper_id for p, _ in moving])
    for p, role in moving:
        await finish_pairing(uow, p, role, merged.village_code, today, PairingEndReason.merged, _ACTOR)
        if p.helper_id not in held:
            await start_pairing(uow, helpers[p.helper_id], survivor, p.started_on, _ACTOR)
            held.add(p.helper_id)
    await uow.children.move_history(merged.child_id, survivor.child_id)
    await uow.children.update(merged.child_id, closed_on=today, merged_into=survivor.child_id)
    await uow.schedule.disarm(merged.child_id)
    await schedule.arm(uow, today, county=survivor.county, child_ids=[survivor.child_id])


async def contacts_changed(uow, events: list[EventEnvelope[ContactCard]]) -> None:
    """A run of contact cards (a single one is a run of one): each child's newest replaces what is held."""
    cards = {}
    for e in events:  # in stream order: a later card of a child wins
        d = e.data
        cards[d.child_id] = {
            "child_id": d.child_id, "child_name": d.child_name,
            "guardian_name": d.guardian.name if d.guardian else None,
            "guardian_phone": d.guardian.phone if d.guardian else None,
            "version": e.aggregate_version,
        }
    await uow.children.save_contacts([cards[c] for c in sorted(cards)])


async def consent_changed(uow, event: EventEnvelope[ConsentChanged]) -> None:
    """知情同意 given or withdrawn (registry.consent.changed): kept on the child, where the commands and the
    compliance read it (what stops and what goes on: domain/consent.py). Given again, the child's schedule is
    armed again for the volunteers' rules (their windows were not armed while it was withdrawn)."""
    d = event.data
    child = await uow.children.get(d.child_id, for_update=True)
    if child is None:  # never registered here (registry events of a child come in order: none was missed)
        return
    await uow.children.update(d.child_id, **consent.applied(
        child.consent_withdrawn_on, child.consent_given_on, d.consent.value, d.effective_on,
    ))
    if d.consent is Consent.given and child.closed_on is None:
        await schedule.arm(uow, today_local(), county=child.county, child_ids=[child.child_id])
