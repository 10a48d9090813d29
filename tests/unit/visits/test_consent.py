"""The guardian's consent in visits (domain/consent.py), with fakes: a volunteer's record is refused while
consent is withdrawn and a class teacher's or supervisor's is not; the volunteers' rules stop binding the
child for the withdrawal only; no overdue is raised for them; consent given again arms the schedule."""

from datetime import date, timedelta
from types import SimpleNamespace
from uuid import uuid4

import pytest

from services.visits.domain.compliance import PairingSpan, statuses_on
from services.visits.domain.consent import Withdrawal, applied, binding_spans, check_consent
from services.visits.domain.errors import Refusal
from services.visits.domain.model import ChildPlace, Helper
from services.visits.domain.windows import Term, county_terms
from services.visits.service_layer import commands, handlers
from services.visits.service_layer.schedule import window_ended
from shared.contracts.registry_v1 import CONSENT_CHANGED, Consent, ConsentChanged
from shared.contracts.visits_v1 import ContactKind as K
from shared.contracts.visits_v1 import HelperRole as R

VILLAGE = "410523100001"
TERMS = county_terms([Term(date(2026, 9, 1), date(2027, 1, 15))], date(2026, 10, 1))
MOTHER, TEACHER = uuid4(), uuid4()


def _async(fn):
    async def call(*a, **k):
        return fn(*a, **k)

    return call


# --- the rule, pure -------------------------------------------------------------------------


@pytest.mark.parametrize("role", [R.caring_mother, R.proxy_parent, R.volunteer_tutor, R.party_member])
def test_a_volunteers_contact_is_refused_while_withdrawn_in_both_languages(role):
    with pytest.raises(Refusal) as refused:
        check_consent(Withdrawal(date(2026, 3, 10)), role)
    assert refused.value.code == "consent_withdrawn"
    assert "撤回知情同意" in refused.value.zh and "withdrawn consent" in refused.value.en


@pytest.mark.parametrize("role", [R.class_teacher, R.village_supervisor])
def test_the_school_and_the_village_go_on_while_withdrawn(role):
    check_consent(Withdrawal(date(2026, 3, 10)), role)


def test_a_persuasion_visit_and_consent_given_again_are_not_refused():
    check_consent(Withdrawal(date(2026, 3, 10)), R.volunteer_tutor, persuasion=True)  # the dropout flow is statutory
    check_consent(Withdrawal(date(2026, 3, 10), date(2026, 4, 2)), R.caring_mother)  # given again
    check_consent(None, R.caring_mother)


def test_applying_the_event_keeps_the_last_withdrawal_as_a_period():
    assert applied(None, None, "given", date(2026, 3, 1)) == {"consent_withdrawn_on": None, "consent_given_on": None}
    withdrawn = applied(None, None, "withdrawn", date(2026, 3, 10))
    assert withdrawn == {"consent_withdrawn_on": date(2026, 3, 10), "consent_given_on": None}
    given = applied(date(2026, 3, 10), None, "given", date(2026, 4, 2))
    assert given == {"consent_withdrawn_on": date(2026, 3, 10), "consent_given_on": date(2026, 4, 2)}
    again = applied(date(2026, 3, 10), date(2026, 4, 2), "withdrawn", date(2026, 5, 5))
    assert again == {"consent_withdrawn_on": date(2026, 5, 5), "consent_given_on": None}


def test_the_withdrawal_is_cut_out_of_a_volunteers_pairing_only():
    mother = PairingSpan(MOTHER, R.caring_mother, date(2026, 1, 1), None)
    teacher = PairingSpan(TEACHER, R.class_teacher, date(2026, 1, 1), None)
    still = binding_spans([mother, teacher], Withdrawal(date(2026, 3, 10)))
    assert still == [PairingSpan(MOTHER, R.caring_mother, date(2026, 1, 1), date(2026, 3, 10)), teacher]
    back = binding_spans([mother, teacher], Withdrawal(date(2026, 3, 10), date(2026, 4, 2)))
    assert [(s.role, s.started_on, s.ended_on) for s in back] == [
        (R.caring_mother, date(2026, 1, 1), date(2026, 3, 10)), (R.caring_mother, date(2026, 4, 2), None),
        (R.class_teacher, date(2026, 1, 1), None),
    ]
    # A pairing made during the withdrawal binds only from consent given again; one ended before it, as ever.
    late = PairingSpan(MOTHER, R.caring_mother, date(2026, 3, 20), None)
    assert binding_spans([late], Withdrawal(date(2026, 3, 10), date(2026, 4, 2)))[0].started_on == date(2026, 4, 2)
    ended = PairingSpan(MOTHER, R.caring_mother, date(2026, 1, 1), date(2026, 2, 1))
    assert binding_spans([ended], Withdrawal(date(2026, 3, 10), date(2026, 4, 2))) == [ended]


