"""Batch handlers of the reliable consumer on real PostgreSQL: which events a handler is given together,
in what order, and what happens when a run fails."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date

from pydantic import BaseModel
from sqlalchemy import event as sqlalchemy_event
from sqlalchemy import text

from services.reporting.adapters.orm import inbox, positions
from services.reporting.entrypoints.consumers import subscriptions as reporting_subscriptions
from shared.contracts.envelope import EventEnvelope, EventType
from shared.contracts.registry_v1 import (
    CHILD_CONTACTS, CHILD_GUARDED, CHILD_REGISTERED, CHILD_UNGUARDED, GUARDIAN_ASSIGNED, GUARDIAN_REMOVED,
    REGISTRY_CONTACTS, REGISTRY_EVENTS, ChildGuarded, ChildRegistered, ChildUnguarded, ContactCard, GuardianAssigned,
    GuardianRemoved, HukouStatus, Person,
)
from shared.contracts.visits_v1 import (
    RECORD_CORRECTED, RECORD_CREATED, VISITS_EVENTS, ContactKind, HelperRole, RecordCorrected, RecordCreated,
)
from shared.db import make_sessionmaker
from shared.messaging import ReliableConsumer, Subscription
from shared.outbox import DATA_FIELD
from shared.uow import SqlUnitOfWork
from tests.integration.reporting.scenario import batched_and_single, fresh_reporting, rows_of


class _Note(BaseModel):
    n: int = 0


ADDED = EventType("test.batch.added", 1, _Note, "test.batch")
CHANGED = EventType("test.batch.changed", 1, _Note, "test.batch")
IGNORED = EventType("test.batch.ignored", 1, _Note, "test.batch")  # no handler in the subscription


def _entry(i: int, event_type: EventType, aggregate: str, version: int, event_id: uuid.UUID | None = None):
    envelope = event_type.envelope(
        _Note(n=i), producer="test", aggregate_id=aggregate, aggregate_version=version, region_code="410523",
        **({"event_id": event_id} if event_id else {}),
    )
    return f"{i + 1}-0".encode(), {DATA_FIELD.encode(): envelope.model_dump_json().encode()}


class Recorder:
    """Records the calls: ("batch", [aggregate@version, ...]) or ("one", aggregate@version)."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.calls: list[tuple[str, object]] = []
        self.fail_on = fail_on

    async def batch(self, uow, events: list[EventEnvelope]) -> None:
        if any(e.aggregate_id == self.fail_on for e in events):
            raise ValueError("this aggregate's event cannot be applied")
        self.calls.append(("batch", [f"{e.aggregate_id}@{e.aggregate_version}" for e in events]))

    async def one(self, uow, event: EventEnvelope) -> None:
        self.calls.append(("one", f"{event.aggregate_id}@{event.aggregate_version}"))


async def _consumer(settings, redis, engine, recorder: Recorder) -> tuple[ReliableConsumer, Subscription]:
    sessions = make_sessionmaker(engine)
    consumer = ReliableConsumer(
        service=f"batch-{uuid.uuid4().hex[:6]}", settings=settings, redis=redis,
        uow_factory=lambda: SqlUnitOfWork(sessions), inbox=inbox, positions=positions,
    )
    # A stream of its own per test: positions are kept per stream name.
    sub = Subscription(
        f"test.batch.{uuid.uuid4().hex[:8]}", {CHANGED.name: recorder.one}, batch_handlers={ADDED.name: recorder.batch}
    )
    consumer.subscribe(sub)
    await consumer.ensure_groups()
    return consumer, sub


