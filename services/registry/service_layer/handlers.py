"""Commands on the archive. Each takes plain data and a unit of work; the change
and its events (through the outbox) commit in one transaction."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any
from uuid import UUID, uuid4

from services.registry.domain.model import CONTACT_FIELDS, Child, changed_fields
from services.registry.domain.rules import RuleViolation, check_id_number, mask_id_number
from shared.contracts.registry_v1 import (
    CHILD_CONTACTS,
    CHILD_REGISTERED,
    CHILD_UPDATED,
    GUARDIAN_ASSIGNED,
    ChildFactsChanged,
    ChildRegistered,
    ChildUpdated,
    ContactCard,
    GuardianAssigned,
    Person,
)

# Flat field path -> the name the fact has in ChildFactsChanged (the same, but for the parents' status).
_PATHS = {"father_status": "father.status", "mother_status": "mother.status"}
_FACTS = {_PATHS.get(name, name): name for name in ChildFactsChanged.model_fields}
_GUARDIAN_IDENTITY = ("guardian.name", "guardian.relationship", "guardian.capacity")


class ChildNotFound(LookupError):
    """No such child in the caller's area (another area's children are not revealed)."""


def id_number_hash(id_number: str, key: str) -> str:
    return hmac.new(key.encode(), id_number.encode(), hashlib.sha256).hexdigest()


async def register_child(uow, data: dict[str, Any], *, actor: str, id_hash_key: str, correlation_id: UUID | None = None) -> Child:
    data = dict(data)
    id_number = data.pop("id_number", None)
    child = Child(id=uuid4(), **data)
    if id_number:
        _protect_id_number(child, id_number, id_hash_key)
    async with uow:
        await _emit(uow, child, registered=True, changed=list(child.flat()), actor=actor, correlation_id=correlation_id)
        await uow.children.add(child)
        await uow.commit()
    return child


async def update_child(
    uow, child_id: UUID, patch: dict[str, Any], *, region: str, actor: str, id_hash_key: str,
    correlation_id: UUID | None = None,
) -> Child:
    async with uow:
        child = await uow.children.get(child_id, for_update=True)
        if child is None or not child.village_code.startswith(region):
            raise ChildNotFound(child_id)
        before = child.flat()
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
            _protect_id_number(child, id_number, id_hash_key)
        elif id_given:
            child.id_number_hash = child.id_number_masked = None
        elif child.id_number_hash and (child.birth_date, child.gender) != (before["birth_date"], before["gender"]):
            # The number embeds both; without it the new values cannot be checked against it.
            raise RuleViolation(
                "id_number_required", "修改出生日期或性别时须同时填写身份证号",
                "changing birth_date or gender needs the id_number as well",
            ).at("id_number")
        if not child.village_code.startswith(region):
            raise ChildNotFound(child_id)  # moving a child out of one's area is a transfer, not an edit
        changed = changed_fields(before, child.flat())
        if changed:
            await _emit(uow, child, registered=False, changed=changed, actor=actor, correlation_id=correlation_id)
            await uow.children.save(child)
            await uow.commit()
    return child


def _protect_id_number(child: Child, id_number: str, key: str) -> None:
    try:
        v = check_id_number(id_number, birth_date=child.birth_date, gender=child.gender)
    except RuleViolation as violation:
        raise violation.at("id_number") from None
    child.id_number_hash, child.id_number_masked = id_number_hash(v, key), mask_id_number(v)


async def _emit(uow, child: Child, *, registered: bool, changed: list[str], actor: str, correlation_id: UUID | None) -> None:
    """One event per version on registry.events; the contact card when personal data changed."""
    common = {"aggregate_id": str(child.id), "region_code": child.village_code, "actor": actor, "correlation_id": correlation_id}
    flat = child.flat()
    child.version += 1
    if registered:
        facts = {f: flat.get(path) for path, f in _FACTS.items()}
        data = ChildRegistered(
            child_id=child.id, guardian_relationship=(child.guardian or {}).get("relationship"), **facts
        )
        await uow.emit(CHILD_REGISTERED, data, aggregate_version=child.version, **common)
    else:
        changes = ChildFactsChanged(**{_FACTS[p]: flat.get(p) for p in changed if p in _FACTS})
        data = ChildUpdated(child_id=child.id, changed_fields=changed, changes=changes)
        await uow.emit(CHILD_UPDATED, data, aggregate_version=child.version, **common)
    if child.guardian and any(p in changed for p in _GUARDIAN_IDENTITY):
        child.version += 1
        g = child.guardian
        data = GuardianAssigned(child_id=child.id, relationship=g["relationship"], capacity=g["capacity"])
        await uow.emit(GUARDIAN_ASSIGNED, data, aggregate_version=child.version, **common)
    if any(p in changed for p in (*CONTACT_FIELDS, "guardian.relationship")):
        await uow.emit(CHILD_CONTACTS, contact_card(child), aggregate_version=child.version, **common)


def contact_card(child: Child) -> ContactCard:
    def person(p: dict | None) -> Person | None:
        return Person(name=p.get("name"), phone=p.get("phone")) if p else None

    return ContactCard(
        child_id=child.id, child_name=child.name, guardian=person(child.guardian),
        guardian_relationship=(child.guardian or {}).get("relationship"),
        father=person(child.father), mother=person(child.mother),
    )
