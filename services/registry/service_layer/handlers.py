"""Commands on the archive. Each takes plain data and a unit of work; the change
and its events (through the outbox) commit in one transaction."""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

from services.registry.adapters.id_vault import IdVault
from services.registry.adapters.ids import new_id
from services.registry.domain import guardianship
from services.registry.domain.model import CONTACT_FIELDS, OUTSIDE_THE_AREA, Child, changed_fields
from services.registry.domain.rules import RuleViolation, check_id_number, mask_id_number
from shared.clock import today_local
from shared.contracts.envelope import EventType
from shared.contracts.registry_v1 import (
    AGREEMENT_REVOKED,
    ARCHIVE_CLOSED,
    CHILD_CONTACTS,
    CHILD_GUARDED,
    CHILD_REGISTERED,
    CHILD_UNGUARDED,
    CHILD_UPDATED,
    GUARDIAN_ASSIGNED,
    GUARDIAN_REMOVED,
    AgreementEnded,
    ArchiveCloseReason,
    ArchiveClosed,
    ChildFactsChanged,
    ChildGuarded,
    ChildRegistered,
    ChildUnguarded,
    ChildUpdated,
    ContactCard,
    EnrolmentStatus,
    GuardianAssigned,
    GuardianRemoved,
    Person,
    UnguardedCause,
)
from shared.security.audit import Action

# Flat field path -> the name the fact has in ChildFactsChanged (the same, but for the parents' status).
_PATHS = {"father_status": "father.status", "mother_status": "mother.status"}
_FACTS = {_PATHS.get(name, name): name for name in ChildFactsChanged.model_fields}
_GUARDIAN_IDENTITY = ("guardian.name", "guardian.relationship", "guardian.capacity")


class ChildNotFound(LookupError):
    """No such child in the caller's area (another area's children are not revealed)."""


class Conflict(RuleViolation):
    """The request contradicts the archive as it is (answered 409, with what it collides with)."""

    def __init__(self, code: str, zh: str, en: str, **details: Any) -> None:
        super().__init__(code, zh, en)
        self.details = {k: str(v) for k, v in details.items() if v is not None}


def archive_closed(child: Child) -> Conflict:
    return Conflict("archive_closed", "该档案已结档，只读；如需修改请先重新开档",
                    "the archive is closed and read-only; reopen it first", child_id=child.id, closed_reason=child.closed_reason)


def not_future(day: date, field: str) -> None:
    if day > today_local():
        raise RuleViolation("date_future", "日期不能晚于今天", "the date is in the future").at(field)


async def open_child(uow, child_id: UUID, region: str) -> Child:
    """The child, locked for a change: in the caller's area, its archive open."""
    child = await uow.children.get(child_id, for_update=True)
    if child is None or not child.village_code.startswith(region):
        raise ChildNotFound(child_id)
    if not child.is_open:
        raise archive_closed(child)
    return child


async def emit(uow, child: Child, event_type: EventType, data, *, actor: str) -> None:
    """One event, as the child aggregate's next version (its envelope names the child's village)."""
    child.version += 1
    await uow.emit(event_type, data, aggregate_id=str(child.id), aggregate_version=child.version,
                   region_code=child.village_code, actor=actor)


class AlreadyRegistered(Exception):
    """The client_id names the archive this same registration made before (a retry): nothing new."""

    def __init__(self, child: Child) -> None:
        super().__init__(child.id)
        self.child = child


async def register_child(uow, data: dict[str, Any], *, actor: str, vault: IdVault, client_id: UUID | None = None,
                         region: str = "") -> Child:
    """建档. With ``client_id`` (made on the phone that queued the registration) the archive takes
    that id, so sending it again after a lost answer raises AlreadyRegistered instead of a second archive.
    Otherwise a time-ordered id (adapters/ids.py: the indexes keyed by child take it at their right end)."""
    data = dict(data)
    id_number = data.pop("id_number", None)
    child = Child(id=client_id or new_id(), **data)
    child.enrolment_status = EnrolmentStatus.in_school if child.school_id else EnrolmentStatus.not_enrolled
    async with uow:
        if client_id is not None and (known := await uow.children.get(client_id, for_update=True)) is not None:
            same = (known.name, known.birth_date, known.village_code) == (child.name, child.birth_date, child.village_code)
            if not (same and known.village_code.startswith(region)):
                raise Conflict("client_id_taken", "client_id 已用于另一份档案", "client_id already names another archive").at("client_id")
            raise AlreadyRegistered(known)
        if id_number:
            await _protect_id_number(uow, child, id_number, vault)
        await _emit_facts(uow, child, registered=True, changed=list(child.flat()), actor=actor)
        await settle_guardianship(uow, child, actor=actor, agreement_in_force=False)
        await uow.children.add(child)
        await uow.audit(Action.create, "child", [child.id])  # on record in the registration's transaction
        await uow.commit()
    return child


