"""Commands of the visits service: helpers, pairings (结对帮扶), rules, visit records
(走访记录) and group activities. Each takes plain data and a unit of work; a change
and its events (through the outbox) commit in one transaction, or nothing does."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from datetime import date
from uuid import UUID, uuid4

from services.visits.domain.consent import check_activity, check_consent
from services.visits.domain.errors import NotFound, Refusal
from services.visits.domain.model import (
    ChildPlace, Helper, Pairing, VisitRecord, check_helper, check_may_record, check_pairing, check_visit_date,
)
from services.visits.domain.rules import VisitRule, check_rule, new_version
from services.visits.domain.windows import Term
from services.visits.service_layer import referrals, schedule
from shared.security.access import current_school, school_allows
from shared.contracts.visits_v1 import (
    ACTIVITY_RECORDED, CONCERN_RAISED, PAIRING_ENDED, PAIRING_STARTED, RECORD_CORRECTED, RECORD_CREATED,
    ActivityRecorded, ConcernRaised, HelperRole, Observation, PairingEnded, PairingEndReason, PairingStarted,
    RecordCorrected, RecordCreated, WindowKind,
)


def visible(region: str, code: str) -> bool:
    """A helper or activity placed at ``code`` is visible to a caller scoped to ``region`` when
    one contains the other (a township helper serves the villages under it)."""
    return code.startswith(region) or region.startswith(code)


async def school_reaches(uow, child_id: UUID) -> bool:
    """A school user (班主任, 德育处) reaches its own pupils only (``school_allows``: the token's
    ``school`` claim, none without one), their records and cases; everyone else: true, no lookup."""
    if current_school() is None:
        return True
    child = await uow.children.get(child_id)
    return child is not None and school_allows(child.school_id)


async def child_in(uow, child_id: UUID, region: str, *, field: str = "child_id") -> ChildPlace:
    """The child, when known and in the caller's area."""
    child = await uow.children.get(child_id)
    if child is None or not child.village_code.startswith(region) or not school_allows(child.school_id):
        raise NotFound(field)  # a school user: its own pupils only
    return child


# --- pairings ------------------------------------------------------------------------------


async def start_pairing(uow, helper: Helper, child: ChildPlace, started_on: date, actor: str) -> Pairing:
    return (await start_pairings(uow, [(helper, child)], started_on, actor))[0]


async def start_pairings(uow, pairs: list[tuple[Helper, ChildPlace]], started_on: date, actor: str) -> list[Pairing]:
    """结对 of each (helper, child), written in one statement."""
    made = [Pairing(id=uuid4(), helper_id=helper.id, child_id=child.child_id, started_on=started_on) for helper, child in pairs]
    await uow.pairings.add_many(made, actor)
    for pairing, (helper, child) in zip(made, pairs, strict=True):
        data = PairingStarted(pairing_id=pairing.id, helper_id=helper.id, helper_role=helper.role,
                              child_id=child.child_id, started_on=started_on)
        await uow.emit(PAIRING_STARTED, data, aggregate_id=str(pairing.id), aggregate_version=pairing.version,
                       region_code=child.village_code, actor=actor)
    return made


async def finish_pairing(uow, pairing: Pairing, role: HelperRole, region_code: str, ended_on: date,
                         reason: PairingEndReason, actor: str) -> None:
    pairing.ended_on, pairing.end_reason, pairing.version = max(ended_on, pairing.started_on), reason, pairing.version + 1
    await uow.pairings.save(pairing)
    data = PairingEnded(pairing_id=pairing.id, helper_id=pairing.helper_id, helper_role=role,
                        child_id=pairing.child_id, ended_on=pairing.ended_on, reason=reason)
    await uow.emit(PAIRING_ENDED, data, aggregate_id=str(pairing.id), aggregate_version=pairing.version,
                   region_code=region_code, actor=actor)


