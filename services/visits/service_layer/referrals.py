"""Referrals (转介) with deadlines that enforce themselves, above all the dropout flow (劝返复学).

A case opens from an event (unexcused absences reaching the county's threshold, a dropout
registered, the 无人监护 flag, no household registration, a concern seen on a visit) or by
hand. A dropout case first goes to the school and the child's helpers for persuasion; when
that fails (refused twice, or its deadline passes) the written report (书面报告) goes to
the education bureau and the township government and civil affairs is informed (通报).
The receiving agency must acknowledge and then report an outcome, each within a deadline;
a missed deadline is reminded (催办) and then reported to the county's leading-group office.
Every step is an event (``visits.referral.*``) and a row of the case's timeline; deadlines
are timers (data: they survive restarts and can be moved).
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID, uuid4

from services.visits.domain.errors import Refusal
from services.visits.domain.model import ChildPlace
from services.visits.domain.referrals import (
    Absence,
    Referral,
    ReferralPolicy,
    county_policies,
    dropout_threshold_reached,
    failure_cause,
    message_stage,
    policy_for_concern,
    undelivered_outstanding,
)
from services.visits.service_layer.written_report import render_report
from shared.clock import today_local
from shared.logs import log_fields
from shared.contracts.envelope import EventType
from shared.contracts.notifications_v1 import (
    AgencyKind,
    DeliveryFailed,
    MessageKind,
    MessageRequested,
    RecipientRole,
    RecipientSelector,
    message_requested,
)
from shared.contracts.referrals_v1 import (
    ATTEMPT_RECORDED,
    DEADLINE_MISSED,
    MESSAGE_UNDELIVERABLE,
    REFERRAL_CLOSED,
    REFERRAL_OPENED,
    STAGE_CHANGED,
    AttemptRecorded,
    DeadlineMissed,
    EscalationStep,
    MessageUndeliverable,
    PersuasionOutcome,
    ReferralClosed,
    ReferralOpened,
    ReferralOutcome,
    ReferralPolicyCode,
    ReferralStage,
    StageChanged,
)
from shared.contracts.visits_v1 import ConcernKind
from shared.timers import Timer

log = logging.getLogger("shouhu.visits.referrals")

DEADLINE = "referral_deadline"  # timer kind; key: the referral's id (its stage's deadline), or "<id>:escalate"
SYSTEM = "system:referrals"

# An agency's outcome code (agency_v1.OutcomeCode) -> how the case closes; the others leave it open.
_AGENCY_OUTCOMES = {
    "returned_to_school": ReferralOutcome.returned,
    "transferred": ReferralOutcome.transferred,
    "exempt": ReferralOutcome.exempted,
    "resolved": ReferralOutcome.resolved,
}


def now() -> datetime:
    return datetime.now(UTC)


async def policies(uow, county: str) -> dict[ReferralPolicyCode, ReferralPolicy]:
    return county_policies(await uow.referrals.policy_overrides(county))


async def _emit(uow, r: Referral, event_type: EventType, data, actor: str) -> None:
    r.version += 1
    await uow.emit(event_type, data, aggregate_id=str(r.id), aggregate_version=r.version, region_code=r.village_code, actor=actor)


def _deadline(r: Referral) -> tuple[str, datetime, dict]:
    """The timer of the case's stage deadline: key, due time, payload."""
    return str(r.id), r.due_at, {"stage": r.stage, "step": "deadline"}


async def _arm(uow, r: Referral) -> None:
    """The timer of the stage's deadline, moved to the new stage's; the escalation pending for the old
    stage (a key of its own, beside the deadline's) is dropped. (A case opened in this transaction has
    neither: ``open_referrals`` sets the timers of its run at once.)"""
    await uow.cancel_timer(DEADLINE, f"{r.id}:escalate")
    if r.due_at is None:
        await uow.cancel_timer(DEADLINE, str(r.id))
    else:
        await uow.schedule_timer(DEADLINE, *_deadline(r))


async def _ask(uow, r: Referral, policy: ReferralPolicy, *, purpose: str, recipients: list[RecipientSelector],
               kind: MessageKind, data: dict[str, Any], actor: str, agency: str | None = None,
               stage: str | None = None) -> None:
    """A message through notifications, remembered (with the stage it is sent for: the case's, unless
    given) so that its receipt, its answer or its failure to arrive find the case."""
    request_id = uuid4()
    message = MessageRequested(
        request_id=request_id, kind=kind, urgency=policy.urgency, child_id=r.child_id, region_code=r.village_code,
        recipients=recipients, data={"case_id": str(r.id), **data},
    )
    await uow.emit(message_requested(message), message, aggregate_id=str(request_id), aggregate_version=1, region_code=r.village_code, actor=actor)
    await uow.referrals.add_request(request_id, r.id, agency, purpose, stage or r.stage)


