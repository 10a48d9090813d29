"""The scope matrix (issue 9): every role x every endpoint of every service x own place / other place.

The endpoints come from each app's OpenAPI (paths and methods), so an endpoint added without a rule
here fails ``test_every_endpoint_has_a_rule``. One county is seeded through the real APIs, with the
four services running in this process (one start per service for the module): township A is the
caller's own place, township B (same county) the other. Narrow roles are scoped to township A (a
village of it for the village supervisor); a helper's own place is a child paired with them, an
agency's a case reported to its kind. What is outside one's area answers 404 (never saying it exists);
a role that may not use an endpoint at all, 403; a place named in a body or a query that is outside
one's area, 403 too (the caller named it, nothing is revealed).
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from sqlalchemy import text

from services.notifications.app import SPEC as NOTIFICATIONS
from services.registry.app import SPEC as REGISTRY
from services.reporting.app import SPEC as REPORTING
from services.visits.app import SPEC as VISITS
from shared.auth import Role, issue_token
from shared.clock import today_local
from shared.settings import Settings
from tests.conftest import TEST_SECRET, scalar
from tests.integration.registry_census.rosters import good, xlsx
from tests.support import child_payload, fresh_county, running_app, wait_until

OWN, OTHER = "own", "other"
ALLOW, REFUSE, HIDE, EMPTY = "2xx", "403", "404", "2xx, nothing in it"
TODAY = today_local()

OFFICES = {Role.admin, Role.county_office, Role.township, Role.village_supervisor, Role.school}
COUNTY_WIDE = {Role.admin, Role.county_office}  # township B is inside their area


@dataclass(frozen=True)
class Rule:
    """Who may use an endpoint, and what the other place answers to a caller whose area it is not."""

    roles: frozenset[Role]
    other: str = HIDE  # for a permitted role scoped to township A
    own: dict[Role, str] = field(default_factory=dict)  # exceptions to ALLOW in one's own place
    wide_other: str = ALLOW  # for the county office (the other place: inside its county or not)
    admin_other: str | None = None  # when not as wide_other (an admin's area is every county)
    always: dict[Role, str] = field(default_factory=dict)  # endpoints with no place in them

    def expect(self, role: Role, place: str) -> str:
        if role not in self.roles:
            return REFUSE
        if role in self.always:
            return self.always[role]
        if place == OWN:
            return self.own.get(role, ALLOW)
        if role is Role.admin and self.admin_other:
            return self.admin_other
        return self.wide_other if role in COUNTY_WIDE else self.other


def rule(*roles: Role, **kw) -> Rule:
    return Rule(frozenset(roles), **kw)


EVERYONE = tuple(Role)
OFFICE = tuple(OFFICES)
ADMIN = rule(Role.admin)
PUBLIC = rule(*EVERYONE, other=ALLOW)  # health, metrics, AsyncAPI: nothing about a child
ONE_COUNTY = dict(wide_other=REFUSE, admin_other=ALLOW)  # for county paths, the other place is another county


# --- the seeded county ---------------------------------------------------------------------------


class County:
    """The services, the tokens and the seeded records of the matrix's county."""

    def __init__(self, settings: Settings, clients: dict, engines: dict) -> None:
        self.settings, self.clients, self.engines = settings, clients, engines
        self.code = fresh_county()
        self.other_county = fresh_county()
        self.township = {OWN: self.code + "100", OTHER: self.code + "200"}
        self.village = {p: t + "201" for p, t in self.township.items()}
        self.kids: dict[str, str] = {}
        self.helpers: dict[str, str] = {}
        self.records: dict[str, str] = {}
        self.referrals: dict[str, str] = {}
        self.messages: dict[str, str] = {}
        self.imports: dict[str, str] = {}

    def auth(self, role: Role, place: str = OWN) -> dict[str, str]:
        """The role's token; narrow roles sit in township A (the village supervisor in its village)."""
        region = {Role.admin: "", Role.county_office: self.code, Role.village_supervisor: self.village[place]}.get(
            role, self.township[place])
        claims = {"agency": f"mz-{self.code}", "agency_kind": "civil_affairs"} if role is Role.agency else {}
        if role is Role.school:  # the school of the place's children (County.child)
            claims = {"school": f"school-{place}"}
        subject = f"helper-{place}-{self.code}" if role is Role.helper else f"{role.value}-{place}"
        token = issue_token(self.settings, role=role, subject=subject, region=region, ttl=timedelta(hours=1), **claims)
        return {"Authorization": f"Bearer {token}"}

    @property
    def admin(self) -> dict[str, str]:
        return self.auth(Role.admin)

    async def call(self, service: str, method: str, path: str, headers: dict, **kw):
        return await self.clients[service].request(method, path, headers=headers, **kw)

    async def ok(self, service: str, method: str, path: str, **kw) -> dict:
        r = await self.call(service, method, path, self.admin, **kw)
        assert r.status_code < 300, f"seeding {method} {path}: {r.status_code} {r.text}"
        return r.json() if r.content else {}

    async def child(self, place: str, *, in_visits: bool = False) -> str:
        """A fresh child of the place (registered through the registry); ``in_visits``: waited for there."""
        body = child_payload(village_code=self.village[place], school_id=f"school-{place}", name=f"矩阵{uuid.uuid4().hex[:6]}")
        child_id = (await self.ok("registry", "POST", "/api/v1/children", json=body))["id"]
        if in_visits:
            await wait_until(lambda: self._known("visits", "children", child_id), what="the child in visits")
        return child_id

    async def _known(self, service: str, table: str, child_id: str) -> bool:
        return await scalar(self.engines[service], f"SELECT count(*) FROM {table} WHERE child_id = :c",
                            c=uuid.UUID(child_id)) == 1

    async def helper(self, place: str, account: str | None = None) -> str:
        body = {"name": "帮扶人", "role": "caring_mother", "organisation": "县妇联", "region_code": self.township[place],
                "account": account}
        return (await self.ok("visits", "POST", "/api/v1/helpers", json=body))["id"]

    async def pairing(self, place: str) -> str:
        helper, kid = await self.helper(place), await self.child(place, in_visits=True)
        made = await self.ok("visits", "POST", "/api/v1/pairings", json={"helper_ids": [helper], "child_ids": [kid]})
        return made[0]["id"]

    async def referral(self, place: str, policy: str = "unguarded") -> str:
        kid = await self.child(place, in_visits=True)
        return (await self.ok("visits", "POST", "/api/v1/referrals", json={"child_id": kid, "policy": policy}))["id"]

    async def agreement(self, place: str) -> tuple[str, str]:
        kid = await self.child(place)
        made = await self.ok("registry", "POST", f"/api/v1/children/{kid}/agreements", json={
            "signed_on": TODAY.isoformat(),
            "valid_until": (TODAY + timedelta(days=300)).isoformat()})
        return kid, made["id"]

    async def seed(self) -> None:
        for place in (OWN, OTHER):
            self.kids[place] = await self.child(place, in_visits=True)
            self.helpers[place] = await self.helper(place, account=f"helper-{place}-{self.code}")
            await self.ok("visits", "POST", "/api/v1/pairings",
                          json={"helper_ids": [self.helpers[place]], "child_ids": [self.kids[place]]})
            self.records[place] = (await self.ok("visits", "POST", "/api/v1/records", json={
                "helper_id": self.helpers[place], "child_id": self.kids[place], "kind": "home_visit",
                "visited_on": TODAY.isoformat()}))["id"]
            self.referrals[place] = await self.referral(place)
            self.messages[place] = (await self.ok("notifications", "POST", "/api/v1/messages",
                                                  json=self.message(place)))["request_id"]
            r = await self.call("registry", "POST", "/api/v1/imports/census", self.auth(Role.village_supervisor, place),
                                files={"file": ("roster.xlsx", io.BytesIO(self.roster(place)))})
            assert r.status_code in (201, 202), r.text
            self.imports[place] = r.json()["id"]

    def roster(self, place: str) -> bytes:
        """A census roster of one child in the place's village (not the template's example row, whose village
        another test imports into the same database)."""
        return xlsx([good(0, self.village[place], id_number=None)])

    def message(self, place: str) -> dict:
        return {"kind": "absence_notice", "region_code": self.village[place], "child_id": self.kids.get(place),
                "recipients": [{"role": "guardian"}], "data": {}}


