"""Reporting's projections of the registry's and visits' events (no personal data arrives here).

Two kinds of rollup, both changed by deltas only:
- ``place_figures``: how many children of a place carry a label now (domain.figures.labels);
- ``monthly_figures``: what happened in a place in a month (registrations, visits, agreements...).
A transaction's handlers add their deltas up; its commit writes them (``_Pending``).
"""

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from uuid import UUID

from sqlalchemy import bindparam, event, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from services.reporting.adapters.orm import (
    child_contacts, child_facts, helper_months, pairings, visit_records,
)
from services.reporting.domain.figures import ChildState, enrolment_after_transfer, month_of, moves
from services.reporting.domain.places import enclosing_places
from shared.clock import today_local
from shared.contracts import EventEnvelope
from shared.contracts.registry_v1 import (
    AbsenceReported, AgreementEnded, AgreementFacts, ArchiveClosed, ArchiveReopened, ChildFactsChanged, ChildGuarded, ChildMerged,
    ChildRegistered, ChildTransferred, ChildUnguarded, ChildUpdated, EnrolmentChanged, GuardianAssigned, GuardianRemoved,
)
from shared.contracts.referrals_v1 import DeadlineMissed, ReferralClosed, ReferralOpened, StageChanged
from shared.contracts.visits_v1 import (
    ActivityRecorded, ConcernRaised, PairingEnded, PairingStarted, RecordCorrected, RecordCreated, VisitOverdue,
)
from shared.db import among, columns_of, insert_rows

_STATE = tuple(ChildState.__dataclass_fields__)
_REGISTERED = ("village_code", "gender", "left_behind_type", "hukou_status", "risk_categories", "school_id",
               "father_status", "mother_status", "guardian_relationship")
_UPDATABLE = set(_STATE) & set(ChildFactsChanged.model_fields)

_facts_locked = (
    select(child_facts.c.child_id, *(child_facts.c[k] for k in _STATE)).where(among(child_facts.c.child_id, "child_ids"))
    .order_by(child_facts.c.child_id).with_for_update()
)
# A run's new children as one JSON parameter, their rows made by PostgreSQL (jsonb_populate_recordset): the
# same statement for any run, and one text to send instead of a parameter per child and column.
_FACTS_IN = ("child_id", *_REGISTERED, "enrolment_status")
_new_facts = text(
    f"INSERT INTO child_facts ({', '.join(_FACTS_IN)}) SELECT {', '.join(_FACTS_IN)} "
    "FROM jsonb_populate_recordset(NULL::child_facts, CAST(:facts AS jsonb)) "
    "ON CONFLICT (child_id) DO NOTHING RETURNING child_id"
).columns(child_facts.c.child_id)

# Both rollups in one statement (PostgreSQL runs an INSERT in WITH whether or not it is read), their rows
# given as two JSON arrays of [place, figure, value] and [place, month, figure, value]: a batch of a census
# moves a couple of thousand figures, and one text each costs a fraction of three or four arrays of them
# (asyncpg encodes an array element by element). The rows are written in the order given (key order).
_add_rollups = text("""
WITH months AS (
    INSERT INTO monthly_figures (place, month, figure, value)
    SELECT r ->> 0, (r ->> 1)::date, r ->> 2, (r ->> 3)::bigint FROM jsonb_array_elements(CAST(:months AS jsonb)) AS r
    ON CONFLICT (place, month, figure) DO UPDATE SET value = monthly_figures.value + excluded.value
)
INSERT INTO place_figures (place, figure, value)
SELECT r ->> 0, r ->> 1, (r ->> 2)::bigint FROM jsonb_array_elements(CAST(:places AS jsonb)) AS r
ON CONFLICT (place, figure) DO UPDATE SET value = place_figures.value + excluded.value
""")
_new_records = insert_rows(
    visit_records, ("record_id", "child_id", "helper_id", "kind", "visited_on", "region_code"),
).on_conflict_do_nothing().returning(visit_records.c.record_id)
_contacts = insert_rows(child_contacts, ("child_id", "contacts", "last_contact_on"))
_add_contacts = _contacts.on_conflict_do_update(index_elements=["child_id"], set_={
    "contacts": child_contacts.c.contacts + _contacts.excluded.contacts,
    "last_contact_on": func.greatest(child_contacts.c.last_contact_on, _contacts.excluded.last_contact_on),
})
_helpers = insert_rows(helper_months, ("helper_id", "month", "contacts"))
_add_helper_months = _helpers.on_conflict_do_update(
    index_elements=["helper_id", "month"], set_={"contacts": helper_months.c.contacts + _helpers.excluded.contacts}
)


