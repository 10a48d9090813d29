"""Entrusted-guardianship agreements (委托监护责任确认书): signed, renewed, revoked, expired.

An agreement in force has a timer at the local midnight after its last valid day; the
registry's timer poller fires it (timers are data: a restart loses nothing) and the expiry
is emitted then, with the 无人监护 flag it raises.
"""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID, uuid4

from services.registry.domain import guardianship
from services.registry.domain.rules import RuleViolation
from services.registry.service_layer.handlers import (
    Conflict,
    emit,
    end_agreement_in_force,
    not_future,
    open_child,
    settle_guardianship,
)
from shared.clock import end_of_day, today_local
from shared.contracts.registry_v1 import (
    AGREEMENT_EXPIRED,
    AGREEMENT_RENEWED,
    AGREEMENT_SIGNED,
    AgreementEnded,
    AgreementFacts,
    UnguardedCause,
)
from shared.timers import Timer

EXPIRY = "agreement_expiry"


class AgreementNotFound(LookupError):
    pass


def _facts(agreement: dict[str, Any]) -> AgreementFacts:
    return AgreementFacts(
        child_id=agreement["child_id"], agreement_id=agreement["id"], guardian_relationship=agreement["guardian_relationship"],
        signed_on=agreement["signed_on"], valid_until=agreement["valid_until"],
    )


async def sign_agreement(uow, child_id: UUID, *, signed_on: date, valid_until: date, region: str, actor: str) -> dict[str, Any]:
    """The child's current guardian signs; one agreement is in force at a time (renew or revoke it first)."""
    guardianship.check_agreement_dates(signed_on, valid_until, today_local())
    async with uow:
        child = await open_child(uow, child_id, region)
        if not guardianship.has_capable_guardian(child):
            raise RuleViolation("guardian_required", "签订委托监护协议前须先登记有监护能力的监护人",
                                "record a guardian with guardianship capacity before the agreement").at("guardian")
        current = await uow.agreements.in_force(child.id)
        if current:
            raise Conflict("agreement_in_force", "已有生效的委托监护协议，请续签或先解除",
                           "an agreement is already in force: renew or revoke it", agreement_id=current["id"])
        agreement = {
            "id": uuid4(), "child_id": child.id, "guardian_name": child.guardian["name"],
            "guardian_relationship": child.guardian["relationship"], "signed_on": signed_on,
            "valid_until": valid_until, "status": "in_force", "ended_on": None, "actor": actor,
        }
        await uow.agreements.add(agreement)
        await uow.schedule_timer(EXPIRY, str(agreement["id"]), end_of_day(valid_until))
        await emit(uow, child, AGREEMENT_SIGNED, _facts(agreement), actor=actor)
        await settle_guardianship(uow, child, actor=actor, agreement_in_force=True, agreement_id=agreement["id"])
        await uow.children.save(child)
        await uow.commit()
    return agreement


async def _agreement_in_force(uow, child_id: UUID, agreement_id: UUID) -> dict[str, Any]:
    agreement = await uow.agreements.get(agreement_id, for_update=True)
    if agreement is None or agreement["child_id"] != child_id:
        raise AgreementNotFound(agreement_id)
    if agreement["status"] != "in_force":
        raise Conflict("agreement_ended", "该协议已结束（过期或解除），请重新签订",
                       "this agreement has ended (expired or revoked): sign a new one", status=agreement["status"])
    return agreement


async def renew_agreement(uow, child_id: UUID, agreement_id: UUID, *, valid_until: date, region: str, actor: str) -> dict[str, Any]:
    async with uow:
        child = await open_child(uow, child_id, region)
        agreement = await _agreement_in_force(uow, child.id, agreement_id)
        if valid_until <= agreement["valid_until"]:
            raise RuleViolation("valid_until_not_later", "续签后的有效期应晚于原有效期",
                                "a renewal's valid_until must be after the current one").at("valid_until")
        agreement["valid_until"] = valid_until
        await uow.agreements.set(agreement_id, valid_until=valid_until)
        await uow.schedule_timer(EXPIRY, str(agreement_id), end_of_day(valid_until))  # moves the expiry
        await emit(uow, child, AGREEMENT_RENEWED, _facts(agreement), actor=actor)
        await uow.children.save(child)
        await uow.commit()
    return agreement


async def revoke_agreement(uow, child_id: UUID, agreement_id: UUID, *, revoked_on: date, region: str, actor: str) -> None:
    not_future(revoked_on, "revoked_on")
    async with uow:
        child = await open_child(uow, child_id, region)
        agreement = await _agreement_in_force(uow, child.id, agreement_id)
        if revoked_on < agreement["signed_on"]:
            raise RuleViolation("revoked_on_order", "解除日期不能早于签订日期",
                                "revoked_on is before the agreement was signed").at("revoked_on")
        await end_agreement_in_force(uow, child, actor=actor, on=revoked_on)
        await settle_guardianship(uow, child, actor=actor, agreement_in_force=False, lapse=UnguardedCause.agreement_revoked)
        await uow.children.save(child)
        await uow.commit()


async def agreement_expired(uow, timer: Timer) -> None:
    """Timer handler, in the poller's transaction: the agreement's last valid day has passed."""
    agreement = await uow.agreements.get(UUID(timer.key), for_update=True)
    if agreement is None or agreement["status"] != "in_force":
        return  # revoked meanwhile
    child = await uow.children.get(agreement["child_id"], for_update=True)
    await uow.agreements.set(agreement["id"], status="expired", ended_on=agreement["valid_until"])
    data = AgreementEnded(child_id=child.id, agreement_id=agreement["id"], ended_on=agreement["valid_until"])
    await emit(uow, child, AGREEMENT_EXPIRED, data, actor="system:agreement-expiry")
    await settle_guardianship(uow, child, actor="system:agreement-expiry", agreement_in_force=False,
                              lapse=UnguardedCause.agreement_expired)
    await uow.children.save(child)


TIMER_HANDLERS = {EXPIRY: agreement_expired}
