"""The schedule (走访计划): a timer per child, rule and window, fired at the window's end
(timers are data). The firing decides overdue once, and arms the next window."""

from __future__ import annotations

from datetime import date, timedelta
from uuid import UUID

from services.visits.adapters.repository import WINDOW_END
from services.visits.domain.compliance import Status, evaluate
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
    windows = [
        (rule, window_at_or_after(rule.window, today, terms))
        for rule in rules_in_force(versions, today)
        if (codes is None or rule.code in codes) and (kinds is None or rule.window in kinds)
    ]
    await uow.schedule.arm(county, windows, today, child_ids)


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
    versions, terms = await county_setup(uow, child.county, window.start)
    rule = rule_in_force(versions, code, window.start)
    if rule is not None:
        spans = (await uow.pairings.spans([child_id])).get(child_id, [])
        contacts = (await uow.records.contacts([child_id], window.start, window.end)).get(child_id, [])
        status = evaluate(rule, window, spans, contacts, day_after)
        if status is not None and status.status is Status.overdue and await uow.schedule.mark_overdue(
            child_id, code, window, status.required, status.done
        ):
            data = VisitOverdue(
                child_id=child_id, rule_code=code, window=window.kind, window_start=window.start,
                window_end=window.end, required=status.required, done=status.done, helper_ids=list(status.helper_ids),
            )
            await uow.emit(VISIT_OVERDUE, data, aggregate_id=f"{child_id}:{code}:{window.key}", aggregate_version=1,
                           region_code=child.village_code, actor="visits.schedule")
    await arm(uow, day_after, county=child.county, child_ids=[child_id], codes={code})


TIMER_HANDLERS = {WINDOW_END: window_ended}