# --- what each case calls ------------------------------------------------------------------------

Call = Callable[[County, str], Awaitable[dict]]  # -> request kwargs: path, json, params, files


def at(path: str, **kw) -> Call:
    """The endpoint on the place's seeded records: {kid}, {helper}, {record}, {referral}, {message},
    {import}, {county}, {village}, {township} in ``path`` and in string values of ``json``/``params``."""

    async def make(c: County, place: str) -> dict:
        county = c.code if place == OWN else c.other_county
        names = {"kid": c.kids[place], "helper": c.helpers[place], "record": c.records[place],
                 "referral": c.referrals[place], "message": c.messages[place], "import": c.imports[place],
                 "county": county, "village": c.village[place], "township": c.township[place]}

        def fill(v):
            if isinstance(v, str):
                return v.format(**names)
            if isinstance(v, dict):
                return {k: fill(x) for k, x in v.items()}
            if isinstance(v, list):
                return [fill(x) for x in v]
            return v

        return {"path": fill(path), **{k: fill(v) for k, v in kw.items()}}

    return make


async def _fresh_child(c: County, place: str, tail: str, **kw) -> dict:
    return {"path": f"/api/v1/children/{await c.child(place)}{tail}", **kw}


def on_fresh_child(tail: str, **kw) -> Call:
    """The endpoint on a child registered for the case alone (the call changes or ends the archive)."""
    return lambda c, place: _fresh_child(c, place, tail, **kw)


