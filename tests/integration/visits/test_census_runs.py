"""A census batch in one transaction: what a run's handlers know of the children it added (no read back, no
case, absence or helper from before) must still follow a change made to a child later in the same batch."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import text

from services.visits.adapters.orm import inbox, outbox, positions
from services.visits.domain.model import Helper
from services.visits.domain.windows import today_local
from services.visits.entrypoints.consumers import subscriptions
from services.visits.service_layer.commands import register_helper
from services.visits.service_layer.unit_of_work import VisitsUnitOfWork
from shared.contracts.registry_v1 import (
    CHILD_REGISTERED, CHILD_TRANSFERRED, CHILD_UNGUARDED, REGISTRY_EVENTS, ChildRegistered, ChildTransferred,
    ChildUnguarded,
)
from shared.contracts.visits_v1 import HelperRole
from shared.db import make_sessionmaker
from shared.messaging import ReliableConsumer
from shared.outbox import DATA_FIELD, Outbox

HOME, MOVED_TO = "410523100201", "410523101203"


def _entry(i: int, event_type, data, version: int, village: str):
    envelope = event_type.envelope(data, producer="registry", aggregate_id=str(data.child_id),
                                   aggregate_version=version, region_code=village)
    return f"{i + 1}-0".encode(), {DATA_FIELD.encode(): envelope.model_dump_json().encode()}


async def test_a_child_moved_within_the_batch_has_its_case_where_it_now_lives_with_the_teacher_paired_in_it(
        settings, redis, engines):
    sessions = make_sessionmaker(engines["visits"])
    uow = lambda: VisitsUnitOfWork(sessions, Outbox(outbox, "visits", settings.stream_namespace))  # noqa: E731
    school, class_name = f"school-{uuid.uuid4().hex[:8]}", "三年级二班"
    teacher = await register_helper(uow(), Helper(
        id=uuid.uuid4(), name="王老师", role=HelperRole.class_teacher, organisation="小学", region_code=HOME[:9],
        school_id=school, class_name=class_name), actor="test", today=today_local())
    moved, stayed = uuid.uuid4(), uuid.uuid4()

    def registered(child):
        return ChildRegistered(
            child_id=child, gender="female", birth_date=date(2016, 5, 1), village_code=HOME, hukou_status="registered",
            school_id=school, class_name=class_name, left_behind_type="both_parents_out",
            father_status="migrant_worker", mother_status="migrant_worker")

    entries = [
        _entry(0, CHILD_REGISTERED, registered(moved), 1, HOME),
        _entry(1, CHILD_REGISTERED, registered(stayed), 1, HOME),
        _entry(2, CHILD_TRANSFERRED, ChildTransferred(child_id=moved, from_village_code=HOME, to_village_code=MOVED_TO,
                                                      from_school_id=school, to_school_id=school,
                                                      effective_on=today_local()), 2, MOVED_TO),
        _entry(3, CHILD_UNGUARDED, ChildUnguarded(child_id=moved, cause="no_guardian"), 3, MOVED_TO),
        _entry(4, CHILD_UNGUARDED, ChildUnguarded(child_id=stayed, cause="no_guardian"), 2, HOME),
    ]
    consumer = ReliableConsumer(service="visits", settings=settings, redis=redis, inbox=inbox, positions=positions,
                                uow_factory=uow)
    sub = next(s for s in subscriptions() if s.stream == REGISTRY_EVENTS)
    outcome = await consumer.process(sub, entries)
    assert len(outcome.done) == len(entries) and not outcome.failed and not outcome.waiting

    async with engines["visits"].connect() as conn:
        cases = {r.child_id: (r.village_code, r.county, r.helper_ids) for r in await conn.execute(text(
            "SELECT child_id, village_code, county, helper_ids FROM referrals WHERE child_id IN (:a, :b)"
        ), {"a": moved, "b": stayed})}
    assert cases == {moved: (MOVED_TO, MOVED_TO[:6], [teacher.id]), stayed: (HOME, HOME[:6], [teacher.id])}
