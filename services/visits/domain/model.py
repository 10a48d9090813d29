"""Helpers (帮扶人), pairings (结对帮扶) and the checks on them and on visit records (走访记录)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from uuid import UUID

from services.visits.domain.errors import Refusal
from services.visits.domain.consent import Withdrawal
from shared.contracts.visits_v1 import ContactKind, HelperRole, PairingEndReason

# How late a visit may be entered (补录): paper record books are checked weekly and assessed monthly.
BACKDATE_LIMIT = timedelta(days=31)
# Roles that may record a contact with a child they are not paired with: the village
# child-welfare supervisor is the first responder for every child of the village.
MAY_RECORD_UNPAIRED = {HelperRole.village_supervisor}
# Pairings ended for these reasons are listed for re-pairing (待重新结对).
REPAIR_REASONS = (PairingEndReason.transferred, PairingEndReason.class_changed)


@dataclass
class ChildPlace:
    """What visits knows of a child from the registry (no name: that is in child_contacts)."""

    child_id: UUID
    village_code: str
    school_id: str | None
    class_name: str | None
    closed_on: date | None = None
    consent_withdrawn_on: date | None = None  # the last withdrawal of consent (domain/consent.py)
    consent_given_on: date | None = None  # ... and when consent was given again (None: still withdrawn)

    @property
    def county(self) -> str:
        return self.village_code[:6]

    @property
    def withdrawal(self) -> Withdrawal | None:
        """The last withdrawal of the guardian's consent, if any (撤回同意)."""
        if self.consent_withdrawn_on is None:
            return None
        return Withdrawal(self.consent_withdrawn_on, self.consent_given_on)


@dataclass
class Helper:
    id: UUID
    name: str
    role: HelperRole
    organisation: str
    region_code: str
    phone: str | None = None
    school_id: str | None = None
    class_name: str | None = None
    account: str | None = None  # the login (token subject) of the helper, when they record themselves


@dataclass
class Pairing:
    id: UUID
    helper_id: UUID
    child_id: UUID
    started_on: date
    ended_on: date | None = None
    end_reason: PairingEndReason | None = None
    version: int = 1


def check_helper(helper: Helper) -> None:
    if helper.role is HelperRole.class_teacher and not (helper.school_id and helper.class_name):
        raise Refusal("class_teacher_needs_class", "班主任需填写学校和班级", "a class teacher needs school_id and class_name",
                      "school_id")


def teaches(helper: Helper, child: ChildPlace) -> bool:
    return (helper.school_id, helper.class_name) == (child.school_id, child.class_name)


def check_pairing(helper: Helper, child: ChildPlace, started_on: date, today: date) -> None:
    """结对 rules: the class teacher is the teacher of the child's own school and class."""
    if child.closed_on is not None:
        raise Refusal("archive_closed", "该儿童档案已结档，不能结对", "the child's archive is closed", "child_ids")
    if started_on > today:
        raise Refusal("start_in_future", "结对开始日期不能晚于今天", "started_on is in the future", "started_on")
    if helper.role is HelperRole.class_teacher and not teaches(helper, child):
        raise Refusal("not_the_class_teacher", "班主任只能与本校本班的儿童结对",
                      "a class teacher is paired only with children of their own school and class", "helper_ids")


def check_visit_date(day: date, today: date, field: str = "visited_on") -> None:
    """A contact is entered on the day or late (补录) within the limit, never ahead."""
    if day > today:
        raise Refusal("date_in_future", "日期不能晚于今天", "the date is in the future", field)
    if day < today - BACKDATE_LIMIT:
        raise Refusal("backdated_too_far", f"补录不能早于{BACKDATE_LIMIT.days}天前",
                      f"a contact may be entered at most {BACKDATE_LIMIT.days} days late", field)


def check_may_record(helper: Helper, paired_on_day: bool) -> None:
    if not paired_on_day and helper.role not in MAY_RECORD_UNPAIRED:
        raise Refusal("not_paired", "该帮扶人在走访当日未与该儿童结对", "the helper was not paired with the child on that day",
                      "helper_id")


@dataclass
class VisitRecord:
    """走访记录: observations are ``{"area", "level", "note"}`` items, one per area."""

    id: UUID
    child_id: UUID
    helper_id: UUID
    helper_role: HelperRole
    kind: ContactKind
    visited_on: date
    observations: list[dict]
    note: str | None
    village_code: str
    version: int = 1

    def facts(self) -> dict:
        """What a correction may change, in the form kept in the audit trail."""
        return {"kind": self.kind.value, "visited_on": self.visited_on.isoformat(), "observations": self.observations,
                "note": self.note}
