"""The schedule (走访计划): a timer per child, rule and window, fired at the window's end
(timers are data). The firing decides overdue once, and arms the next calendar window; a
rolling window (滚动周期) is armed again by what moves it: a contact, a pairing, a rule."""

from __future__ import annotations

from datetime import date, timedelta
from uuid import UUID

from services.visits.adapters.repository import WINDOW_END
from services.visits.domain.compliance import Status, evaluate, rolling_window_of
from services.visits.domain.consent import binding_spans
from services.visits.domain.rules import VisitRule, rule_in_force, rules_in_force
from services.visits.domain.windows import Term, Window, county_terms, window_at_or_after
from shared.contracts.visits_v1 import VISIT_OVERDUE, VisitOverdue, WindowKind
from shared.timers import Timer


async def county_setup(uow, county: str, around: date) -> tuple[list[VisitRule], list[Term]]:
    """A county's rule versions and its terms (with default dates where it set none)."""
    return await uow.rules.versions(county), county_terms(await uow.rules.terms(county), around)


async def arm(uow, today: date, *, county: str, child_ids: list[UUID] | None = None,
              codes: set[str] | None = None, kinds: set[WindowKind] | None = None) -> None:
    """Arm the running (or, in a school holiday, the next) window of each rule in force in
    ``county`` for its children (or only ``child_ids``); existing timers stay as they are."""
    versions, terms = await county_setup(uow, county, today)
    rules = [
        rule for rule in rules_in_force(versions, today)
        if (codes is None or rule.code in codes) and (kinds is None or rule.window in kinds)
    ]
    calendar = [(r, window_at_or_after(r.window, today, terms)) for r in rules if r.window is not WindowKind.rolling]
    await uow.schedule.arm(county, calendar, today, child_ids)
    rolling = [r for r in rules if r.window is WindowKind.rolling]
    if rolling:
        await _arm_rolling(uow, today, county, rolling, child_ids)


async def _arm_rolling(uow, today: date, county: str, rules: list[VisitRule], child_ids: list[UUID] | None) -> None:
    """Each child's rolling windows follow its own pairings and contacts, so they are worked out per child
    (every contact since its earliest pairing, so a lapsed window keeps its key and is not reported again)."""
    ids = await uow.pairings.children_paired_in(county, today, child_ids)
    spans = await uow.pairings.spans(ids)
    withdrawals = {k: c.withdrawal for k, c in (await uow.children.get_many(ids)).items() if c.withdrawal}
    spans = {k: binding_spans(v, withdrawals.get(k)) for k, v in spans.items()}
    since = min((p.started_on for theirs in spans.values() for p in theirs), default=today)
    contacts = await uow.records.contacts(ids, since, today)
    await uow.schedule.arm_rolling([
        (child_id, rule.code, window)
        for child_id in ids for rule in rules
        if (window := rolling_window_of(rule, spans.get(child_id, []), contacts.get(child_id, []), today))
    ], today)


async def contacts_recorded(uow, county: str, child_ids: list[UUID], today: date) -> None:
    """A contact (a record, its correction, a group activity) moves the children's rolling windows."""
    await arm(uow, today, county=county, child_ids=child_ids, kinds={WindowKind.rolling})


async def rearm_child(uow, child_id: UUID, county: str, today: date) -> None:
    """The child's schedule follows it: drop the pending windows, arm those of its (new) county."""
    await uow.schedule.disarm(child_id)
    await arm(uow, today, county=county, child_ids=[child_id])


async def window_ended(uow, timer: Timer) -> None:
    """Timer handler: judge one child-rule-window once, emit ``visits.visit.overdue`` if short, arm the next."""
    p = timer.payload
    child_id, code = UUID(p["child_id"]), p["rule_code"]
    window = Window(WindowKind(p["window"]), date.fromisoformat(p["start"]), date.fromisoformat(p["end"]))
    child = await uow.children.get(child_id)
    if child is None or child.closed_on is not None:
        return
    day_after = window.end + timedelta(days=1)
    rolling = window.kind is WindowKind.rolling
    versions, terms = await county_setup(uow, child.county, window.start)
    # A rolling window is judged by the version that set its length (in force from its start or later).
    rule = rule_in_force(versions, code, window.end if rolling else window.start)
    if rule is not None and rule.window is window.kind:
        spans = binding_spans((await uow.pairings.spans([child_id])).get(child_id, []), child.withdrawal)
        # A rolling window's anchor, the day before it, is read too: it tells whether a contact moved it.
        since = window.start - timedelta(days=1) if rolling else window.start
        contacts = (await uow.records.contacts([child_id], since, window.end)).get(child_id, [])
        moved = rolling and rolling_window_of(rule, spans, contacts, window.end) != window
        status = None if moved else evaluate(rule, window, spans, contacts, day_after)
        if status is not None and status.status is Status.overdue and await uow.schedule.mark_overdue(
            child_id, code, window, status.required, status.done
        ):
            data = VisitOverdue(
                child_id=child_id, rule_code=code, window=window.kind, window_start=window.start,
                window_end=window.end, required=status.required, done=status.done, helper_ids=list(status.helper_ids),
            )
            await uow.emit(VISIT_OVERDUE, data, aggregate_id=f"{child_id}:{code}:{window.key}", aggregate_version=1,
                           region_code=child.village_code, actor="visits.schedule")
    if not rolling:  # the next rolling window starts with the next contact, which arms it
        await arm(uow, day_after, county=child.county, child_ids=[child_id], codes={code})


TIMER_HANDLERS = {WINDOW_END: window_ended}