async def pair_class_teachers(uow, kids: list[ChildPlace], today: date, actor: str) -> list[Pairing]:
    """The class teacher comes from the child's school and class (registry): pair them (the children's
    pairings read, and locked, in one statement; the new ones written in one). Returns the new pairings."""
    teachers = await uow.helpers.class_teachers({(c.school_id, c.class_name) for c in kids})
    taught = [c for c in kids if (c.school_id, c.class_name) in teachers]
    held = await uow.pairings.helpers_of([c.child_id for c in taught]) if taught else {}
    return await start_pairings(uow, [
        (teacher, child) for child in taught for teacher in teachers[child.school_id, child.class_name]
        if teacher.id not in held.get(child.child_id, ())
    ], today, actor)


async def register_helper(uow, helper: Helper, *, actor: str, today: date) -> Helper:
    """登记帮扶人; a class teacher is paired at once with the children of their class."""
    check_helper(helper)
    async with uow:
        await uow.helpers.add(helper)
        if helper.role is HelperRole.class_teacher:
            for child in await uow.children.in_class(helper.school_id, helper.class_name):
                await start_pairing(uow, helper, child, today, actor)
                await schedule.arm(uow, today, county=child.county, child_ids=[child.child_id])
        await uow.commit()
    return helper


async def pair(uow, helper_ids: list[UUID], child_ids: list[UUID], started_on: date, *, region: str, actor: str,
               today: date) -> list[Pairing]:
    """结对: every helper with every child (one-to-one ... many-to-many)."""
    async with uow:
        found = await uow.helpers.get_many(helper_ids)
        missing = [h for h in helper_ids if h not in found or not visible(region, found[h].region_code)]
        if missing:
            raise NotFound("helper_ids")
        kids = [await child_in(uow, c, region, field="child_ids") for c in dict.fromkeys(child_ids)]
        made = []
        for child in kids:
            held = {p.helper_id for p, _ in await uow.pairings.active(child_id=child.child_id)}
            for helper in (found[h] for h in dict.fromkeys(helper_ids)):
                check_pairing(helper, child, started_on, today)
                check_consent(child.withdrawal, helper.role)
                if helper.id in held:
                    raise Refusal("already_paired", "该帮扶人已与该儿童结对", "this helper is already paired with this child",
                                  "helper_ids")
                made.append(await start_pairing(uow, helper, child, started_on, actor))
            await schedule.arm(uow, today, county=child.county, child_ids=[child.child_id])
        await uow.commit()
    return made


async def end_pairing(uow, pairing_id: UUID, ended_on: date, *, region: str, actor: str, today: date) -> Pairing:
    """解除结对 by an office."""
    async with uow:
        pairing = await uow.pairings.get(pairing_id, for_update=True)
        child = pairing and await uow.children.get(pairing.child_id)
        if child is None or not child.village_code.startswith(region) or not school_allows(child.school_id):
            raise NotFound("pairing_id")
        if pairing.ended_on is not None:
            raise Refusal("already_ended", "该结对已解除", "this pairing has already ended", "pairing_id")
        if ended_on > today or ended_on < pairing.started_on:
            raise Refusal("end_date", "解除日期应在开始日期与今天之间", "ended_on must be between started_on and today",
                          "ended_on")
        helper = await uow.helpers.get(pairing.helper_id)
        await finish_pairing(uow, pairing, helper.role, child.village_code, ended_on, PairingEndReason.ended_by_office,
                             actor)
        await uow.commit()
    return pairing


# --- rules and terms ---------------------------------------------------------------------


async def change_rule(uow, county: str, rule: VisitRule, *, actor: str, today: date) -> VisitRule:
    """A county changes a number of a rule, or adds a rule (规则即数据): from its next window."""
    check_rule(rule)
    async with uow:
        await uow.rules.lock_county(county)
        versions, terms = await schedule.county_setup(uow, county, today)
        stored = new_version(versions, rule, today, terms)
        await uow.rules.add(county, stored, actor)
        if stored.effective_from <= today:  # a new rule binds the running window: arm it now
            await schedule.arm(uow, today, county=county, codes={stored.code})
        await uow.commit()
    return stored