def _agency(kind: AgencyKind) -> list[RecipientSelector]:
    return [RecipientSelector(role=RecipientRole.agency, agency=kind)]


# --- opening ---------------------------------------------------------------------------------


async def open_referral(uow, child: ChildPlace, policy: ReferralPolicy, *, trigger: str, actor: str, at: datetime | None = None) -> Referral | None:
    """立案; None when the child already has an open case under the policy (the trigger joins it)."""
    return (await open_referrals(uow, [(child, policy)], trigger=trigger, actor=actor, at=at))[0]


async def open_referrals(uow, cases: list[tuple[ChildPlace, ReferralPolicy]], *, trigger: str, actor: str,
                         at: datetime | None = None) -> list[Referral | None]:
    """立案 for each (child, policy), in that order (a run of a census's children, or one): what they need is
    read once for all of them (their open cases and helpers, locked; their absences; their counties' policies
    and calendars), and the new cases, their events, timeline lines, requests and timers are written a table
    at a time."""
    if not cases:
        return []
    at = at or now()
    ids = list(dict.fromkeys(child.child_id for child, _ in cases))
    # A child added in this transaction has no case and no absence yet, and no helper but one paired now.
    added = uow.children.added(ids)
    earlier = [c for c in ids if c not in added]
    held = {(r.child_id, r.policy): r for r in await uow.referrals.open_of_children(earlier)} if earlier else {}
    paired = [c for c in ids if c in uow.pairings.children_paired_now or c in earlier]
    helpers = await uow.pairings.helpers_of(paired) if paired else {}
    await uow.referrals.load_counties(child.county for child, _ in cases)
    # Only a case reported at once shows the agencies the child's absences.
    absences = await uow.referrals.absences_of(earlier) if earlier and any(not p.persuades for _, p in cases) else {}
    opened: list[Referral | None] = []
    for child, policy in cases:
        existing = held.get((child.child_id, policy.code))
        if existing is not None:
            await uow.referrals.log(existing.id, "triggered_again", actor, trigger=trigger)
            opened.append(None)
        else:
            held[child.child_id, policy.code] = r = await _open(
                uow, child, policy, helpers.get(child.child_id, []), absences.get(child.child_id, []),
                trigger=trigger, actor=actor, at=at,
            )
            opened.append(r)
    fresh = [r for r in opened if r is not None]
    await uow.referrals.add_many(fresh)
    await uow.schedule_timers(DEADLINE, [_deadline(r) for r in fresh if r.due_at is not None])
    return opened


async def _open(uow, child: ChildPlace, policy: ReferralPolicy, helper_ids: list[UUID], absences: list[Absence], *,
                trigger: str, actor: str, at: datetime) -> Referral:
    """A new case, in memory: the caller writes it and sets its deadline's timer (``open_referrals``)."""
    persuading = policy.persuades
    r = Referral(
        id=uuid4(), child_id=child.child_id, policy=policy.code, county=child.county, village_code=child.village_code,
        school_id=child.school_id, stage=ReferralStage.persuasion if persuading else ReferralStage.reported,
        trigger=trigger, opened_on=today_local(at), due_at=None, helper_ids=helper_ids,
    )
    await uow.referrals.log(r.id, "opened", actor, trigger=trigger, helpers=[str(h) for h in helper_ids])
    if persuading:
        r.due_at = policy.persuasion_due(at)
        await _emit(uow, r, REFERRAL_OPENED, ReferralOpened(
            referral_id=r.id, child_id=r.child_id, policy=r.policy, stage=r.stage, trigger=trigger, school_id=r.school_id,
            opened_on=r.opened_on, due_at=r.due_at), actor)
        # The family hears at once; the school and the helpers have the case in their worklist.
        await _ask(uow, r, policy, purpose="notice", recipients=[RecipientSelector(role=RecipientRole.guardian)],
                   kind=MessageKind.absence_notice, data={"school_id": r.school_id}, actor=actor)
    else:
        await _emit(uow, r, REFERRAL_OPENED, ReferralOpened(
            referral_id=r.id, child_id=r.child_id, policy=r.policy, stage=ReferralStage.reported, trigger=trigger,
            school_id=r.school_id, opened_on=r.opened_on, due_at=None), actor)
        await _report(uow, r, policy, at, actor, previous=ReferralStage.reported, opened=(child, absences))
    return r