async def test_runs_of_one_type_go_together_and_an_aggregate_never_twice_in_a_run(settings, redis, engines):
    recorder = Recorder()
    consumer, sub = await _consumer(settings, redis, engines["reporting"], recorder)
    repeated = uuid.uuid4()
    entries = [
        _entry(0, ADDED, "a", 1, repeated),
        _entry(1, ADDED, "b", 1),
        _entry(2, CHANGED, "a", 2),  # another type: the run before it is applied first
        _entry(3, ADDED, "c", 1),
        _entry(4, ADDED, "d", 1),
        _entry(5, ADDED, "d", 2),  # d again: a new run, so d@1 is applied before d@2
        _entry(6, ADDED, "a", 1, repeated),  # the same event again: skipped
    ]
    outcome = await consumer.process(sub, entries)

    assert recorder.calls == [
        ("batch", ["a@1", "b@1"]), ("one", "a@2"), ("batch", ["c@1", "d@1"]), ("batch", ["d@2"]),
    ]
    assert sorted(outcome.done) == sorted(e for e, _ in entries) and not outcome.waiting and not outcome.failed
    async with engines["reporting"].connect() as conn:
        held = dict((await conn.execute(
            text("SELECT aggregate_id, version FROM aggregate_positions WHERE stream = :s"), {"s": sub.stream}
        )).all())
    assert held == {"a": 2, "b": 1, "c": 1, "d": 2}

    recorder.calls.clear()
    again = await consumer.process(sub, entries)  # redelivered: nothing is applied twice
    assert recorder.calls == [] and len(again.done) == len(entries)


async def test_an_event_the_subscription_ignores_does_not_end_a_run_but_moves_the_position(settings, redis, engines):
    recorder = Recorder()
    consumer, sub = await _consumer(settings, redis, engines["reporting"], recorder)
    entries = [
        _entry(0, ADDED, "a", 1), _entry(1, IGNORED, "a", 2),  # a registration and its guardian, say
        _entry(2, ADDED, "b", 1), _entry(3, IGNORED, "b", 2),
        _entry(4, CHANGED, "a", 3),  # handled one by one: the run before it is applied first
    ]
    outcome = await consumer.process(sub, entries)
    assert recorder.calls == [("batch", ["a@1", "b@1"]), ("one", "a@3")]
    assert sorted(outcome.done) == sorted(e for e, _ in entries) and not outcome.waiting
    async with engines["reporting"].connect() as conn:
        held = dict((await conn.execute(
            text("SELECT aggregate_id, version FROM aggregate_positions WHERE stream = :s"), {"s": sub.stream}
        )).all())
    assert held == {"a": 3, "b": 2}


async def test_a_failing_run_is_retried_event_by_event_so_the_others_still_apply(settings, redis, engines):
    recorder = Recorder(fail_on="bad")
    consumer, sub = await _consumer(settings, redis, engines["reporting"], recorder)
    entries = [_entry(0, ADDED, "x", 1), _entry(1, ADDED, "bad", 1), _entry(2, ADDED, "y", 1)]

    outcome = await consumer.process(sub, entries)

    assert recorder.calls == [("batch", ["x@1"]), ("batch", ["y@1"])]
    assert sorted(outcome.done) == [b"1-0", b"3-0"]
    assert [entry for entry, _ in outcome.failed] == [b"2-0"]


async def test_two_consumers_of_a_group_given_the_same_events_at_once_apply_them_once(settings, redis, engines):
    """A claimer can take over entries that a slow consumer is still applying: the two transactions
    overlap, and the per-aggregate lock must let only one of them apply each event."""
    recorder = Recorder()
    first_inside = asyncio.Event()

    async def slow_batch(uow, events):
        first_inside.set()
        await asyncio.sleep(0.5)  # still inside the transaction while the other consumer starts
        await recorder.batch(uow, events)

    one, sub = await _consumer(settings, redis, engines["reporting"], recorder)
    sub.batch_handlers[ADDED.name] = slow_batch
    other = ReliableConsumer(
        service=one.group, settings=settings, redis=redis, uow_factory=one.uow_factory, inbox=inbox,
        positions=positions,
    )
    entries = [_entry(0, ADDED, "p", 1), _entry(1, ADDED, "q", 1)]

    async def second():
        await first_inside.wait()
        return await other.process(sub, entries)

    outcomes = await asyncio.gather(one.process(sub, entries), second())

    assert recorder.calls == [("batch", ["p@1", "q@1"])]
    assert all(sorted(o.done) == [b"1-0", b"2-0"] for o in outcomes)


async def test_events_of_one_child_split_between_two_consumers_are_applied_in_order(settings, redis, engines):
    recorder = Recorder()
    one, sub = await _consumer(settings, redis, engines["reporting"], recorder)
    other = ReliableConsumer(
        service=one.group, settings=settings, redis=redis, uow_factory=one.uow_factory, inbox=inbox,
        positions=positions,
    )
    v1, v2 = _entry(0, ADDED, "r", 1), _entry(1, CHANGED, "r", 2)

    early = await one.process(sub, [v2])  # the successor arrives first, at one consumer
    assert early.waiting == [b"2-0"] and recorder.calls == []
    await other.process(sub, [v1])
    late = await one.process(sub, [v2])  # delivered again (by the claimer) after its predecessor

    assert late.done == [b"2-0"]
    assert recorder.calls == [("batch", ["r@1"]), ("one", "r@2")]