async def _reopen(c: County, place: str) -> dict:
    kid = await c.child(place)
    await c.ok("registry", "POST", f"/api/v1/children/{kid}/close", json={"reason": "moved_away", "closed_on": TODAY.isoformat()})
    return {"path": f"/api/v1/children/{kid}/reopen"}


async def _merge(c: County, place: str) -> dict:
    return {"path": f"/api/v1/children/{await c.child(place)}/merge", "json": {"survivor_id": await c.child(place)}}


async def _agreement(c: County, place: str, action: str, body: dict) -> dict:
    kid, agreement = await c.agreement(place)
    return {"path": f"/api/v1/children/{kid}/agreements/{agreement}/{action}", "json": body}


async def _pair(c: County, place: str) -> dict:
    return {"path": "/api/v1/pairings", "json": {"helper_ids": [await c.helper(place)],
                                                  "child_ids": [await c.child(place, in_visits=True)]}}


async def _end_pairing(c: County, place: str) -> dict:
    return {"path": f"/api/v1/pairings/{await c.pairing(place)}/end", "json": {}}


async def _referral(c: County, place: str, tail: str, **kw) -> dict:
    return {"path": f"/api/v1/referrals/{await c.referral(place)}{tail}", **kw}


async def _open_referral(c: County, place: str) -> dict:
    return {"path": "/api/v1/referrals", "json": {"child_id": await c.child(place, in_visits=True), "policy": "unguarded"}}


async def _add_rule(c: County, place: str) -> dict:
    county = c.code if place == OWN else c.other_county
    return {"path": f"/api/v1/counties/{county}/rules", "json": {
        "code": f"matrix_{uuid.uuid4().hex[:8]}", "name": "矩阵", "roles": ["caring_mother"], "kinds": ["phone"],
        "count": 1, "window": "month"}}


async def _message(c: County, place: str) -> dict:
    return {"path": "/api/v1/messages", "json": c.message(place)}


async def _import(c: County, place: str) -> dict:
    return {"path": "/api/v1/imports/census", "files": {"file": ("roster.xlsx", io.BytesIO(c.roster(place)))}}


async def _transfer(c: County, place: str) -> dict:
    """To another village of the same township: inside the area of everyone who may transfer."""
    return await _fresh_child(c, place, "/transfer", json={"to_village_code": c.township[place] + "202", "effective_on": DAY})


async def _correction(c: County, place: str) -> dict:
    """A correction that changes something each time (an unchanged one is refused)."""
    return {"path": f"/api/v1/records/{c.records[place]}", "json": {"note": f"补充{uuid.uuid4().hex[:6]}", "reason": "补充说明"}}