def test_the_volunteers_rules_stop_binding_and_the_teachers_do_not():
    spans = [PairingSpan(MOTHER, R.caring_mother, date(2026, 1, 1), None),
             PairingSpan(TEACHER, R.class_teacher, date(2026, 1, 1), None)]
    today = date(2026, 10, 20)

    def codes(withdrawal):
        return {s.rule.code for s in statuses_on([], today, TERMS, binding_spans(spans, withdrawal), [], today)}

    normal = codes(None)
    assert {"companion_monthly_visits", "class_teacher_monthly_talk"} <= normal
    withdrawn = codes(Withdrawal(date(2026, 10, 5)))
    assert "class_teacher_monthly_talk" in withdrawn and "class_teacher_term_home_visits" in withdrawn
    assert not {"companion_monthly_visits", "caring_mother_monthly_contact", "monthly_guardian_contact"} & withdrawn
    assert codes(Withdrawal(date(2026, 10, 5), date(2026, 10, 12))) == normal


# --- the commands and handlers, with fakes -----------------------------------------------------


class FakeUow:
    """Just what record_visit, window_ended and consent_changed read and write."""

    def __init__(self, child: ChildPlace, helpers: list[Helper]) -> None:
        self.child, self.events, self.armed, self.updates = child, [], [], []
        by_id = {h.id: h for h in helpers}
        self.children = SimpleNamespace(get=_async(lambda cid, **k: self.child), update=_async(self._update),
                                        get_many=_async(lambda ids: {self.child.child_id: self.child}))
        self.helpers = SimpleNamespace(get=_async(lambda hid: by_id.get(hid)))
        self.pairings = SimpleNamespace(
            paired_on=_async(lambda h, c, d: True), children_paired_in=_async(lambda *a: []),
            spans=_async(lambda ids: {child.child_id: [PairingSpan(h.id, h.role, date(2026, 1, 1), None) for h in helpers]}),
        )
        self.records = SimpleNamespace(get=_async(lambda rid: None), add=_async(lambda r, by: self.records_added(r)),
                                       contacts=_async(lambda ids, s, e: {}))
        self.rules = SimpleNamespace(versions=_async(lambda county: []), terms=_async(lambda county: []))
        self.schedule = SimpleNamespace(arm=_async(self._arm), arm_rolling=_async(lambda *a: None),
                                        mark_overdue=_async(lambda *a: True))
        self.commits = 0

    def records_added(self, record) -> None:
        self.records.added = [*getattr(self.records, "added", []), record]

    def _update(self, child_id, **values) -> None:
        self.updates.append(values)
        self.child = ChildPlace(**{**vars(self.child), **values})

    def _arm(self, county, windows, today, child_ids) -> None:
        self.armed.append((county, [r.code for r, _ in windows], child_ids))

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc) -> None:
        pass

    async def commit(self) -> None:
        self.commits += 1

    async def emit(self, event_type, data, **fields) -> None:
        self.events.append(event_type.name)


def _helper(role: R) -> Helper:
    return Helper(uuid4(), "帮扶人", role, "县妇联", VILLAGE[:6])


async def _record(uow, helper: Helper):
    today = date.today()
    data = {"child_id": uow.child.child_id, "helper_id": helper.id, "kind": K.home_visit, "visited_on": today,
            "observations": [], "note": None}
    return await commands.record_visit(uow, data, [], region=VILLAGE[:6], actor="t", account=None, today=today)


