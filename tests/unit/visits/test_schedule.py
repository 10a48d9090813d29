"""The window-end timer handler with fakes: overdue once, nothing when done or closed, the next window armed."""

from datetime import date
from types import SimpleNamespace
from uuid import uuid4

from services.visits.domain.compliance import Contact, PairingSpan
from services.visits.domain.model import ChildPlace
from services.visits.service_layer.schedule import window_ended
from shared.contracts.visits_v1 import ContactKind, HelperRole


class FakeUow:
    def __init__(self, child: ChildPlace, contacts: list[Contact]) -> None:
        mother = uuid4()
        self.events, self.armed, self.overdue = [], [], set()
        self.children = SimpleNamespace(get=self._async(lambda cid: child))
        self.rules = SimpleNamespace(versions=self._async(lambda county: []), terms=self._async(lambda county: []))
        self.pairings = SimpleNamespace(
            spans=self._async(lambda ids: {child.child_id: [PairingSpan(mother, HelperRole.caring_mother, date(2026, 1, 1), None)]})
        )
        self.records = SimpleNamespace(contacts=self._async(lambda ids, s, e: {child.child_id: contacts}))
        self.schedule = SimpleNamespace(mark_overdue=self._async(self._mark), arm=self._async(self._arm))

    @staticmethod
    def _async(fn):
        async def call(*a, **k):
            return fn(*a, **k)

        return call

    def _mark(self, child_id, code, window, required, done) -> bool:
        new = (child_id, code, window.key) not in self.overdue
        self.overdue.add((child_id, code, window.key))
        return new

    def _arm(self, county, windows, today, child_ids) -> None:
        self.armed += [(rule.code, window.start, today) for rule, window in windows]

    async def emit(self, event_type, data, **fields) -> None:
        self.events.append((event_type.name, data, fields))


def _timer(child_id):
    payload = {"child_id": str(child_id), "rule_code": "companion_monthly_visits", "window": "month",
               "start": "2026-03-01", "end": "2026-03-31"}
    return SimpleNamespace(payload=payload)


async def test_a_short_window_emits_once_and_arms_the_next_month():
    child = ChildPlace(uuid4(), "410523100001", None, None)
    uow = FakeUow(child, [Contact(date(2026, 3, 9), ContactKind.home_visit, uuid4(), HelperRole.caring_mother)])
    await window_ended(uow, _timer(child.child_id))
    await window_ended(uow, _timer(child.child_id))  # fired again (re-armed by hand): no second event
    [(name, data, fields)] = uow.events
    assert (name, data.required, data.done) == ("visits.visit.overdue", 2, 1)
    assert fields["aggregate_id"] == f"{child.child_id}:companion_monthly_visits:month:2026-03-01"
    assert fields["region_code"] == "410523100001"
    assert ("companion_monthly_visits", date(2026, 4, 1), date(2026, 4, 1)) in uow.armed


async def test_a_met_window_or_a_closed_archive_emits_nothing():
    child = ChildPlace(uuid4(), "410523100001", None, None)
    visits = [Contact(date(2026, 3, d), ContactKind.home_visit, uuid4(), HelperRole.caring_mother) for d in (2, 20)]
    uow = FakeUow(child, visits)
    await window_ended(uow, _timer(child.child_id))
    assert uow.events == [] and uow.armed
    closed = ChildPlace(uuid4(), "410523100001", None, None, closed_on=date(2026, 3, 10))
    uow = FakeUow(closed, [])
    await window_ended(uow, _timer(closed.child_id))
    assert uow.events == [] and uow.armed == []