async def _register(c: County, place: str) -> dict:
    """At the place's school: a school registers its own pupils (another school's: 403, see below)."""
    return {"path": "/api/v1/children", "json": child_payload(village_code=c.village[place], school_id=f"school-{place}")}


DAY = TODAY.isoformat()
# No such message: an agency's answer to it is not found; other roles may not answer at all.
AGENCY_ANSWER = rule(Role.agency, own={Role.agency: HIDE})
HELPER_OWN = {Role.helper: ALLOW}
# Agencies answer only a case reported to them: a helper, the registry and the figures are not theirs.
CASE_READERS = (*OFFICE, Role.agency)

# (service, METHOD, path) -> (rule, call)
MATRIX: dict[tuple[str, str, str], tuple[Rule, Call]] = {
    # registry: children's archives; read and written by the offices of their area
    ("registry", "POST", "/api/v1/children"): (rule(*OFFICE, other=REFUSE), _register),
    ("registry", "GET", "/api/v1/children"): (rule(*OFFICE, other=EMPTY), at("/api/v1/children", params={"region": "{village}"})),
    ("registry", "GET", "/api/v1/children/{child_id}"): (rule(*OFFICE), at("/api/v1/children/{kid}")),
    ("registry", "PATCH", "/api/v1/children/{child_id}"): (rule(*OFFICE), at("/api/v1/children/{kid}", json={"class_name": "四年级一班"})),
    ("registry", "POST", "/api/v1/children/{child_id}/agreements"): (rule(*OFFICE), on_fresh_child("/agreements", json={
        "signed_on": DAY,
        "valid_until": (TODAY + timedelta(days=300)).isoformat()})),
    ("registry", "GET", "/api/v1/children/{child_id}/agreements"): (rule(*OFFICE), at("/api/v1/children/{kid}/agreements")),
    ("registry", "POST", "/api/v1/children/{child_id}/agreements/{agreement_id}/renew"): (rule(*OFFICE), lambda c, p: _agreement(c, p, "renew", {"valid_until": (TODAY + timedelta(days=600)).isoformat()})),
    ("registry", "POST", "/api/v1/children/{child_id}/agreements/{agreement_id}/revoke"): (rule(*OFFICE), lambda c, p: _agreement(c, p, "revoke", {"revoked_on": DAY})),
    ("registry", "POST", "/api/v1/children/{child_id}/close"): (rule(*OFFICE), on_fresh_child(
        "/close", json={"reason": "moved_away", "closed_on": DAY})),
    ("registry", "POST", "/api/v1/children/{child_id}/reopen"): (rule(*OFFICE), _reopen),
    ("registry", "POST", "/api/v1/children/{child_id}/transfer"): (rule(*OFFICE), _transfer),
    ("registry", "POST", "/api/v1/children/{child_id}/merge"): (ADMIN, _merge),
    ("registry", "POST", "/api/v1/children/{child_id}/absences"): (rule(*OFFICE), on_fresh_child("/absences", json={
        "from_date": DAY, "to_date": DAY, "school_days": 1, "excused": True})),
    ("registry", "GET", "/api/v1/children/{child_id}/absences"): (rule(*OFFICE), at("/api/v1/children/{kid}/absences")),
    ("registry", "POST", "/api/v1/children/{child_id}/school-return"): (rule(*OFFICE), at(
        "/api/v1/children/{kid}/school-return", json={"returned_on": DAY})),
    ("registry", "PUT", "/api/v1/children/{child_id}/enrolment"): (rule(*OFFICE), at(
        "/api/v1/children/{kid}/enrolment", json={"status": "in_school", "effective_on": DAY})),
    ("registry", "POST", "/api/v1/children/{child_id}/growth-notes"): (rule(*OFFICE), at(
        "/api/v1/children/{kid}/growth-notes", json={"noted_on": DAY, "topic": "study", "text": "进步"})),
    ("registry", "GET", "/api/v1/children/{child_id}/growth-notes"): (rule(*OFFICE), at("/api/v1/children/{kid}/growth-notes")),
    ("registry", "GET", "/api/v1/duplicates"): (rule(*OFFICE, other=ALLOW), at("/api/v1/duplicates")),
    ("registry", "GET", "/api/v1/imports/census/template"): (rule(*OFFICE, other=ALLOW), at("/api/v1/imports/census/template")),
    ("registry", "POST", "/api/v1/imports/census"): (rule(*OFFICE, other=ALLOW), _import),
    ("registry", "GET", "/api/v1/imports/{import_id}"): (rule(*OFFICE), at("/api/v1/imports/{import}")),
    ("registry", "GET", "/api/v1/imports/{import_id}/report.xlsx"): (rule(*OFFICE), at("/api/v1/imports/{import}/report.xlsx")),
    ("registry", "PUT", "/api/v1/children/{child_id}/consent"): (rule(*OFFICE), at(
        "/api/v1/children/{kid}/consent", json={"consent": "given"})),
    ("registry", "GET", "/api/v1/children/{child_id}/id-number"): (ADMIN, at("/api/v1/children/{kid}/id-number")),
    # visits: helpers, pairings, rules, records; a helper reaches their own paired children only
    ("visits", "POST", "/api/v1/helpers"): (rule(*OFFICE, other=REFUSE), at("/api/v1/helpers", json={
        "name": "志愿者", "role": "volunteer_tutor", "organisation": "团县委", "region_code": "{village}"})),
    # no place in it: a helper's own login finds them, an office's login is no helper's
    ("visits", "GET", "/api/v1/helpers/me"): (rule(*OFFICE, Role.helper, always={Role.helper: ALLOW} | {r: HIDE for r in OFFICE}),
                                             at("/api/v1/helpers/me")),
    ("visits", "POST", "/api/v1/pairings"): (rule(*OFFICE), _pair),
    ("visits", "POST", "/api/v1/pairings/{pairing_id}/end"): (rule(*OFFICE), _end_pairing),
    ("visits", "GET", "/api/v1/pairings/to-repair"): (rule(*OFFICE, other=ALLOW), at("/api/v1/pairings/to-repair")),
    ("visits", "GET", "/api/v1/counties/{county}/rules"): (rule(*OFFICE, other=REFUSE, **ONE_COUNTY), at("/api/v1/counties/{county}/rules")),
    ("visits", "POST", "/api/v1/counties/{county}/rules"): (rule(*COUNTY_WIDE, **ONE_COUNTY), _add_rule),
    ("visits", "PATCH", "/api/v1/counties/{county}/rules/{code}"): (rule(*COUNTY_WIDE, **ONE_COUNTY), at(
        "/api/v1/counties/{county}/rules/companion_monthly_visits", json={"count": 2})),
    ("visits", "PUT", "/api/v1/counties/{county}/terms"): (rule(*COUNTY_WIDE, **ONE_COUNTY), at(
        "/api/v1/counties/{county}/terms", json={"terms": []})),
    ("visits", "POST", "/api/v1/records"): (rule(*OFFICE, Role.helper), at("/api/v1/records", json={
        "helper_id": "{helper}", "child_id": "{kid}", "kind": "phone", "visited_on": DAY})),
    ("visits", "GET", "/api/v1/records/{record_id}"): (rule(*OFFICE, Role.helper), at("/api/v1/records/{record}")),
    ("visits", "PATCH", "/api/v1/records/{record_id}"): (rule(*OFFICE, Role.helper), _correction),
    ("visits", "POST", "/api/v1/activities"): (rule(*OFFICE, Role.helper), at("/api/v1/activities", json={
        "kind": "festival", "held_on": DAY, "place": "留守儿童之家", "organiser": "乡政府", "region_code": "{village}",
        "child_ids": ["{kid}"]})),
    ("visits", "GET", "/api/v1/children/{child_id}/compliance"): (rule(*OFFICE), at("/api/v1/children/{kid}/compliance")),
    ("visits", "GET", "/api/v1/compliance"): (rule(*OFFICE, other=ALLOW), at("/api/v1/compliance")),
    ("visits", "GET", "/api/v1/helpers/{helper_id}/worklist"): (rule(*OFFICE, Role.helper), at("/api/v1/helpers/{helper}/worklist")),
    ("visits", "GET", "/api/v1/overview"): (rule(Role.admin, Role.county_office, Role.township, Role.village_supervisor,
                                                 other=REFUSE), at("/api/v1/overview", params={"region": "{village}"})),
    ("visits", "GET", "/api/v1/children/{child_id}/score"): (rule(*OFFICE), at("/api/v1/children/{kid}/score")),
    ("visits", "GET", "/api/v1/helpers/{helper_id}/score"): (rule(*OFFICE, Role.helper), at("/api/v1/helpers/{helper}/score")),
    # visits: referrals; an agency answers only open cases reported to its kind in its area
    ("visits", "GET", "/api/v1/referrals"): (rule(*OFFICE, other=ALLOW), at("/api/v1/referrals")),
    ("visits", "POST", "/api/v1/referrals"): (rule(*OFFICE), _open_referral),
    ("visits", "GET", "/api/v1/referrals/{referral_id}"): (rule(*CASE_READERS), at("/api/v1/referrals/{referral}")),
    ("visits", "GET", "/api/v1/referrals/{referral_id}/report"): (rule(*CASE_READERS, own={r: HIDE for r in CASE_READERS}, wide_other=HIDE),
                                                                  at("/api/v1/referrals/{referral}/report")),
    ("visits", "POST", "/api/v1/referrals/{referral_id}/acknowledgement"): (rule(*COUNTY_WIDE, Role.agency), lambda c, p: _referral(c, p, "/acknowledgement")),
    ("visits", "POST", "/api/v1/referrals/{referral_id}/outcome"): (rule(*COUNTY_WIDE, Role.agency), lambda c, p: _referral(c, p, "/outcome", json={"outcome": "resolved"})),
    ("visits", "PUT", "/api/v1/referrals/{referral_id}/deadline"): (rule(*COUNTY_WIDE), at(
        "/api/v1/referrals/{referral}/deadline", json={"due_at": (TODAY + timedelta(days=30)).isoformat() + "T00:00:00+08:00",
                                                       "reason": "节假日顺延"})),
    ("visits", "PUT", "/api/v1/calendars/{county}"): (rule(*COUNTY_WIDE, **ONE_COUNTY), at(
        "/api/v1/calendars/{county}", json={"since": DAY, "until": DAY})),
    ("visits", "GET", "/api/v1/referral-policies/{county}"): (rule(*OFFICE, other=REFUSE, **ONE_COUNTY),
                                                              at("/api/v1/referral-policies/{county}")),
    ("visits", "PUT", "/api/v1/referral-policies/{county}/{policy}"): (rule(*COUNTY_WIDE, **ONE_COUNTY), at(
        "/api/v1/referral-policies/{county}/unguarded", json={})),
    # notifications
    ("notifications", "POST", "/api/v1/messages"): (rule(*OFFICE, other=REFUSE), _message),
    ("notifications", "GET", "/api/v1/messages/{request_id}"): (rule(*OFFICE), at("/api/v1/messages/{message}")),
    ("notifications", "GET", "/api/v1/inbox"): (rule(*EVERYONE, other=ALLOW), at("/api/v1/inbox")),
    # another's delivery (or none): not found for everyone
    ("notifications", "POST", "/api/v1/inbox/{delivery_id}/read"): (rule(*EVERYONE, own={r: HIDE for r in EVERYONE},
                                                                         other=HIDE, wide_other=HIDE),
                                                                    at(f"/api/v1/inbox/{uuid.uuid4()}/read")),
    ("notifications", "PUT", "/api/v1/users/{user_id}"): (rule(*COUNTY_WIDE), at(
        "/api/v1/users/township-{township}", json={"channels": ["inbox"]})),
    ("notifications", "POST", "/api/v1/agency/acknowledgements"): (AGENCY_ANSWER, at("/api/v1/agency/acknowledgements", json={"message_id": str(uuid.uuid4()), "received_at": f"{DAY}T08:00:00+08:00"})),
    ("notifications", "POST", "/api/v1/agency/answers"): (AGENCY_ANSWER, at("/api/v1/agency/answers", json={
        "message_id": str(uuid.uuid4()), "outcome": "resolved", "decided_at": f"{DAY}T08:00:00+08:00"})),
    ("notifications", "GET", "/asyncapi/agency"): (PUBLIC, at("/asyncapi/agency")),
    # reporting: figures of one's area, never a name; not for helpers and agencies
    ("reporting", "GET", "/api/v1/figures/children"): (rule(*OFFICE, other=EMPTY), at("/api/v1/figures/children", params={"region": "{village}"})),
    ("reporting", "GET", "/api/v1/figures"): (rule(*OFFICE, other=REFUSE), at("/api/v1/figures", params={"region": "{village}"})),
    ("reporting", "GET", "/api/v1/figures/places"): (rule(*OFFICE, other=REFUSE), at("/api/v1/figures/places", params={"region": "{village}"})),
    ("reporting", "GET", "/api/v1/figures/trend"): (rule(*OFFICE, other=REFUSE), at("/api/v1/figures/trend", params={"region": "{village}"})),
    ("reporting", "GET", "/api/v1/figures/drilldown"): (rule(*OFFICE, other=REFUSE), at(
        "/api/v1/figures/drilldown", params={"region": "{village}", "figure": "children"})),
    ("reporting", "GET", "/api/v1/figures/helpers"): (rule(*COUNTY_WIDE), at("/api/v1/figures/helpers", params={"helper_id": "{helper}"})),
    ("reporting", "PUT", "/api/v1/reference/population"): (rule(*COUNTY_WIDE), at(
        "/api/v1/reference/population", json=[{"place": "{village}", "children": 100}])),
    ("reporting", "GET", "/api/v1/reports/quarterly"): (rule(*OFFICE, other=REFUSE), at(
        "/api/v1/reports/quarterly", params={"region": "{village}"})),
}
for _service in ("registry", "visits", "notifications", "reporting"):
    MATRIX[(_service, "GET", "/api/v1/audit")] = (ADMIN, at("/api/v1/audit"))
    for _path in ("/health", "/metrics", "/asyncapi"):
        MATRIX[(_service, "GET", _path)] = (PUBLIC, at(_path))