# --- reporting's visit records, a run at a time -----------------------------------------------------

_FIGURES = {  # reporting's tables that records change, each in a stable order
    "visit_records": "record_id", "child_visits": "child_id", "helper_months": "helper_id, month",
    "monthly_figures": "place, month, figure", "place_figures": "place, figure",
}


def _record(i: int, child, helper, kind: str, day: date, *, event_id: uuid.UUID | None = None, record_id=None):
    data = RecordCreated(record_id=record_id or uuid.uuid4(), child_id=child, helper_id=helper,
                         helper_role=HelperRole.caring_mother, kind=ContactKind(kind), visited_on=day)
    envelope = RECORD_CREATED.envelope(data, producer="visits", aggregate_id=str(data.record_id), aggregate_version=1,
                                       region_code="410523100201", **({"event_id": event_id} if event_id else {}))
    return f"{i + 1}-0".encode(), {DATA_FIELD.encode(): envelope.model_dump_json().encode()}


async def test_a_run_of_visit_records_gives_the_figures_of_applying_them_one_at_a_time(settings, redis, infra):
    """Reporting's visits.record.created applied as one run (one transaction for the batch) leaves the same
    rows as the same entries applied one per transaction: a redelivery and a record repeated under a new
    event id count once, and a child's last contact is its newest record's, whatever the order."""
    ann, bo, mother, teacher = (uuid.uuid4() for _ in range(4))
    early = _record(0, ann, mother, "home_visit", date(2026, 11, 15))  # already applied before the run
    repeated, again = uuid.uuid4(), uuid.uuid4()
    run = [
        _record(1, ann, mother, "phone", date(2026, 11, 20), event_id=repeated),  # ann's newest
        _record(2, bo, teacher, "talk", date(2026, 11, 2)),
        _record(3, ann, mother, "home_visit", date(2026, 10, 28)),  # older than ann's others: moves nothing back
        _record(4, bo, teacher, "talk", date(2026, 10, 30), record_id=again),
        _record(5, ann, mother, "phone", date(2026, 11, 20), event_id=repeated),  # redelivered inside the run
        _record(6, bo, teacher, "talk", date(2026, 10, 30), record_id=again),  # the same record, another event id
        early,  # redelivered from an earlier batch
    ]
    sub = next(s for s in reporting_subscriptions() if s.stream == VISITS_EVENTS)
    batched, single, _ = await batched_and_single(settings, redis, infra, sub, [[early], run], _FIGURES, waiting=[])
    assert batched == single
    assert len(batched["visit_records"]) == 5
    contacts = {child: (last, n) for child, last, n, _ in batched["child_visits"]}
    assert contacts == {ann: (date(2026, 11, 20), 3), bo: (date(2026, 11, 2), 2)}
    assert {(h, m): n for h, m, n, _ in batched["helper_months"]} == {
        (mother, date(2026, 11, 1)): 2, (mother, date(2026, 10, 1)): 1,
        (teacher, date(2026, 11, 1)): 1, (teacher, date(2026, 10, 1)): 1,
    }
    monthly = {(p, m, f): v for p, m, f, v in batched["monthly_figures"]}
    for place in ("41", "4105", "410523", "410523100", "410523100201"):
        assert monthly[place, date(2026, 11, 1), "visits"] == 3 and monthly[place, date(2026, 10, 1), "visits"] == 2
        assert monthly[place, date(2026, 11, 1), "visits:phone"] == 1
        assert monthly[place, date(2026, 10, 1), "visits:talk"] == 1
    assert len(monthly) == 5 * 7  # visits twice, phone, home_visit twice, talk twice: each in five places