async def update_child(uow, child_id: UUID, patch: dict[str, Any], *, region: str, actor: str, vault: IdVault,
                       expected_version: int | None = None) -> Child:
    """A correction or change of the archive's facts. Removing the guardian ends the agreement in
    force with them; both parents back home closes the archive (the child is no longer left behind).
    With ``expected_version`` (the version the writer saw, e.g. on a phone that was offline) a change
    made meanwhile by someone else is refused rather than overwritten."""
    async with uow:
        child = await open_child(uow, child_id, region)
        if expected_version is not None and child.version != expected_version:
            raise Conflict(
                "version_conflict", f"档案已被他人修改：您看到的是第 {expected_version} 版，现在是第 {child.version} 版",
                f"the archive changed meanwhile: you saw version {expected_version}, it is now {child.version}",
                current_version=child.version, your_version=expected_version,
            ).at("If-Match")
        before = child.flat()
        had_guardian = child.guardian is not None
        patch = dict(patch)
        id_given = "id_number" in patch
        id_number = patch.pop("id_number", None)
        for key, value in patch.items():
            if key in ("father", "mother", "guardian") and value is not None:
                value = {**(getattr(child, key) or {}), **value}  # merge-patch of the person
            setattr(child, key, value)
        if child.guardian is not None:
            child.guardian.setdefault("capacity", "full")
            if not (child.guardian.get("name") and child.guardian.get("relationship")):
                raise RuleViolation(
                    "guardian_incomplete", "新监护人需填写姓名和关系", "a new guardian needs a name and a relationship"
                ).at("guardian")
        if id_number:
            await _protect_id_number(uow, child, id_number, vault)
        elif id_given:
            child.id_number_hash = child.id_number_masked = child.id_number_sealed = None
        elif child.id_number_hash and (child.birth_date, child.gender) != (before["birth_date"], before["gender"]):
            # The number embeds both; without it the new values cannot be checked against it.
            raise RuleViolation(
                "id_number_required", "修改出生日期或性别时须同时填写身份证号",
                "changing birth_date or gender needs the id_number as well",
            ).at("id_number")
        if not child.village_code.startswith(region):
            raise ChildNotFound(child_id)  # moving a child out of one's area is a transfer, not an edit
        changed = changed_fields(before, child.flat())
        # On record in the change's transaction; a patch that changes nothing still showed the archive.
        await uow.audit(Action.update, "child", [child.id])
        if not changed:
            await uow.commit()  # the record of access only
            return child
        await _emit_facts(uow, child, registered=False, changed=changed, actor=actor)
        lapse = None
        if had_guardian and child.guardian is None:
            lapse = UnguardedCause.guardian_removed
            await emit(uow, child, GUARDIAN_REMOVED, GuardianRemoved(child_id=child.id), actor=actor)
            await end_agreement_in_force(uow, child, actor=actor)
        in_force = await uow.agreements.in_force(child.id) is not None
        await settle_guardianship(uow, child, actor=actor, agreement_in_force=in_force, lapse=lapse)
        if guardianship.parents_returned(child):
            await close(uow, child, ArchiveCloseReason.parents_returned, today_local(), actor=actor)
        await uow.children.save(child)
        await uow.commit()
    return child