SPECS = {"registry": REGISTRY, "visits": VISITS, "notifications": NOTIFICATIONS, "reporting": REPORTING}
CASES = [(key, role, place) for key in MATRIX for role in Role for place in (OWN, OTHER)]


@pytest.fixture(scope="module")
async def county(infra, database_urls, engines_module):
    settings = Settings(env="test", jwt_secret=TEST_SECRET, redis_url=infra.redis_url,
                        stream_namespace=f"t{uuid.uuid4().hex[:10]}.", claim_min_idle_ms=500, claim_interval_ms=100,
                        consumer_block_ms=100, outbox_poll_ms=20,
                        **{f"{s}_database_url": url for s, url in database_urls.items()})
    async with AsyncExitStack() as stack:
        apps, clients = {}, {}
        for name, spec in SPECS.items():
            apps[name], clients[name] = await stack.enter_async_context(running_app(spec, settings))
        c = County(settings, clients, engines_module)
        c.apps = apps
        await c.seed()
        yield c


@pytest.fixture(scope="module")
async def engines_module(database_urls):
    from shared.db import make_engine

    made = {s: make_engine(url, pool_size=2, application_name="shouhu-tests") for s, url in database_urls.items()}
    yield made
    for e in made.values():
        await e.dispose()


def test_every_endpoint_has_a_rule():
    """A new endpoint without a row here fails: its access must be decided, not forgotten."""
    from shared.service import create_app

    settings = Settings(env="test", jwt_secret=TEST_SECRET)
    declared = {(name, method.upper(), path) for name, spec in SPECS.items()
                for path, ops in create_app(spec, settings).openapi()["paths"].items() for method in ops}
    assert declared - MATRIX.keys() == set(), "endpoints without a rule in the scope matrix"
    assert MATRIX.keys() - declared == set(), "rules for endpoints that no longer exist"