_PENDING = "reporting.pending"  # the key of a transaction's _Pending in its session's info


@dataclass
class _Pending:
    """What the handlers of one transaction (a batch) leave for its commit.

    The figures they moved, added up, written when it commits: one statement per rollup, its rows in key
    order, so concurrent batches (two consumers of the group) lock the rows they share in one order, and a
    row the batch's runs all move (a county's children) is written once. The facts of the children they
    read or wrote, as they are now: a child registered, then assigned the guardian it was registered with,
    is neither read nor written again."""

    children: dict[UUID, ChildState] = field(default_factory=dict)
    places: Counter[tuple[str, str]] = field(default_factory=Counter)
    months: Counter[tuple[str, date, str]] = field(default_factory=Counter)


def _pending(session) -> _Pending:
    pending = session.info.get(_PENDING)
    if pending is None:
        pending = session.info[_PENDING] = _Pending()
        event.listen(session.sync_session, "before_commit", _write_figures)
    return pending


def _write_figures(session: Session) -> None:
    """Before the commit: the transaction's figures, added to the rollups. A figure its runs moved and moved
    back is written too (as 0): its row is there, as when each event is applied in a transaction of its own."""
    pending = session.info.pop(_PENDING, None)
    if pending is None or not (pending.places or pending.months):
        return
    places, months = pending.places, pending.months
    session.execute(_add_rollups, {
        "places": json.dumps([(p, f, places[p, f]) for p, f in sorted(places)]),
        "months": json.dumps([(p, m.isoformat(), f, months[p, m, f]) for p, m, f in sorted(months)]),
    })


def _count(session, change: Counter[tuple[str, str]]) -> None:
    """Add to the figures of these places."""
    _pending(session).places.update({k: n for k, n in change.items() if n})


def _tally(session, region_code: str, day: date, figures: dict[str, int]) -> None:
    """What happened on ``day`` in ``region_code``, added to the month of every enclosing place."""
    _tallies(session, [(region_code, day, figures)])


def _tallies(session, happened: list[tuple[str, date, dict[str, int]]]) -> None:
    """What happened (region, day, figures) in a run of events, added up per region and month first (a run's
    events share villages), then to the month of every enclosing place."""
    homes: dict[tuple[str, date], Counter[str]] = {}
    for region_code, day, figures in happened:
        home = homes.get((region_code, month_of(day)))
        if home is None:
            home = homes[region_code, month_of(day)] = Counter()
        home.update(figures)
    months = _pending(session).months
    for (region_code, month), figures in homes.items():
        places = enclosing_places(region_code)
        for f, n in figures.items():
            if n:
                for p in places:
                    months[p, month, f] += n


def _day(event: EventEnvelope) -> date:
    return today_local(event.occurred_at)


# --- registry.events ---------------------------------------------------------------------------


async def children_registered(uow, events: list[EventEnvelope[ChildRegistered]]) -> None:
    """A run of registrations: their facts in one statement, the figures of their places in another."""
    facts = [{
        "child_id": e.data.child_id, **{k: getattr(e.data, k) for k in _REGISTERED},
        "enrolment_status": "in_school" if e.data.school_id else "not_enrolled",  # as the registry sets it
    } for e in events]
    rows = json.dumps([{**f, "child_id": str(f["child_id"])} for f in facts])
    inserted = set(await uow.session.scalars(_new_facts, {"facts": rows}))
    children = _pending(uow.session).children
    born = []
    for f in facts:
        if f["child_id"] in inserted:
            children[f["child_id"]] = ChildState.of(**{k: v for k, v in f.items() if k != "child_id"})
            born.append((None, children[f["child_id"]]))
    _count(uow.session, moves(born))
    _tallies(uow.session, [(e.region_code, _day(e), {"registered": 1}) for e in events if e.data.child_id in inserted])


async def _change(uow, child_id: UUID, values: dict | Callable[[ChildState], dict]) -> ChildState | None:
    """New facts of a child; its figures move from the places and labels it had to the ones it has
    now. Returns the state before (None for a child never registered here)."""
    return (await _changes(uow, {child_id: values})).get(child_id)


