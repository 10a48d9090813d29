"""The census import writes its events' envelopes as JSON directly: the very bytes the envelope model writes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from uuid import UUID, uuid4

import pytest

from services.registry.adapters import census_batch
from services.registry.adapters.census_batch import BufferedOutbox, RowWrites
from services.registry.adapters.orm import outbox as outbox_table
from shared import correlation
from shared.contracts.envelope import parse_event
from shared.contracts.registry_v1 import (
    CHILD_CONTACTS,
    CHILD_REGISTERED,
    GUARDIAN_ASSIGNED,
    ChildRegistered,
    ContactCard,
    GuardianAssigned,
    Person,
)

CHILD = uuid4()
EVENTS = [
    (CHILD_REGISTERED, ChildRegistered(
        child_id=CHILD, gender="female", birth_date="2014-06-01", village_code="410523100201", hukou_status="registered",
        school_id='学校 "一"\\', class_name="三年级\n二班\x01\x7f", left_behind_type="both_parents_out",
        father_status="migrant_worker", mother_status="deceased", risk_categories=["dibao_family", "orphan"],
    )),
    (GUARDIAN_ASSIGNED, GuardianAssigned(child_id=CHILD, relationship="grandparent", capacity="limited")),
    (CHILD_CONTACTS, ContactCard(
        child_id=CHILD, child_name="张　小明😀", guardian=Person(name="王奶奶", phone="13900139000"),
        guardian_relationship=None, father=Person(name="张\t大军"), mother=None,
    )),
]


def _fixed_clock(monkeypatch, at: datetime) -> None:
    class Clock(datetime):
        @classmethod
        def now(cls, tz=None):
            return at

    monkeypatch.setattr(census_batch, "datetime", Clock)


@pytest.mark.parametrize("microsecond", [0, 5, 100_000, 123_456])
@pytest.mark.parametrize("flow", [False, True])
async def test_each_envelope_is_byte_for_byte_what_the_envelope_model_writes(monkeypatch, microsecond, flow):
    at = datetime(2026, 12, 4, 19, 10, 0, microsecond, tzinfo=UTC)
    _fixed_clock(monkeypatch, at)
    outbox, writes = BufferedOutbox(outbox_table, "registry", "ns."), RowWrites(None)
    cause = uuid4()
    with correlation.flow(uuid4() if flow else None, cause if flow else None):
        for version, (event_type, data) in enumerate(EVENTS, start=1):
            fields = dict(aggregate_id=str(CHILD), aggregate_version=version, region_code="410523100201",
                          actor='clerk "7"' if flow else None)
            assert await outbox.add(writes, event_type, data, **fields) is None  # no model built
            row = writes.staged[outbox_table][-1]
            assert (row["stream"], row["event_type"], row["aggregate_id"]) == ("ns." + event_type.stream, event_type.name, str(CHILD))
            head = json.loads(row["payload"])
            expected = event_type.envelope(
                data, event_id=UUID(head["event_id"]), occurred_at=at, producer="registry",
                **fields | correlation.current(),
            )
            assert row["payload"] == expected.model_dump_json()
            assert parse_event(row["payload"]) == expected
            assert UUID(head["event_id"]).version == 7  # time-ordered (adapters/ids.py)


async def test_what_the_direct_writing_does_not_cover_goes_through_the_envelope_model():
    outbox, writes = BufferedOutbox(outbox_table, "registry"), RowWrites(None)
    data = {"child_id": str(CHILD), "relationship": "sibling", "capacity": "full"}  # a dict: the model validates it
    envelope = await outbox.add(writes, GUARDIAN_ASSIGNED, data, aggregate_id=str(CHILD), aggregate_version=1,
                                region_code="410523100201")
    assert envelope is not None and writes.staged[outbox_table][-1]["payload"] == envelope.model_dump_json()
    with pytest.raises(ValueError):  # refused as the model refuses it
        await outbox.add(writes, GUARDIAN_ASSIGNED, EVENTS[1][1], aggregate_id=str(CHILD), aggregate_version=0,
                         region_code="410523100201")
