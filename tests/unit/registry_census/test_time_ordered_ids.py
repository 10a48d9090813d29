"""The registry's time-ordered ids (UUID version 7): children's and the census events' (adapters/ids.py)."""

from __future__ import annotations

import time
from uuid import UUID

from services.registry.adapters import ids as ids_module
from services.registry.adapters.census_batch import BufferedOutbox
from services.registry.adapters.ids import TimeOrderedIds, new_id
from services.registry.adapters.orm import outbox as outbox_table


def _ms(u: UUID) -> int:
    return u.int >> 80


def test_ids_are_version_7_uuids_that_grow_and_all_differ():
    ids = TimeOrderedIds()
    before = time.time_ns() // 1_000_000
    drawn = [ids.uuid() for _ in range(5000)]  # many in one millisecond, past one draw of randomness
    after = time.time_ns() // 1_000_000
    assert len(set(drawn)) == len(drawn)
    assert drawn == sorted(drawn) and [u.int for u in drawn] == sorted(u.int for u in drawn)
    assert all(u.version == 7 and u.variant == "specified in RFC 4122" for u in drawn)
    assert before <= _ms(drawn[0]) and _ms(drawn[-1]) <= after + 1


def test_the_text_form_is_the_uuid_as_python_writes_it_and_sorts_the_same():
    ids = TimeOrderedIds()
    texts = [ids.text() for _ in range(2000)]
    assert all(str(UUID(t)) == t for t in texts)
    assert texts == sorted(texts)  # as text too: the audit log's record_id, the consumers' aggregate ids


def test_ids_of_one_millisecond_are_not_one_apart(monkeypatch):
    monkeypatch.setattr(ids_module.time, "time_ns", lambda: 1_765_000_000_000 * 1_000_000)
    ids = TimeOrderedIds()
    drawn = [ids.int() for _ in range(1000)]
    steps = {b - a for a, b in zip(drawn, drawn[1:])}
    assert min(steps) >= 1 and len(steps) > 900  # random steps: the next id is not guessed from one seen
    assert {d >> 80 for d in drawn} == {1_765_000_000_000}


def test_a_clock_that_steps_back_does_not_make_a_smaller_id(monkeypatch):
    now = [1_765_000_000_500]
    monkeypatch.setattr(ids_module.time, "time_ns", lambda: now[0] * 1_000_000)
    ids = TimeOrderedIds()
    first = ids.int()
    now[0] -= 400  # e.g. NTP stepped the clock back
    assert ids.int() > first


def test_a_full_millisecond_goes_on_in_the_next(monkeypatch):
    monkeypatch.setattr(ids_module.time, "time_ns", lambda: 1_765_000_000_000 * 1_000_000)
    ids = TimeOrderedIds()
    first = ids.int()
    ids._seq = (1 << 74) - 1  # the millisecond's room used up
    after = ids.int()
    assert after > first and after >> 80 == (first >> 80) + 1 and UUID(int=after).version == 7


def test_new_archives_and_the_census_events_get_them():
    a, b = new_id(), new_id()
    assert a.version == b.version == 7 and a < b
    outbox = BufferedOutbox(outbox_table, "registry")
    assert [UUID(outbox.event_id()).version for _ in range(3)] == [7, 7, 7]