async def test_a_corrected_record_counts_as_if_it_had_been_written_so(settings, redis, infra):
    """A correction moves a record's counts (to another child, helper, kind and month here) and the last
    contact of both children back to what their records say: the figures of a database where the record
    was created as corrected, but for the figures left at zero."""
    ann, bo, mother, teacher, record = (uuid.uuid4() for _ in range(5))
    newest = _record(0, ann, mother, "phone", date(2026, 11, 20), record_id=record)
    kept = _record(1, ann, mother, "home_visit", date(2026, 11, 15))
    fixed = RecordCorrected(record_id=record, child_id=bo, helper_id=teacher, helper_role=HelperRole.class_teacher,
                            kind=ContactKind.talk, visited_on=date(2026, 10, 5),
                            corrected_fields=["child_id", "helper_id", "kind", "visited_on"])
    correction = (b"3-0", {DATA_FIELD.encode(): RECORD_CORRECTED.envelope(
        fixed, producer="visits", aggregate_id=str(record), aggregate_version=2, region_code="410523100201",
    ).model_dump_json().encode()})
    sub = next(s for s in reporting_subscriptions() if s.stream == VISITS_EVENTS)
    results = []
    async with fresh_reporting(infra, "shouhu_batch") as (_, corrected), fresh_reporting(infra, "shouhu_batch") as (_, written_so):
        as_written = _record(0, bo, teacher, "talk", date(2026, 10, 5), record_id=record)
        for engine, entries in ((corrected, [newest, kept, correction]), (written_so, [as_written, kept])):
            sessions = make_sessionmaker(engine)
            consumer = ReliableConsumer(service="reporting", settings=settings, redis=redis,
                                        uow_factory=lambda s=sessions: SqlUnitOfWork(s), inbox=inbox, positions=positions)
            for entry in entries:
                assert len((await consumer.process(sub, [entry])).done) == 1
            figures = await rows_of(engine, _FIGURES)
            figures["monthly_figures"] = [r for r in figures["monthly_figures"] if r[-1]]
            results.append(figures)

    assert results[0] == results[1]
    assert {child: (last, n) for child, last, n, _ in results[0]["child_visits"]} == {
        ann: (date(2026, 11, 15), 1), bo: (date(2026, 10, 5), 1),
    }


# --- runs of several types in one batch ---------------------------------------------------------------

OTHER = EventType("test.batch.other", 1, _Note, "test.batch")


async def test_runs_of_two_types_interleaved_go_as_few_runs_each_aggregate_in_order(settings, redis, engines):
    """A census interleaves each child's registration and its guardian's event: an event joins the latest run
    of its type opened after every run holding its aggregate (else a new run at the end); runs apply in the
    order they opened, so each aggregate's events in stream order, and nothing ends the runs early."""
    recorder = Recorder()
    consumer, sub = await _consumer(settings, redis, engines["reporting"], recorder)

    async def other(uow, events):
        recorder.calls.append(("other", [f"{e.aggregate_id}@{e.aggregate_version}" for e in events]))

    sub.batch_handlers[OTHER.name] = other
    entries = [
        _entry(0, ADDED, "a", 1), _entry(1, OTHER, "a", 2),
        _entry(2, ADDED, "b", 1), _entry(3, OTHER, "b", 2),
        _entry(4, ADDED, "c", 1),
        _entry(5, ADDED, "b", 3),  # b is in both runs: a third run, after them
        # d's first event joins the second run; its second cannot go in the first run: it joins the third
        _entry(6, OTHER, "d", 1), _entry(7, ADDED, "d", 2),
        _entry(8, ADDED, "e", 1), _entry(9, OTHER, "e", 2),
    ]
    outcome = await consumer.process(sub, entries)

    assert recorder.calls == [
        ("batch", ["a@1", "b@1", "c@1"]), ("other", ["a@2", "b@2", "d@1"]),
        ("batch", ["b@3", "d@2", "e@1"]), ("other", ["e@2"]),
    ]
    assert len(outcome.done) == len(entries) and not outcome.waiting
    recorder.calls.clear()
    assert len((await consumer.process(sub, entries)).done) == len(entries) and recorder.calls == []