async def _changes(uow, changes: dict[UUID, dict | Callable[[ChildState], dict]]) -> dict[UUID, ChildState]:
    """New facts of a run of children (one entry each): the rows this transaction has not seen yet read and
    locked in one statement, the rows whose facts change updated in one per set of columns changed, their
    figures moved. Returns each one's state before (none for a child never registered here)."""
    children = _pending(uow.session).children
    unseen = sorted(c for c in changes if c not in children)
    if unseen:
        rows = await uow.session.execute(_facts_locked, {"child_ids": unseen})
        children.update((r.child_id, ChildState.of(**{k: getattr(r, k) for k in _STATE})) for r in rows)
    before = {c: children[c] for c in sorted(changes) if c in children}
    moved: list[tuple[ChildState, ChildState]] = []
    updates: dict[tuple[str, ...], list[dict]] = {}
    for child_id, state in before.items():
        values = changes[child_id]
        values = values(state) if callable(values) else values
        after = state.changed(**values)
        changed = {k: v for k, v in values.items() if getattr(after, k) != getattr(state, k)}
        if changed:  # e.g. not a census's guardian assigned as the child was registered with
            children[child_id] = after
            moved.append((state, after))
            updates.setdefault(tuple(sorted(changed)), []).append(
                {"changed_child": child_id, **{f"new_{k}": v for k, v in changed.items()}})
    for keys, params in updates.items():
        stmt = update(child_facts).where(child_facts.c.child_id == bindparam("changed_child"))
        await uow.session.execute(stmt.values({k: bindparam(f"new_{k}") for k in keys}), params)
    _count(uow.session, moves(moved))
    return before


async def child_updated(uow, event: EventEnvelope[ChildUpdated]) -> None:
    d = event.data
    values = {k: getattr(d.changes, k) for k in _UPDATABLE if k in d.changed_fields}
    if values:
        await _change(uow, d.child_id, values)


async def child_transferred(uow, event: EventEnvelope[ChildTransferred]) -> None:
    """转移: the child counts where it now lives and in its new school."""
    d = event.data
    await _change(uow, d.child_id, lambda before: {
        "village_code": d.to_village_code, "school_id": d.to_school_id,
        "enrolment_status": enrolment_after_transfer(before.enrolment_status, d.to_school_id),
    })


async def archive_closed(uow, event: EventEnvelope[ArchiveClosed | ChildMerged]) -> None:
    """结档, or merged into another archive: no longer a left-behind child anywhere."""
    await _change(uow, event.data.child_id, {"closed": True})


async def archive_reopened(uow, event: EventEnvelope[ArchiveReopened]) -> None:
    await _change(uow, event.data.child_id, {"closed": False})


async def guardians_assigned(uow, events: list[EventEnvelope[GuardianAssigned]]) -> None:
    """A run of guardians assigned (a census assigns one to most children it registers)."""
    await _changes(uow, {e.data.child_id: {"guardian_relationship": e.data.relationship.value} for e in events})


async def guardians_removed(uow, events: list[EventEnvelope[GuardianRemoved]]) -> None:
    await _changes(uow, {e.data.child_id: {"guardian_relationship": None} for e in events})


async def agreement_signed(uow, event: EventEnvelope[AgreementFacts]) -> None:
    """委托监护协议 signed or renewed: in force until its date."""
    d = event.data
    await _change(uow, d.child_id, {"agreement_until": d.valid_until})
    figure = "agreements_renewed" if event.type.endswith("renewed") else "agreements_signed"
    _tally(uow.session, event.region_code, d.signed_on, {figure: 1})


async def agreement_ended(uow, event: EventEnvelope[AgreementEnded]) -> None:
    d = event.data
    await _change(uow, d.child_id, {"agreement_until": None})
    figure = "agreements_revoked" if event.type.endswith("revoked") else "agreements_expired"
    _tally(uow.session, event.region_code, d.ended_on, {figure: 1})


async def children_unguarded(uow, events: list[EventEnvelope[ChildUnguarded]]) -> None:
    """无人监护 from the day the registry flagged it."""
    await _changes(uow, {e.data.child_id: {"unguarded_since": _day(e)} for e in events})
    _tallies(uow.session, [(e.region_code, _day(e), {"unguarded_started": 1}) for e in events])


async def children_guarded(uow, events: list[EventEnvelope[ChildGuarded]]) -> None:
    await _changes(uow, {e.data.child_id: {"unguarded_since": None} for e in events})
    _tallies(uow.session, [(e.region_code, _day(e), {"unguarded_ended": 1}) for e in events])


async def absence_reported(uow, event: EventEnvelope[AbsenceReported]) -> None:
    d = event.data
    _tally(uow.session, event.region_code, d.from_date, {
        "absences": 1, "absence_days": d.school_days, "unexcused_absences": 0 if d.excused else 1,
    })