@pytest.mark.parametrize(("key", "role", "place"), CASES, ids=[f"{k[0]}:{k[1]} {k[2]}:{r.value}:{p}" for k, r, p in CASES])
async def test_scope(county: County, key, role: Role, place: str):
    service, method, _ = key
    rule_, make = MATRIX[key]
    expected = rule_.expect(role, place)
    kw = await make(county, place)
    path = kw.pop("path")
    r = await county.call(service, method, path, county.auth(role), **kw)
    got = r.status_code
    if expected in (ALLOW, EMPTY):
        assert 200 <= got < 300, f"{role.value} {method} {path} ({place}): expected {expected}, got {got} {r.text[:300]}"
        if expected == EMPTY:
            body = r.json()
            assert not (body.get("items") if isinstance(body, dict) and "items" in body else body), body
    else:
        assert got == int(expected), f"{role.value} {method} {path} ({place}): expected {expected}, got {got} {r.text[:300]}"


@pytest.mark.parametrize("kind", ["public_security", "education_bureau", None])
async def test_an_agency_of_another_kind_in_the_same_township_finds_no_case(county: County, kind):
    """The matrix's agency is civil affairs, to which its cases (无人监护) go; another kind of agency,
    or one whose token names no kind, in the same township reads and answers none of them."""
    token = issue_token(county.settings, role=Role.agency, subject=f"agency-{kind}", region=county.township[OWN],
                        agency=f"x-{county.code}", agency_kind=kind, ttl=timedelta(hours=1))
    headers = {"Authorization": f"Bearer {token}"}
    case = f"/api/v1/referrals/{county.referrals[OWN]}"
    for method, path, kw in (("GET", case, {}), ("GET", f"{case}/report", {}), ("POST", f"{case}/acknowledgement", {}),
                             ("POST", f"{case}/outcome", {"json": {"outcome": "resolved"}})):
        r = await county.call("visits", method, path, headers, **kw)
        assert r.status_code == 404, f"{kind} {method} {path}: {r.status_code} {r.text[:200]}"
    assert (await county.call("visits", "GET", case, county.auth(Role.agency))).status_code == 200  # civil affairs does