async def test_a_batch_that_begins_in_the_middle_of_an_aggregates_events_still_goes_as_few_runs(settings, redis, engines):
    """A batch boundary falls between a child's registration and its guardian's event about every other batch
    of a census: the batch's first event is of the second type, and the rest still go as one run per type."""
    recorder = Recorder()
    consumer, sub = await _consumer(settings, redis, engines["reporting"], recorder)

    async def other(uow, events):
        recorder.calls.append(("other", [f"{e.aggregate_id}@{e.aggregate_version}" for e in events]))

    sub.batch_handlers[OTHER.name] = other
    assert (await consumer.process(sub, [_entry(0, ADDED, "a", 1)])).done  # the batch before
    recorder.calls.clear()
    entries = [_entry(1, OTHER, "a", 2)] + [
        _entry(2 + 2 * i + k, t, x, k + 1) for i, x in enumerate("bcd") for k, t in enumerate((ADDED, OTHER))
    ]
    outcome = await consumer.process(sub, entries)

    assert recorder.calls == [("other", ["a@2"]), ("batch", ["b@1", "c@1", "d@1"]), ("other", ["b@2", "c@2", "d@2"])]
    assert len(outcome.done) == len(entries) and not outcome.waiting


# --- reporting: a census's per-child registry events, a run at a time ----------------------------------

_CENSUS_FIGURES = {"child_facts": "child_id", "place_figures": "place, figure", "monthly_figures": "place, month, figure"}


def _registry_entry(i: int, event_type: EventType, data, version: int, village: str = "410523100201"):
    envelope = event_type.envelope(data, producer="registry", aggregate_id=str(data.child_id),
                                   aggregate_version=version, region_code=village)
    return f"{i + 1}-0".encode(), {DATA_FIELD.encode(): envelope.model_dump_json().encode()}


def _registered(child, village: str, guardian: str | None):
    return ChildRegistered(
        child_id=child, gender="female", birth_date=date(2016, 5, 1), village_code=village, hukou_status="registered",
        school_id=f"school-{village[:9]}-1", class_name="三年级二班", left_behind_type="both_parents_out",
        father_status="migrant_worker", mother_status="migrant_worker", guardian_relationship=guardian,
        risk_categories=[],
    )




async def test_a_census_batch_of_registry_events_gives_reportings_figures_of_one_event_at_a_time(settings, redis, infra):
    """Registrations, guardians assigned and removed, 无人监护 flags, interleaved child by child as a census
    writes them, applied a batch at a time (a run per type) or one entry per transaction: the same facts and
    figures. One child's flag arrives before its registration (it waits), and a redelivery changes nothing."""
    a, b, c, d = (uuid.uuid4() for _ in range(4))
    v1, v2 = "410523100201", "410523101202"
    n = iter(range(100))
    entries = {
        "a1": _registry_entry(next(n), CHILD_REGISTERED, _registered(a, v1, "grandparent"), 1, v1),
        "a2": _registry_entry(next(n), GUARDIAN_ASSIGNED, GuardianAssigned(child_id=a, relationship="grandparent", capacity="full"), 2, v1),
        "b1": _registry_entry(next(n), CHILD_REGISTERED, _registered(b, v1, "relative"), 1, v1),
        "b2": _registry_entry(next(n), GUARDIAN_ASSIGNED, GuardianAssigned(child_id=b, relationship="relative", capacity="limited"), 2, v1),
        "c1": _registry_entry(next(n), CHILD_REGISTERED, _registered(c, v2, None), 1, v2),
        "c2": _registry_entry(next(n), CHILD_UNGUARDED, ChildUnguarded(child_id=c, cause="no_guardian"), 2, v2),
        "b3": _registry_entry(next(n), GUARDIAN_REMOVED, GuardianRemoved(child_id=b), 3, v1),
        "b4": _registry_entry(next(n), CHILD_UNGUARDED, ChildUnguarded(child_id=b, cause="guardian_removed"), 4, v1),
        "d2": _registry_entry(next(n), CHILD_UNGUARDED, ChildUnguarded(child_id=d, cause="no_guardian"), 2, v2),
        "d1": _registry_entry(next(n), CHILD_REGISTERED, _registered(d, v2, None), 1, v2),
        "c3": _registry_entry(next(n), CHILD_GUARDED, ChildGuarded(child_id=c), 3, v2),
    }
    first = [entries[k] for k in ("a1", "a2", "b1", "b2", "c1", "c2", "b3", "b4", "d2")]
    second = [entries[k] for k in ("d1", "d2", "c3", "a2")]  # d2 again after its predecessor; a2 redelivered
    sub = next(s for s in reporting_subscriptions() if s.stream == REGISTRY_EVENTS)
    runs: list[tuple[str, int]] = []  # (type, events) of each call: a run that failed would be retried one by one

    def counted(event_type: str, handler):
        async def handle(uow, events):
            runs.append((event_type.rsplit(".", 1)[-1], len(events)))
            await handler(uow, events)
        return handle

    sub.batch_handlers = {t: counted(t, h) for t, h in sub.batch_handlers.items()}

    async def look(engine):
        async with engine.connect() as conn:
            return {r[0]: (r[1], r[2] is not None) for r in await conn.execute(
                text("SELECT child_id, guardian_relationship, unguarded_since FROM child_facts"))}

    batched, single, facts = await batched_and_single(settings, redis, infra, sub, [first, second], _CENSUS_FIGURES,
                                                       waiting=[entries["d2"][0]], look=look)
    # A run per type and batch, and runs after them for b's removal and second flag; none retried one by one.
    assert runs[:8] == [("registered", 3), ("assigned", 2), ("unguarded", 1), ("removed", 1),
                        ("unguarded", 1), ("registered", 1), ("unguarded", 1), ("restored", 1)], runs
    assert batched == single
    assert facts == {a: ("grandparent", False), b: (None, True), c: (None, False), d: (None, True)}
    monthly = {(p, f): v for p, _, f, v in batched["monthly_figures"]}
    assert monthly["410523", "unguarded_started"] == 3 and monthly["410523", "unguarded_ended"] == 1
    assert monthly["410523", "registered"] == 4