async def settle_guardianship(
    uow, child: Child, *, actor: str, agreement_in_force: bool, lapse: UnguardedCause | None = None,
    agreement_id: UUID | None = None,
) -> None:
    """Raise or lower the 无人监护 flag as the child's guardianship now stands; an event when it moves."""
    if not child.is_open:
        return
    cause = guardianship.unguarded_cause(child, agreement_in_force=agreement_in_force, lapse=lapse)
    if cause and not child.unguarded_cause:
        child.unguarded_cause, child.unguarded_since = cause.value, today_local()
        await emit(uow, child, CHILD_UNGUARDED, ChildUnguarded(child_id=child.id, cause=cause), actor=actor)
    elif not cause and child.unguarded_cause:
        child.unguarded_cause = child.unguarded_since = None
        await emit(uow, child, CHILD_GUARDED, ChildGuarded(child_id=child.id, agreement_id=agreement_id), actor=actor)


async def end_agreement_in_force(uow, child: Child, *, actor: str, on: date | None = None) -> None:
    """The agreement in force ends with its guardian (revoked); its expiry no longer matters."""
    agreement = await uow.agreements.in_force(child.id)
    if agreement is None:
        return
    on = on or today_local()
    await uow.agreements.set(agreement["id"], status="revoked", ended_on=on)
    await uow.cancel_timer("agreement_expiry", str(agreement["id"]))
    await emit(uow, child, AGREEMENT_REVOKED, AgreementEnded(child_id=child.id, agreement_id=agreement["id"], ended_on=on), actor=actor)


async def close(uow, child: Child, reason: ArchiveCloseReason, on: date, *, actor: str) -> None:
    """结档: the archive becomes read-only; consumers stop following the child."""
    child.archive_status, child.closed_reason, child.closed_on = "closed", reason.value, on
    await emit(uow, child, ARCHIVE_CLOSED, ArchiveClosed(child_id=child.id, reason=reason, closed_on=on), actor=actor)


async def _protect_id_number(uow, child: Child, id_number: str, vault: IdVault) -> None:
    try:
        v = check_id_number(id_number, birth_date=child.birth_date, gender=child.gender)
    except RuleViolation as violation:
        raise violation.at("id_number") from None
    child.id_number_hash = vault.hash(v)
    child.id_number_masked, child.id_number_sealed = mask_id_number(v), vault.seal(v, child.id_number_hash)
    existing = await uow.children.open_with_id_number(child.id_number_hash, other_than=child.id)
    if existing:
        raise Conflict(
            "id_number_registered", "该身份证号已有在档儿童档案", "this ID number is already on an open archive",
            existing_child_id=None if existing == OUTSIDE_THE_AREA else existing,
        ).at("id_number")


async def _emit_facts(uow, child: Child, *, registered: bool, changed: list[str], actor: str) -> None:
    """One event per version on registry.events; the contact card when personal data changed."""
    flat = child.flat()
    if registered:
        facts = {f: flat.get(path) for path, f in _FACTS.items()}
        data = ChildRegistered(
            child_id=child.id, guardian_relationship=(child.guardian or {}).get("relationship"), **facts
        )
        await emit(uow, child, CHILD_REGISTERED, data, actor=actor)
    else:
        changes = ChildFactsChanged(**{_FACTS[p]: flat.get(p) for p in changed if p in _FACTS})
        await emit(uow, child, CHILD_UPDATED, ChildUpdated(child_id=child.id, changed_fields=changed, changes=changes), actor=actor)
    if child.guardian and any(p in changed for p in _GUARDIAN_IDENTITY):
        g = child.guardian
        data = GuardianAssigned(child_id=child.id, relationship=g["relationship"], capacity=g["capacity"])
        await emit(uow, child, GUARDIAN_ASSIGNED, data, actor=actor)
    if any(p in changed for p in (*CONTACT_FIELDS, "guardian.relationship")):
        # A snapshot of the current version: it does not take a version of its own.
        await uow.emit(CHILD_CONTACTS, contact_card(child), aggregate_id=str(child.id), aggregate_version=child.version,
                       region_code=child.village_code, actor=actor)


def contact_card(child: Child) -> ContactCard:
    def person(p: dict | None) -> Person | None:
        return Person(name=p.get("name"), phone=p.get("phone")) if p else None

    return ContactCard(
        child_id=child.id, child_name=child.name, guardian=person(child.guardian),
        guardian_relationship=(child.guardian or {}).get("relationship"),
        father=person(child.father), mother=person(child.mother),
    )