async def open_by_hand(uow, child_id: UUID, code: ReferralPolicyCode, *, region: str, actor: str) -> Referral:
    """A case opened by a user (a supervisor who sees a need no event reported)."""
    from services.visits.service_layer.commands import child_in

    async with uow:
        child = await child_in(uow, child_id, region)
        policy = (await policies(uow, child.county))[code]
        r = await open_referral(uow, child, policy, trigger="manual", actor=actor)
        if r is None:
            raise Refusal("referral_open", "该儿童已有同类未结案件", "the child already has an open case of this kind", "policy")
        await uow.commit()
    return r


# --- reporting to the agencies (书面报告, 转介) ---------------------------------------------------


async def _facts(uow, r: Referral, opened: tuple[ChildPlace, list[Absence]] | None) -> dict[str, Any]:
    """What the case knows, before minimisation: the policy picks what each agency may see (``opened``: the
    child's place and absences, for a case opened in this transaction, which has no attempt yet)."""
    facts: dict[str, Any] = {"village_code": r.village_code, "school_id": r.school_id}
    child, absences = opened or (await uow.children.get(r.child_id), await uow.referrals.absences(r.child_id))
    if child is not None:
        facts["class_name"] = child.class_name
    absences = [a for a in absences if not a.excused]
    if absences:
        facts["school_days"] = sum(a.school_days for a in absences)
        facts["since"] = min(a.from_date for a in absences).isoformat()
    attempts = [] if opened else await uow.referrals.attempts(r.id)
    if attempts:
        facts["attempts"] = len(attempts)
        facts["causes"] = ",".join(sorted({a["cause"] for a in attempts if a["cause"]}))
    return facts


async def _report(uow, r: Referral, policy: ReferralPolicy, at: datetime, actor: str, *, previous: ReferralStage,
                  opened: tuple[ChildPlace, list[Absence]] | None = None) -> None:
    """The case goes to the agencies that must act (report_to) and those informed (inform); each sees
    only the facts the policy lists, and each disclosure is logged. ``opened``: the case was opened in this
    transaction (with its child's place and absences), so it has no timer yet (``open_referrals`` sets it)."""
    facts = await _facts(uow, r, opened)
    data = policy.disclosed(facts)
    if policy.persuades:
        name = await _child_name(uow, r) if "name" in policy.disclose else None
        await uow.referrals.keep_report(r.id, render_report(r, policy, facts, name=name, attempts=await uow.referrals.attempts(r.id)))
    for purpose, kinds in (("report", policy.report_to), ("inform", policy.inform)):
        for kind in kinds:
            await _ask(uow, r, policy, purpose=purpose, recipients=_agency(kind), kind=policy.message_kind, data=data,
                       actor=actor, agency=kind.value, stage=ReferralStage.reported)
            await uow.referrals.disclose(r.id, kind.value, sorted(policy.disclose), purpose)
    r.stage, r.due_at = ReferralStage.reported, policy.ack_due(at, await uow.referrals.calendar(r.county))
    await uow.referrals.log(r.id, "reported", actor, agencies=[k.value for k in policy.report_to], informed=[k.value for k in policy.inform])
    await _emit(uow, r, STAGE_CHANGED, StageChanged(
        referral_id=r.id, child_id=r.child_id, policy=r.policy, previous=previous, stage=r.stage,
        agencies=[k.value for k in policy.report_to], due_at=r.due_at), actor)
    if opened is None:
        await _arm(uow, r)


async def _child_name(uow, r: Referral) -> str | None:
    return (await uow.children.names([r.child_id])).get(r.child_id)


# --- persuasion (劝返走访) ------------------------------------------------------------------------