async def test_a_census_batch_writes_reportings_figures_once_and_reads_no_child_it_registered(settings, redis, infra):
    """A census batch (a child registered and assigned the guardian it was registered with, one registered and
    flagged 无人监护) costs reporting one statement for both rollups, written at its commit, and no read of the
    children it registered; the guardian assigned as registered changes no row."""
    a, b = uuid.uuid4(), uuid.uuid4()
    village = "410523100201"
    entries = [
        _registry_entry(0, CHILD_REGISTERED, _registered(a, village, "grandparent"), 1),
        _registry_entry(1, GUARDIAN_ASSIGNED, GuardianAssigned(child_id=a, relationship="grandparent", capacity="full"), 2),
        _registry_entry(2, CHILD_REGISTERED, _registered(b, village, None), 1),
        _registry_entry(3, CHILD_UNGUARDED, ChildUnguarded(child_id=b, cause="no_guardian"), 2),
    ]
    sub = next(s for s in reporting_subscriptions() if s.stream == REGISTRY_EVENTS)
    async with fresh_reporting(infra, "shouhu_batch") as (_, engine):
        statements: list[str] = []
        listener = lambda conn, cursor, statement, *_: statements.append(" ".join(statement.split()))  # noqa: E731
        sqlalchemy_event.listen(engine.sync_engine, "before_cursor_execute", listener)
        sessions = make_sessionmaker(engine)
        consumer = ReliableConsumer(service="reporting", settings=settings, redis=redis,
                                    uow_factory=lambda: SqlUnitOfWork(sessions), inbox=inbox, positions=positions)
        assert len((await consumer.process(sub, entries)).done) == len(entries)
        sqlalchemy_event.remove(engine.sync_engine, "before_cursor_execute", listener)
        figures = await rows_of(engine, {"place_figures": "place, figure", "monthly_figures": "place, month, figure"})

    on = {t: [s for s in statements if t in s] for t in ("place_figures", "monthly_figures", "child_facts")}
    assert len(on["place_figures"]) == 1 and on["place_figures"] == on["monthly_figures"], statements
    assert [s.split()[0] for s in on["child_facts"]] == ["INSERT", "UPDATE"], on["child_facts"]  # b's flag only
    values = {(p, f): v for p, f, v in figures["place_figures"]}
    assert values[village, "children"] == 2 and values[village, "guardian:grandparent"] == 1
    assert values[village, "unguarded"] == 1 and values[village, "guardian:none"] == 1
    monthly = {(p, f): v for p, _, f, v in figures["monthly_figures"]}
    assert monthly["41", "registered"] == 2 and monthly["41", "unguarded_started"] == 1


# --- visits: a census's registrations, 无人监护 flags and contact cards, a run at a time ---------------------