@pytest.mark.parametrize("school", ["school-elsewhere", None])
async def test_a_school_reaches_only_its_own_pupils(county: County, school):
    """The matrix's school token carries the school of township A's children (``school`` claim). Another
    school of the same township, or a school token without the claim, finds none of them: their archives,
    records and cases are not found (404), lists are empty, and it may not register a child at another
    school (403 naming school_id)."""
    token = issue_token(county.settings, role=Role.school, subject=f"school-{school}", region=county.township[OWN],
                        school=school, ttl=timedelta(hours=1))
    headers = {"Authorization": f"Bearer {token}"}
    kid = county.kids[OWN]
    for service, method, path, kw in (
        ("registry", "GET", f"/api/v1/children/{kid}", {}),
        ("registry", "PATCH", f"/api/v1/children/{kid}", {"json": {"class_name": "四年级二班"}}),
        ("registry", "GET", f"/api/v1/children/{kid}/growth-notes", {}),
        ("registry", "POST", f"/api/v1/children/{kid}/school-return", {"json": {"returned_on": DAY}}),
        ("visits", "GET", f"/api/v1/children/{kid}/compliance", {}),
        ("visits", "GET", f"/api/v1/records/{county.records[OWN]}", {}),
        ("visits", "GET", f"/api/v1/referrals/{county.referrals[OWN]}", {}),
        ("visits", "POST", "/api/v1/referrals", {"json": {"child_id": kid, "policy": "hardship"}}),
    ):
        r = await county.call(service, method, path, headers, **kw)
        assert r.status_code == 404, f"{school} {method} {path}: {r.status_code} {r.text[:200]}"
    for service, path in (("registry", "/api/v1/children"), ("visits", "/api/v1/referrals")):
        r = await county.call(service, "GET", path, headers)
        assert r.status_code == 200 and r.json()["items"] == [], f"{school} {path}: {r.text[:200]}"
    r = await county.call("registry", "POST", "/api/v1/children", headers,
                          json=child_payload(village_code=county.village[OWN], school_id=f"school-{OWN}"))
    assert r.status_code == 403 and "school_id" in r.json()["detail"]["message_en"], r.text
    mine = await county.call("registry", "GET", f"/api/v1/children/{kid}", county.auth(Role.school))
    assert mine.status_code == 200  # the matrix's own school does
