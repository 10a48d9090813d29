"""Protection of the child's data (个人信息保护): the guardian's consent (知情同意), de-identification of
closed archives and dropping finished imports' rosters after the retention period (去标识化), and
re-sealing ID numbers under the newest key."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from uuid import UUID

from sqlalchemy import func, select, update

from services.registry.adapters.id_vault import IdVault
from services.registry.adapters.orm import census_imports
from services.registry.domain.model import Child
from services.registry.service_layer.census import FINISHED, PURGED, stored_roster
from services.registry.service_layer.handlers import ChildNotFound, contact_card, emit, open_child
from shared.clock import end_of_day
from shared.contracts.registry_v1 import (
    ARCHIVE_DEIDENTIFIED,
    CHILD_CONTACTS,
    CONSENT_CHANGED,
    ArchiveDeidentified,
    Consent,
    ConsentChanged,
)

PLACEHOLDER = "（已去标识化）"
_BATCH = 200
# What a person keeps once de-identified: the facts (status, relationship, capacity); no name, phone or free text.
_PERSONAL = ("name", "phone", "work_place")


async def record_consent(uow, child_id: UUID, consent: Consent, on: date, *, region: str, actor: str) -> Child:
    """知情同意 given or withdrawn by the guardian; an event on registry.events when it changes."""
    async with uow:
        child = await open_child(uow, child_id, region)
        if child.consent == consent.value:
            return child
        child.consent, child.consent_on = consent.value, on
        await emit(uow, child, CONSENT_CHANGED, ConsentChanged(child_id=child.id, consent=consent, effective_on=on), actor=actor)
        await uow.children.save(child)
        await uow.commit()
    return child


async def reveal_id_number(uow, child_id: UUID, vault: IdVault, *, region: str) -> str | None:
    """The full ID number of a child in the caller's area (None: none recorded)."""
    async with uow:
        child = await uow.children.get(child_id)
    if child is None or not child.village_code.startswith(region):
        raise ChildNotFound(child_id)
    if not child.id_number_sealed:
        return None
    return vault.open(child.id_number_sealed, child.id_number_hash)


def deidentify(child: Child, on: date) -> None:
    """The archive keeps its pseudonymous id and its facts; names, phones and ID data go."""
    child.name = PLACEHOLDER
    for person in ("father", "mother", "guardian"):
        value = getattr(child, person)
        if value is not None:
            setattr(child, person, {k: v for k, v in value.items() if k not in _PERSONAL})
    child.id_number_hash = child.id_number_masked = child.id_number_sealed = None
    child.deidentified_on = on


async def purge_closed(uow_factory, *, retention_days: int, today: date, actor: str = "retention") -> int:
    """De-identify every archive closed more than ``retention_days`` ago; returns how many. Consumers
    are told (an event, and a contact card without names) so that they drop their copies too."""
    done = 0
    while True:
        async with uow_factory() as uow:
            ids = await uow.children.closed_until(today - timedelta(days=retention_days), limit=_BATCH)
            for child_id in ids:
                child = await uow.children.get(child_id)
                deidentify(child, today)
                await uow.children.forget_personal_records(child.id, PLACEHOLDER)
                await emit(uow, child, ARCHIVE_DEIDENTIFIED, ArchiveDeidentified(child_id=child.id, deidentified_on=today), actor=actor)
                await uow.emit(CHILD_CONTACTS, contact_card(child), aggregate_id=str(child.id),
                               aggregate_version=child.version, region_code=child.village_code, actor=actor)
                await uow.children.save(child)
            await uow.commit()
        done += len(ids)
        if len(ids) < _BATCH:
            return done


async def purge_rosters(uow_factory, *, retention_days: int, today: date) -> int:
    """Drop the stored roster (``census_imports.content``: names, ID numbers, phones) of every import
    finished ``retention_days`` or more days ago (days counted as ``purge_closed`` counts them); returns
    how many. The import keeps its counts, its rows' outcomes and reasons (no personal data) and the
    natural keys that keep a child from being registered twice; its report.xlsx answers 410
    (``census.RosterPurged``). A roster a transaction (a roster may be 100 MB)."""
    t = census_imports
    done = 0
    while True:
        async with uow_factory() as uow:
            purged = await uow.session.scalar(
                select(t.c.id).where(
                    t.c.status.in_(FINISHED), t.c.finished_at < end_of_day(today - timedelta(days=retention_days)),
                    ~func.coalesce(t.c.content_key, "").startswith(PURGED),
                ).order_by(t.c.finished_at).limit(1).with_for_update(skip_locked=True)
            )
            if purged is None:
                return done
            await uow.session.execute(update(t).where(t.c.id == purged).values(
                content=b"", content_key=f"{PURGED}{today.isoformat()}", updated_at=func.now()))
            await uow.commit()
        done += 1


async def rotate_keys(uow_factory, vault: IdVault, *, region: str = "") -> int:
    """Re-seal every ID number (of ``region``: a county at a time, if wished) sealed with an older key
    under the newest; returns how many. Once it has run everywhere, the older keys can be taken out of
    SHOUHU_ID_ENCRYPTION_KEYS."""
    done = 0
    while True:
        async with uow_factory() as uow:
            ids = await uow.children.sealed_with_other_keys(vault.keys.current, limit=_BATCH, region=region)
            for child_id in ids:
                child = await uow.children.get(child_id)
                child.id_number_sealed = vault.seal(vault.open(child.id_number_sealed, child.id_number_hash))
                await uow.children.save(child)
            await uow.commit()
        done += len(ids)
        if len(ids) < _BATCH:
            return done


async def rotate_roster_keys(uow_factory, vault: IdVault, *, region: str = "") -> int:
    """Re-seal under the newest key every stored census roster sealed with an older one, and seal those
    stored in clear before migration 0007; returns how many. One roster a transaction (a roster may be
    100 MB). ``region``: the imports whose uploader's area lies inside it (an admin's, area "", only in
    a run over everything). A job being imported meanwhile keeps its place (``last_row`` is untouched)."""
    t = census_imports
    done = 0
    while True:
        async with uow_factory() as uow:
            row = (await uow.session.execute(
                select(t.c.id, t.c.content, t.c.content_key)
                .where(t.c.content_key.is_distinct_from(vault.keys.current), t.c.region.startswith(region, autoescape=True),
                       ~func.coalesce(t.c.content_key, "").startswith(PURGED))  # dropped: nothing to re-seal
                .order_by(t.c.id).limit(1).with_for_update(skip_locked=True)
            )).first()
            if row is None:
                return done
            sealed = await asyncio.to_thread(
                lambda: vault.seal_roster(stored_roster(vault, row.id, row.content, row.content_key), row.id))
            await uow.session.execute(update(t).where(t.c.id == row.id).values(content=sealed, content_key=vault.keys.current))
            await uow.commit()
        done += 1