async def attempt_recorded(uow, *, child: ChildPlace, record_id: UUID, visited_on: date, persuasion: dict, actor: str) -> None:
    """A persuasion visit, in the transaction of its visit record: refused often enough, persuasion
    has failed and the written report goes out."""
    r = next(iter(await uow.referrals.open_of_child(child.child_id, ReferralPolicyCode.dropout)), None)
    if r is None or r.stage != ReferralStage.persuasion:
        raise Refusal("no_persuasion_case", "该儿童没有处于学校劝返阶段的辍学案件",
                      "the child has no dropout case in the school's persuasion stage", "persuasion")
    outcome = PersuasionOutcome(persuasion["outcome"])
    await uow.referrals.add_attempt({
        "record_id": record_id, "referral_id": r.id, "visited_on": visited_on, "outcome": outcome.value,
        "cause": persuasion.get("cause"), "guardian_view": persuasion.get("guardian_view"),
    })
    await uow.referrals.log(r.id, "attempt", actor, record_id=str(record_id), outcome=outcome.value, visited_on=visited_on.isoformat())
    await _emit(uow, r, ATTEMPT_RECORDED, AttemptRecorded(
        referral_id=r.id, child_id=r.child_id, record_id=record_id, visited_on=visited_on, outcome=outcome,
        cause=persuasion.get("cause")), actor)
    policy = (await policies(uow, r.county))[r.policy]
    if outcome is PersuasionOutcome.refused:
        r.refusals += 1
        if r.refusals >= (policy.persuasion_refusals or 1):
            await uow.referrals.log(r.id, "persuasion_failed", actor, refusals=r.refusals)
            await _report(uow, r, policy, now(), actor, previous=ReferralStage.persuasion)
    await uow.referrals.save(r)


# --- the agency's side ---------------------------------------------------------------------------


async def acknowledge(uow, r: Referral, *, actor: str, agency: str | None, at: datetime | None = None) -> None:
    """收到回执: the outcome is due next."""
    if r.stage != ReferralStage.reported:
        await uow.referrals.log(r.id, "acknowledged_again", actor, agency=agency)
        return
    policy = (await policies(uow, r.county))[r.policy]
    at = at or now()
    in_time = r.due_at is None or at <= r.due_at
    r.stage, r.due_at = ReferralStage.acknowledged, policy.outcome_due(at)
    await uow.referrals.log(r.id, "acknowledged", actor, agency=agency)
    await _emit(uow, r, STAGE_CHANGED, StageChanged(
        referral_id=r.id, child_id=r.child_id, policy=r.policy, previous=ReferralStage.reported, stage=r.stage,
        due_at=r.due_at, in_time=in_time), actor)
    await _arm(uow, r)
    await uow.referrals.save(r)


async def move_deadline(uow, r: Referral, due_at: datetime, *, reason: str, actor: str) -> None:
    """改期: the office moves the current stage's deadline (a holiday the calendar missed, a case
    handed over); the timer moves with it and the timeline says who moved it and why."""
    if not r.is_open or r.due_at is None:
        raise Refusal("no_deadline", "该案件当前没有期限可调整", "the case has no running deadline to move", "due_at")
    if due_at <= now():
        raise Refusal("due_at_past", "新的期限须晚于现在", "the new deadline must be in the future", "due_at")
    await uow.referrals.log(r.id, "deadline_moved", actor, stage=str(r.stage), before=r.due_at.isoformat(),
                            after=due_at.isoformat(), reason=reason)
    r.due_at = due_at
    await _arm(uow, r)
    await uow.referrals.save(r)


async def close(uow, r: Referral, outcome: ReferralOutcome, *, actor: str, on: date | None = None, **detail: Any) -> None:
    """结案"""
    on, previous = on or today_local(), ReferralStage(r.stage)
    r.stage, r.outcome, r.closed_on, r.due_at = ReferralStage.closed, outcome.value, on, None
    await uow.referrals.log(r.id, "closed", actor, outcome=outcome.value, **detail)
    missed = sum(t["step"] == "reminded" for t in await uow.referrals.timeline(r.id))
    await _emit(uow, r, REFERRAL_CLOSED, ReferralClosed(
        referral_id=r.id, child_id=r.child_id, policy=r.policy, outcome=outcome, opened_on=r.opened_on, closed_on=on,
        days_open=max(0, (on - r.opened_on).days), previous_stage=previous, deadlines_missed=missed), actor)
    await _arm(uow, r)
    await uow.referrals.save(r)


async def agency_replied(uow, request_id: UUID, *, outcome: str | None, agency: str, at: datetime) -> None:
    """A receipt (outcome None) or an outcome from an agency, through notifications."""
    request = await uow.referrals.request(request_id)
    if request is None or request["purpose"] not in ("report", "reminder"):
        return  # not a case's message, or only informed (通报): nothing is due from it
    r = await uow.referrals.get(request["referral_id"], for_update=True)
    if r is None or not r.is_open:
        return
    actor = f"agency:{agency}"
    if r.stage == ReferralStage.reported:
        await acknowledge(uow, r, actor=actor, agency=agency, at=at)
    if outcome in _AGENCY_OUTCOMES:
        await close(uow, r, _AGENCY_OUTCOMES[outcome], actor=actor, agency=agency, agency_outcome=outcome)
    elif outcome:
        await uow.referrals.log(r.id, "agency_outcome", actor, outcome=outcome)