async def enrolment_changed(uow, event: EventEnvelope[EnrolmentChanged]) -> None:
    """辍学登记 when a child becomes dropped_out; 劝返复学 when a dropout is back in school, with the
    days it was out (kept as a count per number of days, so the median needs no history)."""
    d = event.data
    out, was_out = d.status == "dropped_out", d.previous == "dropped_out"
    values: dict = {"enrolment_status": d.status.value}
    if out and not was_out:
        values["out_since"] = d.effective_on
    elif was_out and not out:
        values["out_since"] = None
    before = await _change(uow, d.child_id, values)
    if before is None or out == was_out:
        return
    if out:
        _tally(uow.session, event.region_code, d.effective_on, {"dropouts_registered": 1})
    elif d.status == "in_school" and before.out_since is not None:
        days = (d.effective_on - before.out_since).days
        _tally(uow.session, event.region_code, d.effective_on, {"dropouts_returned": 1, f"return_days:{days}": 1})


# --- visits.events -----------------------------------------------------------------------------


async def pairing_started(uow, event: EventEnvelope[PairingStarted]) -> None:
    d = event.data
    await uow.session.execute(insert(pairings).values(
        pairing_id=d.pairing_id, child_id=d.child_id, helper_id=d.helper_id, helper_role=d.helper_role.value, active=True,
    ).on_conflict_do_nothing())
    _tally(uow.session, event.region_code, d.started_on, {"pairings_started": 1})


async def pairing_ended(uow, event: EventEnvelope[PairingEnded]) -> None:
    await uow.session.execute(update(pairings).where(pairings.c.pairing_id == event.data.pairing_id).values(active=False))


async def _count_records(session, records: list[tuple[str, RecordCreated, int]], *, newest: bool) -> None:
    """Visit records (走访记录) counted in (sign 1) or taken out (-1) of their children's, helpers' and
    places' figures, added up: one statement per table, its rows in key order (so concurrent batches lock
    alike), the places' at commit. ``newest``: each child's last contact becomes its newest record's of these
    when that is later (never earlier: GREATEST ignores the NULL of a child without one)."""
    children: Counter[UUID] = Counter()
    last: dict[UUID, date] = {}
    helpers: Counter[tuple[UUID, date]] = Counter()
    for region_code, d, sign in records:
        month = month_of(d.visited_on)
        children[d.child_id] += sign
        if newest:
            last[d.child_id] = max(d.visited_on, last.get(d.child_id, d.visited_on))
        helpers[d.helper_id, month] += sign
    _tallies(session, [(region_code, d.visited_on, {"visits": sign, f"visits:{d.kind.value}": sign})
                       for region_code, d, sign in records])
    rows = [{"child_id": c, "contacts": n, "last_contact_on": last.get(c)} for c, n in sorted(children.items())
            if n or c in last]
    if rows:
        await session.execute(_add_contacts, columns_of(rows))
    rows = [{"helper_id": h, "month": m, "contacts": n} for (h, m), n in sorted(helpers.items()) if n]
    if rows:
        await session.execute(_add_helper_months, columns_of(rows))


async def _last_contact(uow, child_id: UUID) -> None:
    last = select(func.max(visit_records.c.visited_on)).where(visit_records.c.child_id == child_id).scalar_subquery()
    await uow.session.execute(update(child_contacts).where(child_contacts.c.child_id == child_id).values(last_contact_on=last))


async def records_created(uow, events: list[EventEnvelope[RecordCreated]]) -> None:
    """A run of visit records (a single one is a run of one): the new ones stored in one statement, then
    counted in, added up per run. A record held already (a redelivery) or twice in the run counts once."""
    first = {}
    for e in events:
        first.setdefault(e.data.record_id, e)
    records = [first[r] for r in sorted(first)]
    added = set(await uow.session.scalars(_new_records, columns_of([{
        "record_id": e.data.record_id, "child_id": e.data.child_id, "helper_id": e.data.helper_id,
        "kind": e.data.kind.value, "visited_on": e.data.visited_on, "region_code": e.region_code,
    } for e in records])))
    await _count_records(uow.session, [(e.region_code, e.data, 1) for e in records if e.data.record_id in added],
                         newest=True)


async def record_corrected(uow, event: EventEnvelope[RecordCorrected]) -> None:
    """A corrected record: its old figures out, its new ones in; the last contact of its child (or of
    both, when it moved to another) recomputed from their records, since it may move back."""
    d = event.data
    old = (await uow.session.execute(select(visit_records).where(visit_records.c.record_id == d.record_id).with_for_update())).first()
    if old is None:
        return
    await uow.session.execute(update(visit_records).where(visit_records.c.record_id == d.record_id).values(
        child_id=d.child_id, helper_id=d.helper_id, kind=d.kind.value, visited_on=d.visited_on))
    await _count_records(uow.session, [(old.region_code, RecordCreated(
        record_id=old.record_id, child_id=old.child_id, helper_id=old.helper_id, helper_role=d.helper_role,
        kind=old.kind, visited_on=old.visited_on,
    ), -1), (old.region_code, d, 1)], newest=False)
    for child_id in sorted({old.child_id, d.child_id}):
        await _last_contact(uow, child_id)