async def test_a_caring_mothers_record_is_refused_and_a_teachers_taken_while_withdrawn():
    mother, teacher, supervisor = _helper(R.caring_mother), _helper(R.class_teacher), _helper(R.village_supervisor)
    child = ChildPlace(uuid4(), VILLAGE, "s1", "1班", consent_withdrawn_on=date.today() - timedelta(days=3))
    uow = FakeUow(child, [mother, teacher, supervisor])
    with pytest.raises(Refusal) as refused:
        await _record(uow, mother)
    assert refused.value.code == "consent_withdrawn" and uow.commits == 0 and uow.events == []
    for statutory in (teacher, supervisor):
        record, _, replayed = await _record(uow, statutory)
        assert record.helper_role is statutory.role and not replayed
    assert uow.events == ["visits.record.created"] * 2 and uow.commits == 2
    uow.child = ChildPlace(**{**vars(child), "consent_given_on": date.today()})  # given again: back to normal
    record, _, _ = await _record(uow, mother)
    assert record.helper_role is R.caring_mother and uow.commits == 3


async def test_a_volunteer_is_not_paired_while_withdrawn():
    mother = _helper(R.caring_mother)
    child = ChildPlace(uuid4(), VILLAGE, None, None, consent_withdrawn_on=date.today())
    uow = FakeUow(child, [mother])
    uow.helpers.get_many = _async(lambda ids: {mother.id: mother})
    uow.pairings.active = _async(lambda **k: [])
    with pytest.raises(Refusal, match="withdrawn consent"):
        await commands.pair(uow, [mother.id], [child.child_id], date.today(), region=VILLAGE[:6], actor="t",
                            today=date.today())
    assert uow.events == []


def _timer(child_id, code="companion_monthly_visits"):
    return SimpleNamespace(payload={"child_id": str(child_id), "rule_code": code, "window": "month",
                                    "start": "2026-03-01", "end": "2026-03-31"})


async def test_no_overdue_for_a_volunteers_rule_while_withdrawn_but_for_the_teachers():
    mother, teacher = _helper(R.caring_mother), _helper(R.class_teacher)
    withdrawn = ChildPlace(uuid4(), VILLAGE, "s1", "1班", consent_withdrawn_on=date(2026, 3, 15))
    uow = FakeUow(withdrawn, [mother, teacher])
    await window_ended(uow, _timer(withdrawn.child_id))
    assert uow.events == []
    await window_ended(uow, _timer(withdrawn.child_id, "class_teacher_monthly_talk"))
    assert uow.events == ["visits.visit.overdue"]
    # Withdrawn only after the window ended: judged as ever.
    before = ChildPlace(uuid4(), VILLAGE, "s1", "1班", consent_withdrawn_on=date(2026, 4, 2))
    uow = FakeUow(before, [mother])
    await window_ended(uow, _timer(before.child_id))
    assert uow.events == ["visits.visit.overdue"]


async def test_the_event_is_kept_on_the_child_and_consent_given_again_arms_the_schedule():
    child = ChildPlace(uuid4(), VILLAGE, None, None)
    uow = FakeUow(child, [_helper(R.caring_mother)])

    def event(consent: Consent, on: date):
        data = ConsentChanged(child_id=child.child_id, consent=consent, effective_on=on)
        return CONSENT_CHANGED.envelope(data, producer="registry", aggregate_id=str(child.child_id),
                                        aggregate_version=2, region_code=VILLAGE)

    await handlers.consent_changed(uow, event(Consent.withdrawn, date(2026, 3, 10)))
    assert uow.child.withdrawal == Withdrawal(date(2026, 3, 10)) and uow.armed == []
    await handlers.consent_changed(uow, event(Consent.given, date(2026, 4, 2)))
    assert uow.child.withdrawal == Withdrawal(date(2026, 3, 10), date(2026, 4, 2))
    [(county, codes, child_ids)] = uow.armed
    assert county == VILLAGE[:6] and child_ids == [child.child_id] and "companion_monthly_visits" in codes


async def test_a_child_is_not_entered_in_a_group_activity_while_withdrawn():
    child = ChildPlace(uuid4(), VILLAGE, None, None, consent_withdrawn_on=date.today())
    uow = FakeUow(child, [])
    uow.records.add_activity = _async(lambda *a: None)
    values = {"kind": "festival", "held_on": date.today(), "region_code": VILLAGE, "guardians": 0}

    async def enter():
        return await commands.record_activity(uow, values, [child.child_id], region=VILLAGE[:6], actor="t",
                                              today=date.today())

    with pytest.raises(Refusal) as refused:
        await enter()
    assert (refused.value.code, refused.value.field) == ("consent_withdrawn", "child_ids") and uow.events == []
    uow.child = ChildPlace(**{**vars(child), "consent_given_on": date.today()})
    assert await enter() and uow.events == ["visits.activity.recorded"]