async def set_terms(uow, county: str, terms: list[Term], *, today: date) -> None:
    """The county's term dates (学期); the pending term windows are armed again on the new dates."""
    async with uow:
        await uow.rules.lock_county(county)
        await uow.rules.replace_terms(county, terms)
        await uow.schedule.disarm_windows(county, {WindowKind.term, WindowKind.term_part})
        await schedule.arm(uow, today, county=county, kinds={WindowKind.term, WindowKind.term_part})
        await uow.commit()


# --- visit records -----------------------------------------------------------------------


async def _raise_concerns(uow, record: VisitRecord, concerns: list[dict], actor: str) -> list[UUID]:
    ids = []
    for c in concerns:
        concern_id = uuid4()
        await uow.records.add_concern(concern_id, record, c["kind"], c["severity"], c.get("note"))
        data = ConcernRaised(concern_id=concern_id, record_id=record.id, child_id=record.child_id,
                             helper_id=record.helper_id, kind=c["kind"], severity=c["severity"],
                             observed_on=record.visited_on)
        await uow.emit(CONCERN_RAISED, data, aggregate_id=str(concern_id), aggregate_version=1,
                       region_code=record.village_code, actor=actor)
        await referrals.concern_raised(uow, record.child_id, c["kind"], actor)
        ids.append(concern_id)
    return ids


def _observations(record: VisitRecord) -> list[Observation]:
    return [Observation(area=o["area"], level=o["level"]) for o in record.observations]


async def helper_in(uow, helper_id: UUID, region: str, account: str | None) -> Helper:
    """The helper, when visible to the caller; a helper's own login reaches only themselves."""
    helper = await uow.helpers.get(helper_id)
    if helper is None or not visible(region, helper.region_code) or (account is not None and helper.account != account):
        raise NotFound("helper_id")
    return helper


async def record_visit(uow, data: dict, concerns: list[dict], *, region: str, actor: str, account: str | None,
                       today: date, client_id: UUID | None = None) -> tuple[VisitRecord, list[UUID], bool]:
    """录入走访记录, with the concerns it raises (each a ``visits.concern.raised``). A ``client_id``
    (made by the writer's device) becomes the record's id: the same record sent again after a lost
    answer is answered with the one already made (the last value true), never a second one."""
    data = dict(data)
    persuasion = data.pop("persuasion", None)
    async with uow:
        if client_id is not None and (known := await uow.records.get(client_id)) is not None:
            return await _replayed(uow, known, data, region, account), await uow.records.concern_ids(known.id), True
        check_visit_date(data["visited_on"], today)
        child = await child_in(uow, data["child_id"], region)
        helper = await helper_in(uow, data["helper_id"], region, account)
        check_may_record(helper, await uow.pairings.paired_on(helper.id, child.child_id, data["visited_on"]))
        check_consent(child.withdrawal, helper.role, persuasion=persuasion is not None)
        record = VisitRecord(id=client_id or uuid4(), helper_role=helper.role, village_code=child.village_code, **data)
        await uow.records.add(record, actor)
        event = RecordCreated(record_id=record.id, child_id=child.child_id, helper_id=helper.id, helper_role=helper.role,
                              kind=record.kind, visited_on=record.visited_on, observations=_observations(record))
        await uow.emit(RECORD_CREATED, event, aggregate_id=str(record.id), aggregate_version=record.version,
                       region_code=child.village_code, actor=actor)
        if persuasion is not None:  # 劝返走访: an attempt of the child's dropout case
            await referrals.attempt_recorded(uow, child=child, record_id=record.id, visited_on=record.visited_on,
                                             persuasion=persuasion, actor=actor)
        concern_ids = await _raise_concerns(uow, record, concerns, actor)
        await schedule.contacts_recorded(uow, child.county, [child.child_id], today)
        await uow.commit()
    return record, concern_ids, False


