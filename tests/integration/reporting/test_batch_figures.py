"""Reporting's figures of a census batch (issue 10): many children of many villages, schools and counties in
one transaction give the rows of the same events applied one per transaction, and the counts their facts say."""

from __future__ import annotations

import random
import uuid
from collections import Counter
from datetime import date

from sqlalchemy import text

from services.reporting.domain.figures import ChildState, labels
from services.reporting.domain.places import child_places
from services.reporting.entrypoints.consumers import subscriptions
from shared.contracts.registry_v1 import (
    CHILD_REGISTERED, CHILD_TRANSFERRED, CHILD_UNGUARDED, GUARDIAN_ASSIGNED, REGISTRY_EVENTS, ChildRegistered,
    ChildTransferred, ChildUnguarded, GuardianAssigned, RiskCategory,
)
from shared.outbox import DATA_FIELD
from tests.integration.reporting.scenario import batched_and_single

COUNTIES = ("410522", "410523", "410526")
RISKS = [r.value for r in RiskCategory]


def _census(rng: random.Random, children: int) -> tuple[list, dict[uuid.UUID, ChildState]]:
    """Registry entries of a census over three counties (a few villages each, a school or none, risks, a
    guardian or none then one assigned, some flagged 无人监护, one moved to another county), and each child's
    facts afterwards."""
    entries, final = [], {}
    villages = [f"{c}{t:03d}{v:03d}" for c in COUNTIES for t in (100, 101) for v in (201, 202, 203)]

    def entry(event_type, data, version: int, village: str):
        envelope = event_type.envelope(data, producer="registry", aggregate_id=str(data.child_id),
                                       aggregate_version=version, region_code=village)
        entries.append((f"{len(entries) + 1}-0".encode(), {DATA_FIELD.encode(): envelope.model_dump_json().encode()}))

    for i in range(children):
        child, village = uuid.uuid4(), rng.choice(villages)
        school = rng.choice((None, f"school-{village[:9]}-1", f"school-{village[:9]}-2"))
        guardian = rng.choice((None, "grandparent", "relative"))
        data = ChildRegistered(
            child_id=child, gender=rng.choice(("male", "female")), birth_date=date(2016, 5, 1), village_code=village,
            hukou_status="registered", school_id=school, class_name="三年级二班",
            left_behind_type=rng.choice(("both_parents_out", "one_out_other_incapable")),
            father_status="migrant_worker", mother_status=rng.choice(("migrant_worker", "unknown")),
            guardian_relationship=guardian, risk_categories=rng.sample(RISKS, k=rng.choice((0, 0, 1, 2))),
        )
        entry(CHILD_REGISTERED, data, 1, village)
        state = ChildState.of(
            village_code=village, gender=data.gender.value, left_behind_type=data.left_behind_type.value,
            hukou_status="registered", school_id=school, father_status="migrant_worker",
            mother_status=data.mother_status.value, guardian_relationship=guardian,
            risk_categories=[r.value for r in data.risk_categories],
            enrolment_status="in_school" if school else "not_enrolled",
        )
        version = 1
        if guardian is None and i % 3:
            version += 1
            entry(GUARDIAN_ASSIGNED, GuardianAssigned(child_id=child, relationship="sibling", capacity="limited"),
                  version, village)
            state = state.changed(guardian_relationship="sibling")
        elif guardian is None:
            version += 1
            entry(CHILD_UNGUARDED, ChildUnguarded(child_id=child, cause="no_guardian"), version, village)
            state = state.changed(unguarded_since=date.today())
        if i == children // 2:  # to a village of another county, without a school
            to = f"{COUNTIES[(COUNTIES.index(village[:6]) + 1) % 3]}101203"
            version += 1
            entry(CHILD_TRANSFERRED, ChildTransferred(child_id=child, from_village_code=village, to_village_code=to,
                                                      from_school_id=school, effective_on=date(2026, 11, 2)), version, to)
            state = state.changed(village_code=to, school_id=None, enrolment_status="not_enrolled")
        final[child] = state
    return entries, final


_FIGURES = {"place_figures": "place, figure", "monthly_figures": "place, month, figure"}


async def test_a_batch_of_many_villages_of_several_counties_gives_the_figures_of_one_event_at_a_time(settings, redis, infra):
    entries, final = _census(random.Random(20261204), 120)
    sub = next(s for s in subscriptions() if s.stream == REGISTRY_EVENTS)

    async def fillfactor_of(engine):
        async with engine.connect() as conn:
            return await conn.scalar(text("SELECT reloptions FROM pg_class WHERE relname = 'place_figures'"))

    batched, single, fillfactor = await batched_and_single(
        settings, redis, infra, sub, [entries[:97], entries[97:]], _FIGURES, waiting=[], look=fillfactor_of)
    assert batched == single
    # And they are what the children's facts say: each label counted in each of a child's places (the
    # transferred child's old places keep a row at 0, as applied one by one).
    expected = Counter()
    for state in final.values():
        for place in child_places(state.village_code, state.school_id):
            expected.update((place, label) for label in labels(state))
    assert {(p, f): v for p, f, v in batched["place_figures"] if v} == expected
    assert len({p[:6] for p, _ in expected if len(p) >= 6}) == 3 and len({p for p, _ in expected if ".school." in p}) > 10
    registered = Counter()
    for p, _, f, v in batched["monthly_figures"]:
        if f == "registered":
            registered[p] += v
    assert registered["41"] == len(final) and sum(registered[c] for c in COUNTIES) == len(final)
    assert fillfactor == ["fillfactor=30"]  # migration 0006: room on each page for its rows' next versions