async def message_undeliverable(uow, failed: DeliveryFailed) -> None:
    """notifications could not deliver a case's message on any channel (e.g. no such agency configured for
    the county): written down once per delivery, on the timeline and beside the case, which shows it while
    it waits in the stage the message was for; while it holds the case up (a message of the escalation
    chain, not the family's notice, for the stage the open case is in) ``visits.referral.message_undeliverable``
    is published. The deadline runs on:
    a missed one is reminded and escalated as ever, and the escalation says what never arrived."""
    if failed.next_channel is not None:
        return  # a fallback channel is being tried: not undelivered (yet)
    request = await uow.referrals.request(failed.request_id)
    if request is None:
        return  # not a case's message
    r = await uow.referrals.get(request["referral_id"], for_update=True)
    if r is None:
        return
    purpose, agency = request["purpose"], request["agency"]
    stage = message_stage(purpose, request["stage"], r.stage)
    cause = failure_cause(failed.channel, failed.permanent)
    channel = failed.channel.value if failed.channel else None
    fresh = await uow.referrals.add_undelivered({
        "delivery_id": failed.delivery_id, "request_id": failed.request_id, "referral_id": r.id, "purpose": purpose,
        "agency": agency, "stage": stage, "cause": cause.value, "channel": channel, "reason": failed.reason[:500],
    })
    if not fresh:
        return  # this delivery's failure is written down already
    await uow.referrals.log(r.id, "undeliverable", SYSTEM, purpose=purpose, agency=agency, stage=stage, cause=cause.value,
                            channel=channel, reason=failed.reason[:500], request_id=str(failed.request_id))
    log.warning("referral message undeliverable", extra=log_fields(
        referral=str(r.id), purpose=purpose, agency=agency, stage=stage, cause=cause.value))
    if undelivered_outstanding(purpose, stage, r):  # it holds the case up (not for a stage or a case past)
        await _emit(uow, r, MESSAGE_UNDELIVERABLE, MessageUndeliverable(
            referral_id=r.id, child_id=r.child_id, policy=r.policy, stage=stage, purpose=purpose,
            agency=agency, request_id=failed.request_id, delivery_id=failed.delivery_id, cause=cause,
            channel=failed.channel, reason=failed.reason[:500]), SYSTEM)
        await uow.referrals.save(r)


async def _undelivered_to(uow, r: Referral) -> list[str]:
    """The agency kinds whose messages for the case's present stage never arrived."""
    return sorted({u["agency"] for u in (await uow.referrals.undelivered([r])).get(r.id, []) if u["agency"]})


# --- deadlines ----------------------------------------------------------------------------------


async def deadline_passed(uow, timer: Timer) -> None:
    """Timer handler: the stage named in the timer is still the case's, and its deadline passed."""
    r = await uow.referrals.get(UUID(timer.key.partition(":")[0]), for_update=True)
    if r is None or not r.is_open or r.stage != timer.payload.get("stage"):
        return  # moved on meanwhile
    policy = (await policies(uow, r.county))[r.policy]
    if r.stage == ReferralStage.persuasion:
        await uow.referrals.log(r.id, "persuasion_deadline_passed", SYSTEM)
        await _report(uow, r, policy, timer.due_at, SYSTEM, previous=ReferralStage.persuasion)
        await uow.referrals.save(r)
        return
    step = EscalationStep.reminder if timer.payload.get("step") == "deadline" else EscalationStep.leading_group_office
    await _emit(uow, r, DEADLINE_MISSED, DeadlineMissed(
        referral_id=r.id, child_id=r.child_id, policy=r.policy, stage=r.stage, deadline=r.due_at or timer.due_at, step=step), SYSTEM)
    data = {"reminder": True, "stage": str(r.stage)}
    if step is EscalationStep.reminder:
        for kind in policy.report_to:
            await _ask(uow, r, policy, purpose="reminder", recipients=_agency(kind), kind=policy.message_kind, data=data,
                       actor=SYSTEM, agency=kind.value)
        await uow.referrals.log(r.id, "reminded", SYSTEM, stage=str(r.stage))
        due = policy.escalation_due(timer.due_at, await uow.referrals.calendar(r.county))
        await uow.schedule_timer(DEADLINE, f"{r.id}:escalate", due, {"stage": r.stage, "step": "escalate"})
    else:
        undelivered = await _undelivered_to(uow, r)
        if undelivered:  # the office hears that those agencies were never told
            data["undelivered"] = ",".join(undelivered)
        await _ask(uow, r, policy, purpose="escalation", recipients=_agency(AgencyKind.leading_group_office),
                   kind=policy.message_kind, data=data, actor=SYSTEM, agency=AgencyKind.leading_group_office.value)
        await uow.referrals.disclose(r.id, AgencyKind.leading_group_office.value, sorted(policy.disclose), "escalation")
        await uow.referrals.log(r.id, "escalated", SYSTEM, to=AgencyKind.leading_group_office.value, stage=str(r.stage))
    await uow.referrals.save(r)