async def _replayed(uow, known: VisitRecord, data: dict, region: str, account: str | None) -> VisitRecord:
    """The record a client_id already names, when it is this writer's record of this child."""
    if not known.village_code.startswith(region) or not await school_reaches(uow, known.child_id):
        raise NotFound("client_id")
    await helper_in(uow, known.helper_id, region, account)
    if (known.helper_id, known.child_id) != (data["helper_id"], data["child_id"]):
        raise Refusal("client_id_taken", "client_id 已用于另一条走访记录", "client_id already names another record",
                      "client_id")
    return known


async def correct_record(uow, record_id: UUID, changes: dict, concerns: list[dict], reason: str, *, region: str,
                         actor: str, account: str | None, today: date) -> VisitRecord:
    """更正走访记录: the record changes, the audit trail keeps what it said before."""
    async with uow:
        record = await uow.records.get(record_id, for_update=True)
        if record is None or not record.village_code.startswith(region):
            raise NotFound("record_id")
        if not await school_reaches(uow, record.child_id):
            raise NotFound("record_id")
        helper = await helper_in(uow, record.helper_id, region, account)
        check_consent((await uow.children.get(record.child_id)).withdrawal, helper.role)
        if "visited_on" in changes and changes["visited_on"] != record.visited_on:
            check_visit_date(changes["visited_on"], today)
            check_may_record(helper, await uow.pairings.paired_on(helper.id, record.child_id, changes["visited_on"]))
        before = record.facts()
        corrected = replace(record, **changes, version=record.version + 1)
        changed = sorted(k for k, v in corrected.facts().items() if before[k] != v)
        if not changed and not concerns:
            raise Refusal("nothing_changed", "更正内容与原记录相同", "the correction changes nothing", "body")
        await uow.records.save_correction(corrected, before, reason, actor)
        event = RecordCorrected(
            record_id=record.id, child_id=record.child_id, helper_id=record.helper_id, helper_role=record.helper_role,
            kind=corrected.kind, visited_on=corrected.visited_on, observations=_observations(corrected),
            corrected_fields=changed + (["concerns"] if concerns else []),
        )
        await uow.emit(RECORD_CORRECTED, event, aggregate_id=str(record.id), aggregate_version=corrected.version,
                       region_code=record.village_code, actor=actor)
        await _raise_concerns(uow, corrected, concerns, actor)
        if {"visited_on", "kind"} & set(changed):
            child = await uow.children.get(record.child_id)
            await schedule.contacts_recorded(uow, child.county, [child.child_id], today)
        await uow.commit()
    return corrected


# --- group activities ----------------------------------------------------------------------


async def record_activity(uow, values: dict, child_ids: list[UUID], *, region: str, actor: str, today: date) -> UUID:
    """集体关爱活动: person-times for reporting, and a contact where a rule asks for one."""
    check_visit_date(values["held_on"], today, "held_on")
    if not values["region_code"].startswith(region):
        raise NotFound("region_code")
    async with uow:
        unique = list(dict.fromkeys(child_ids))
        by_county: dict[str, list[UUID]] = defaultdict(list)
        for child_id in unique:
            child = await child_in(uow, child_id, region, field="child_ids")
            check_activity(child.withdrawal)
            by_county[child.county].append(child_id)
        activity_id = uuid4()
        await uow.records.add_activity(activity_id, values, unique, actor)
        data = ActivityRecorded(activity_id=activity_id, kind=values["kind"], held_on=values["held_on"],
                                child_ids=unique, guardians=values["guardians"],
                                person_times=len(unique) + values["guardians"])
        await uow.emit(ACTIVITY_RECORDED, data, aggregate_id=str(activity_id), aggregate_version=1,
                       region_code=values["region_code"], actor=actor)
        for county, ids in sorted(by_county.items()):
            await schedule.contacts_recorded(uow, county, ids, today)
        await uow.commit()
    return activity_id