def _visits_census(children: list[uuid.UUID], start: int = 0):
    """registry.events and registry.contacts entries of a census of these children: the first two guarded, the
    next unguarded (a 无人监护 case each), the last registered without household registration (a 无户籍 case)."""
    events, cards, n = [], [], iter(range(start, start + 100))
    for i, child in enumerate(children):
        village = "410523100201" if i % 2 else "410526101203"
        data = _registered(child, village, "grandparent" if i < 2 else None)
        if i == len(children) - 1:
            data = data.model_copy(update={"hukou_status": HukouStatus.unregistered})
        events.append(_registry_entry(next(n), CHILD_REGISTERED, data, 1, village))
        if i < 2:
            events.append(_registry_entry(next(n), GUARDIAN_ASSIGNED, GuardianAssigned(
                child_id=child, relationship="grandparent", capacity="full"), 2, village))
        else:
            events.append(_registry_entry(next(n), CHILD_UNGUARDED, ChildUnguarded(child_id=child, cause="no_guardian"), 2, village))
        card = ContactCard(child_id=child, child_name=f"孩子{i}", guardian=Person(name="奶奶", phone=f"1390000000{i}") if i < 2 else None)
        cards.append((f"{next(n) + 1}-0".encode(), {DATA_FIELD.encode(): CHILD_CONTACTS.envelope(
            card, producer="registry", aggregate_id=str(child), aggregate_version=2, region_code=village,
        ).model_dump_json().encode()}))
    return events, cards


async def _visits_rows(engine, children: list[uuid.UUID]) -> list[tuple]:
    """What visits holds of each child, in the children's order, without ids of its own making."""
    async with engine.connect() as conn:
        out = []
        for child in children:
            place = (await conn.execute(text(
                "SELECT village_code, school_id, class_name, left_behind_type, closed_on FROM children WHERE child_id = :c"
            ), {"c": child})).all()
            card = (await conn.execute(text(
                "SELECT child_name, guardian_name, guardian_phone, version FROM child_contacts WHERE child_id = :c"
            ), {"c": child})).all()
            cases = (await conn.execute(text(
                "SELECT r.policy, r.stage, r.trigger, r.version, (SELECT array_agg(step ORDER BY id) FROM referral_timeline t"
                " WHERE t.referral_id = r.id), (SELECT count(*) FROM referral_requests q WHERE q.referral_id = r.id),"
                " (SELECT count(*) FROM referral_disclosures d WHERE d.referral_id = r.id),"
                " (SELECT count(*) FROM outbox o WHERE o.aggregate_id = r.id::text) FROM referrals r WHERE r.child_id = :c"
                " ORDER BY r.policy"
            ), {"c": child})).all()
            out.append((place, card, cases))
        return out


async def test_a_census_batch_gives_visits_the_rows_of_one_event_at_a_time(settings, redis, engines):
    """Visits applies a census's registrations, 无人监护 flags (a case each, ~15 statements one at a time) and
    contact cards a run per type: the same places, cards and cases (timeline, requests, disclosures, events)
    as one entry per transaction; a redelivery changes nothing; a child's flag before its registration waits."""
    from services.visits.adapters.orm import inbox as visits_inbox, outbox, positions as visits_positions
    from services.visits.entrypoints.consumers import subscriptions as visits_subscriptions
    from services.visits.service_layer.unit_of_work import VisitsUnitOfWork
    from shared.outbox import Outbox

    sessions = make_sessionmaker(engines["visits"])
    consumer = ReliableConsumer(
        service="visits", settings=settings, redis=redis, inbox=visits_inbox, positions=visits_positions,
        uow_factory=lambda: VisitsUnitOfWork(sessions, Outbox(outbox, "visits", settings.stream_namespace)),
    )
    subs = {s.stream: s for s in visits_subscriptions()}
    together, alone = [uuid.uuid4() for _ in range(5)], [uuid.uuid4() for _ in range(5)]
    events, cards = _visits_census(together)
    registration, flag = events[4], events[5]  # the third child's: its flag arrives first, and waits
    outcome = await consumer.process(subs[REGISTRY_EVENTS], [e for e in events if e is not registration])
    assert outcome.waiting == [flag[0]] and not outcome.failed
    outcome = await consumer.process(subs[REGISTRY_EVENTS], [registration, flag, events[0]])  # and a redelivery
    assert len(outcome.done) == 3 and not outcome.waiting and not outcome.failed
    assert len((await consumer.process(subs[REGISTRY_CONTACTS], cards)).done) == len(cards)

    one_events, one_cards = _visits_census(alone, 200)
    for entry in one_events:
        assert len((await consumer.process(subs[REGISTRY_EVENTS], [entry])).done) == 1
    for entry in one_cards:
        assert len((await consumer.process(subs[REGISTRY_CONTACTS], [entry])).done) == 1

    batched = await _visits_rows(engines["visits"], together)
    assert batched == await _visits_rows(engines["visits"], alone)
    # The last child is both unguarded and without household registration: two cases.
    assert [[case[0] for case in cases] for _, _, cases in batched] == [
        [], [], ["unguarded"], ["unguarded"], ["no_hukou", "unguarded"]]
    assert all(card for _, card, _ in batched)

    for stream, entries in ((REGISTRY_EVENTS, events), (REGISTRY_CONTACTS, cards)):  # all of it again
        assert len((await consumer.process(subs[stream], entries)).done) == len(entries)
    assert await _visits_rows(engines["visits"], together) == batched