TIMER_HANDLERS = {DEADLINE: deadline_passed}


# --- what events mean for cases --------------------------------------------------------------------


async def open_for(uow, child_ids: list[UUID], code: ReferralPolicyCode, trigger: str, actor: str) -> None:
    """Cases of one policy for these children (a run of registrations, or one event's child), in that order;
    a child unknown here or closed has none."""
    known = await uow.children.get_many(child_ids) if child_ids else {}
    kids = [known[c] for c in child_ids if c in known and known[c].closed_on is None]
    counties = sorted({k.county for k in kids})
    await uow.referrals.load_counties(counties)
    county = {c: (await policies(uow, c))[code] for c in counties}
    await open_referrals(uow, [(k, county[k.county]) for k in kids], trigger=trigger, actor=actor)


async def _close_for(uow, child_id: UUID, outcome: ReferralOutcome, actor: str, *codes: ReferralPolicyCode, **detail) -> None:
    for r in await uow.referrals.open_of_child(child_id):
        if not codes or r.policy in codes:
            await close(uow, r, outcome, actor=actor, **detail)


async def absence_reported(uow, *, absence_id: UUID, child_id: UUID, from_date: date, to_date: date, school_days: int,
                           excused: bool, trigger: str, actor: str) -> None:
    await uow.referrals.add_absence({"absence_id": absence_id, "child_id": child_id, "from_date": from_date,
                                     "to_date": to_date, "school_days": school_days, "excused": excused})
    child = await uow.children.get(child_id)
    if excused or child is None or child.closed_on is not None:
        return
    policy = (await policies(uow, child.county))[ReferralPolicyCode.dropout]
    if dropout_threshold_reached(await uow.referrals.absences(child_id), policy, await uow.referrals.calendar(child.county)):
        await open_referral(uow, child, policy, trigger=trigger, actor=actor)


async def enrolment_changed(uow, child_id: UUID, status: str, trigger: str, actor: str) -> None:
    """辍学登记 by the school opens a case (or joins the open one)."""
    if status == "dropped_out":
        await open_for(uow, [child_id], ReferralPolicyCode.dropout, trigger, actor)


async def returned_to_school(uow, child_id: UUID, actor: str) -> None:
    await _close_for(uow, child_id, ReferralOutcome.returned, actor, ReferralPolicyCode.dropout)


async def guarded_again(uow, child_id: UUID, actor: str) -> None:
    """The 无人监护 flag lowered: its case closes (the flag raised opens one: ``open_for``)."""
    await _close_for(uow, child_id, ReferralOutcome.condition_cleared, actor, ReferralPolicyCode.unguarded)


async def hukou_changed(uow, child_id: UUID, status: str, trigger: str, actor: str) -> None:
    if status == "unregistered":
        await open_for(uow, [child_id], ReferralPolicyCode.no_hukou, trigger, actor)
    else:
        await _close_for(uow, child_id, ReferralOutcome.condition_cleared, actor, ReferralPolicyCode.no_hukou)


async def archive_closed(uow, child_id: UUID, actor: str) -> None:
    await _close_for(uow, child_id, ReferralOutcome.archive_closed, actor)


async def concern_raised(uow, child_id: UUID, kind: ConcernKind, actor: str) -> None:
    """A concern seen on a visit, in its record's transaction: referred where a policy takes it."""
    child = await uow.children.get(child_id)
    policy = policy_for_concern(await policies(uow, child.county), kind) if child else None
    if policy is not None:
        await open_referral(uow, child, policy, trigger="visits.concern.raised", actor=actor)
