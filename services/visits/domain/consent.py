"""The guardian's consent (知情同意) in visits: what stops while it is withdrawn, and what goes on.

registry.consent.changed says "while withdrawn, every service does only what the law requires the
state organ to do; what rests on consent (messages to the family, helpers' visits, activities) stops".
In visits the line is drawn by who does the work and why:

* **Rests on consent: the paired volunteers** (结对帮扶的志愿者) — 爱心妈妈 caring mother, 代理家长 proxy
  parent, 爱心辅导员 volunteer tutor, 党员/教师志愿者 party member. They are organised by the women's
  federation, the Youth League and the 关工委; visiting the child and writing down its study, life,
  psychology, safety and health is processing of the child's data that no law imposes. While consent
  is withdrawn: their visit records and corrections of them are refused with ``consent_withdrawn``
  (a 422 giving the reason in Chinese and English); no new pairing with them is made; the child
  leaves their worklists, their field-app list, their scores and the compliance counts of the rules that bind through them
  (爱心妈妈每月走访2次, 五个一...), and no overdue is raised for those rules. Their pairings are not
  ended: when consent is given again everything resumes and the schedule is armed again.
* **Statutory: the school and the village** — 班主任 class teacher (the school's duties of 控辍保学, the
  monthly talk and the term home visits, reporting absences: Compulsory Education Law, Minor
  Protection Law) and 儿童福利督导员 village child-welfare supervisor (the village's first responder,
  the civil-affairs duty of 关爱保护). Offices (county, township, school) record through these. Their
  records, pairings, rules and compliance are not affected.
* **Group activities** (集体关爱活动: festivals, summer camps, tutoring...) rest on consent too, as the
  contract says: a child whose guardian withdrew it is not entered in one (refused naming child_ids,
  so the office enters the others).
* **Referrals are not affected at all** (劝返复学, 无人监护, violence, medical aid...): they are the state
  organs' duties of protection. A persuasion visit (劝返走访: a record carrying ``persuasion`` for the
  child's open dropout case) is part of the education bureau's statutory flow, so it is accepted from
  any paired helper, a volunteer included.

Only the last withdrawal is kept, as a period (``withdrawn_on`` to ``given_on``, open while withdrawn):
a window judged inside it does not bind through a volunteer's pairing; windows before it (and after
consent was given again) are judged as ever. A record is refused while consent is withdrawn, whatever
day the visit was (a late entry, 补录, is processing now).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date

from services.visits.domain.errors import Refusal
from shared.contracts.visits_v1 import HelperRole

# Helpers whose work with the child rests on the guardian's consent (the volunteers).
CONSENT_ROLES = frozenset({
    HelperRole.caring_mother, HelperRole.proxy_parent, HelperRole.volunteer_tutor, HelperRole.party_member,
})
# Helpers doing what the law requires of the school and the village: not affected by consent.
STATUTORY_ROLES = frozenset(HelperRole) - CONSENT_ROLES


@dataclass(frozen=True)
class Withdrawal:
    """The last withdrawal of consent: from ``withdrawn_on``, until ``given_on`` (None: still withdrawn)."""

    withdrawn_on: date
    given_on: date | None = None

    @property
    def in_force(self) -> bool:
        return self.given_on is None

    def covers(self, day: date) -> bool:
        return self.withdrawn_on <= day and (self.given_on is None or day < self.given_on)


def rests_on_consent(role: HelperRole) -> bool:
    return role in CONSENT_ROLES


def applied(withdrawn_on: date | None, given_on: date | None, consent: str, effective_on: date) -> dict:
    """The children-row columns after a registry.consent.changed (``consent``: given | withdrawn)."""
    if consent == "withdrawn":
        return {"consent_withdrawn_on": effective_on, "consent_given_on": None}
    if withdrawn_on is None:  # given, never withdrawn: nothing to remember
        return {"consent_withdrawn_on": None, "consent_given_on": None}
    return {"consent_withdrawn_on": withdrawn_on, "consent_given_on": max(effective_on, withdrawn_on)}


def check_consent(withdrawal: Withdrawal | None, role: HelperRole, *, persuasion: bool = False) -> None:
    """A helper's contact with the child, while consent is withdrawn: refused to the volunteers
    (except a persuasion visit, part of the statutory dropout flow); the school and the village go on."""
    if withdrawal is not None and withdrawal.in_force and rests_on_consent(role) and not persuasion:
        raise Refusal(
            "consent_withdrawn",
            "监护人已撤回知情同意：志愿帮扶人（爱心妈妈、代理家长、爱心辅导员、党员志愿者）暂停走访与记录；"
            "班主任、儿童福利督导员及转介（劝返复学等）不受影响",
            "the guardian has withdrawn consent: volunteer helpers (caring mothers, proxy parents, volunteer "
            "tutors, party members) do not visit or record; class teachers, village supervisors and referrals "
            "(dropout persuasion...) go on",
            "child_id",
        )


def check_activity(withdrawal: Withdrawal | None) -> None:
    """A child entered in a group activity, while consent is withdrawn: refused."""
    if withdrawal is not None and withdrawal.in_force:
        raise Refusal(
            "consent_withdrawn",
            "监护人已撤回知情同意：该儿童不能登记参加集体关爱活动，请去掉该儿童后再提交",
            "the guardian has withdrawn consent: the child is not entered in group activities; leave the child out",
            "child_ids",
        )


def binding_spans(spans: list, withdrawal: Withdrawal | None) -> list:
    """The pairing spans (``compliance.PairingSpan``) that hold the child to rules: a volunteer's span
    has the withdrawal period cut out of it (split in two when consent was given again)."""
    if withdrawal is None:
        return spans
    out = []
    for s in spans:
        if not rests_on_consent(s.role):
            out.append(s)
            continue
        start, end = s.started_on, s.ended_on
        if start < withdrawal.withdrawn_on:  # the part before the withdrawal
            out.append(replace(s, ended_on=withdrawal.withdrawn_on if end is None else min(end, withdrawal.withdrawn_on)))
        if withdrawal.given_on is not None and (end is None or end > withdrawal.given_on):  # the part after
            out.append(replace(s, started_on=max(start, withdrawal.given_on)))
    return out