async def test_a_run_of_cases_opened_and_reported_gives_reportings_figures_of_one_at_a_time(settings, redis, infra):
    """visits.referral.opened and .stage_changed of a census's cases (opened then reported at once, one
    acknowledged later) applied as runs or one entry per transaction: the same open cases per stage and the
    same monthly figures; the second case's report before its opening waits; a redelivery changes nothing."""
    from shared.contracts.referrals_v1 import REFERRAL_OPENED, STAGE_CHANGED, ReferralOpened, StageChanged

    def case(i: int, event_type, data, version: int, village: str):
        envelope = event_type.envelope(data, producer="visits", aggregate_id=str(data.referral_id),
                                       aggregate_version=version, region_code=village)
        return f"{i + 1}-0".encode(), {DATA_FIELD.encode(): envelope.model_dump_json().encode()}

    n, entries = iter(range(100)), []
    for k, (policy, village) in enumerate((("unguarded", "410523100201"), ("no_hukou", "410523101202"), ("unguarded", "410526101203"))):
        rid, child = uuid.uuid4(), uuid.uuid4()
        entries.append(case(next(n), REFERRAL_OPENED, ReferralOpened(
            referral_id=rid, child_id=child, policy=policy, stage="reported", trigger="registry.guardianship.unguarded",
            opened_on=date(2026, 11, 3), due_at=None), 1, village))
        entries.append(case(next(n), STAGE_CHANGED, StageChanged(
            referral_id=rid, child_id=child, policy=policy, previous="reported", stage="reported", agencies=["civil_affairs"]),
            2, village))
        if k == 0:
            entries.append(case(next(n), STAGE_CHANGED, StageChanged(
                referral_id=rid, child_id=child, policy=policy, previous="reported", stage="acknowledged", in_time=True),
                3, village))
    first = [e for i, e in enumerate(entries) if i != 3]  # the second case's opening comes late
    second = [entries[3], entries[4], entries[0]]  # then its report again, and a redelivery
    sub = next(s for s in reporting_subscriptions() if s.stream == VISITS_EVENTS)
    tables = {"monthly_figures": "place, month, figure", "place_figures": "place, figure"}
    batched, single, _ = await batched_and_single(settings, redis, infra, sub, [first, second], tables,
                                                   waiting=[entries[4][0]])
    assert batched == single
    open_now = {(p, f): v for p, f, v in batched["place_figures"] if v}
    assert open_now == {
        **{(p, "referrals_open:unguarded:reported"): 1 for p in ("41", "4105", "410526", "410526101", "410526101203")},
        **{(p, "referrals_open:unguarded:acknowledged"): 1 for p in ("410523", "410523100", "410523100201")},
        **{(p, "referrals_open:no_hukou:reported"): 1 for p in ("410523", "410523101", "410523101202")},
        ("41", "referrals_open:unguarded:acknowledged"): 1, ("4105", "referrals_open:unguarded:acknowledged"): 1,
        ("41", "referrals_open:no_hukou:reported"): 1, ("4105", "referrals_open:no_hukou:reported"): 1,
    }
    monthly = {(p, f): v for p, _, f, v in batched["monthly_figures"]}
    assert monthly["41", "referrals_opened"] == 3 and monthly["41", "referrals_acknowledged"] == 1