async def concern_raised(uow, event: EventEnvelope[ConcernRaised]) -> None:
    d = event.data
    _tally(uow.session, event.region_code, d.observed_on, {
        "concerns": 1, f"concerns:{d.kind.value}": 1, f"concerns_severity:{d.severity.value}": 1,
    })


async def activity_recorded(uow, event: EventEnvelope[ActivityRecorded]) -> None:
    """集体关爱活动: counted in person-times (人次)."""
    d = event.data
    _tally(uow.session, event.region_code, d.held_on, {
        "activities": 1, "person_times": d.person_times, "activity_children": len(d.child_ids),
    })


async def visit_overdue(uow, event: EventEnvelope[VisitOverdue]) -> None:
    """A window of a rule that ended short (未按要求走访): per rule, child and helper."""
    d = event.data
    _tally(uow.session, event.region_code, d.window_end, {
        "missed_windows": 1, f"missed:{d.rule_code}": 1, f"missed_required:{d.rule_code}": d.required,
        f"missed_done:{d.rule_code}": d.done,
    })
    await uow.session.execute(insert(child_contacts).values(child_id=d.child_id, missed_windows=1).on_conflict_do_update(
        index_elements=["child_id"], set_={"missed_windows": child_contacts.c.missed_windows + 1}))
    month = month_of(d.window_end)
    for helper_id in sorted(set(d.helper_ids)):
        await uow.session.execute(insert(helper_months).values(helper_id=helper_id, month=month, missed_windows=1).on_conflict_do_update(
            index_elements=["helper_id", "month"], set_={"missed_windows": helper_months.c.missed_windows + 1}))


# --- referrals (转介) and the dropout flow (劝返复学) -------------------------------------------------


def _case_open(policy: str, stage: str) -> str:
    return f"referrals_open:{policy}:{stage}"


def _move_case(uow, region_code: str, policy: str, leaving: str | None, entering: str | None) -> None:
    """How many cases of a place are open now, per policy and stage."""
    _move_cases(uow, [(region_code, policy, leaving, entering)])


def _move_cases(uow, cases: list[tuple[str, str, str | None, str | None]]) -> None:
    """Cases (region, policy, stage left, stage entered) moved, added up per place."""
    change: Counter[tuple[str, str]] = Counter()
    for region_code, policy, leaving, entering in cases:
        for place in enclosing_places(region_code):
            if leaving:
                change[place, _case_open(policy, leaving)] -= 1
            if entering:
                change[place, _case_open(policy, entering)] += 1
    _count(uow.session, change)


async def referrals_opened(uow, events: list[EventEnvelope[ReferralOpened]]) -> None:
    """A run of cases opened (a census opens one per unguarded or unregistered child)."""
    _tallies(uow.session, [(e.region_code, e.data.opened_on, {
        "referrals_opened": 1, f"referrals_opened:{e.data.policy}": 1}) for e in events])
    _move_cases(uow, [(e.region_code, e.data.policy, None, e.data.stage) for e in events])


def _stage_figures(d: StageChanged) -> dict[str, int]:
    if d.stage == "reported":
        return {f"referrals_reported:{d.policy}": 1}
    if d.stage == "acknowledged":
        return {"referrals_acknowledged": 1, "referrals_acknowledged_in_time": int(bool(d.in_time))}
    return {}


async def referral_stages_changed(uow, events: list[EventEnvelope[StageChanged]]) -> None:
    _move_cases(uow, [(e.region_code, e.data.policy, e.data.previous, e.data.stage) for e in events])
    _tallies(uow.session, [(e.region_code, e.occurred_at.date(), _stage_figures(e.data)) for e in events])


async def referral_deadline_missed(uow, event: EventEnvelope[DeadlineMissed]) -> None:
    d = event.data
    _tally(uow.session, event.region_code, event.occurred_at.date(), {
        f"deadlines_missed:{d.step}": 1, f"deadlines_missed:{d.policy}": 1,
    })


async def referral_closed(uow, event: EventEnvelope[ReferralClosed]) -> None:
    d = event.data
    _move_case(uow, event.region_code, d.policy, d.previous_stage, None)
    _tally(uow.session, event.region_code, d.closed_on, {
        "referrals_closed": 1, f"referrals_closed:{d.policy}:{d.outcome}": 1,
        "referrals_closed_in_time": int(d.deadlines_missed == 0), "referral_days_open": d.days_open,
    })
