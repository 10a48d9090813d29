"""A demo county (演示县): a realistic synthetic county loaded through the services' public HTTP APIs.

``plan_county`` draws the whole county from a seed (townships, villages with real-shaped division
codes, schools and classes, left-behind children with parents and guardians, agreements, helpers,
pairings, a month of visit records, absences and dropouts at different stages); it is pure, so the
same seed on the same day gives the same county. ``load`` sends it with a few concurrent workers,
as the county's offices would through their forms: the registry publishes the events and visits,
notifications and reporting build their stores from them. A county that already holds children is
left alone, so running the demo twice does not fail.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import httpx

from shared.clock import today_local

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛段雷侯龙史陶黎贺顾毛郝龚邵万钱严武戴孔汤"
GIVEN = "子涵欣怡梓轩浩宇一诺雨桐思远俊杰佳琪嘉豪明轩若曦紫萱晨阳博文诗涵天佑家乐雅琴志强建华秀英桂兰国庆海燕春梅文静"
PLACE = "安丰和平兴福宜瓦岗宜沟菜园古贤任固五陵韩庄伏道白营城关东西南北河阳柳林"
WORKPLACES = ("广东东莞", "广东深圳", "浙江义乌", "江苏苏州", "上海", "北京", "福建晋江", "河南郑州")
GRADES = "一二三四五六"
# Shares of the county drawn by the plan, from the proportions in the county documents (domain.md).
SHARE_ONE_PARENT_INCAPABLE = 0.15
SHARE_NO_GUARDIAN = 0.02
SHARE_AGREEMENT = 0.7  # of the children with a capable guardian who is not a parent
SHARE_CARING_MOTHER = 0.3
SHARE_TUTOR = 0.1
SHARE_ABSENT, SHARE_DROPPED_OUT, SHARE_RETURNED = 0.006, 0.003, 0.002
CHILDREN_PER_MOTHER, CHILDREN_PER_TUTOR = 6, 10
CASES = ("persuasion", "reported", "closed")  # the 劝返 cases every demo county shows, one of each


class DemoError(RuntimeError):
    """A request of the demo was refused; the message is the service's own (Chinese and English)."""


@dataclass
class ChildPlan:
    key: int
    body: dict[str, Any]
    agreement: dict[str, str] | None = None
    school_stage: str | None = None  # absent 缺课, dropped_out 辍学, returned 返校
    case: str | None = None  # the 劝返 case its absences open: persuasion 劝返中, reported 两次拒绝后书面报告, closed 已返校结案


@dataclass
class HelperPlan:
    key: str  # also the helper's login (token subject) and notifications user id
    body: dict[str, Any]
    children: list[int] = field(default_factory=list)
    # (kind, days ago) of each contact recorded this month, per child key
    contacts: dict[int, list[tuple[str, int]]] = field(default_factory=dict)


@dataclass
class CountyPlan:
    county: str
    today: date
    townships: dict[str, str]  # code -> name
    villages: dict[str, str]
    schools: dict[str, str]  # id -> name
    children: list[ChildPlan]
    helpers: list[HelperPlan]
    terms: list[dict[str, str]]
    paired_from: date

    def summary(self) -> dict[str, int]:
        return {
            "townships": len(self.townships), "villages": len(self.villages), "schools": len(self.schools),
            "children": len(self.children), "agreements": sum(c.agreement is not None for c in self.children),
            "helpers": len(self.helpers), "pairings": sum(len(h.children) for h in self.helpers),
            "visit_records": sum(len(v) for h in self.helpers for v in h.contacts.values()),
            **{stage: sum(c.school_stage == stage for c in self.children) for stage in ("absent", "dropped_out", "returned")},
            **{f"cases_{case}": sum(c.case == case for c in self.children) for case in CASES},
        }


def _name(rng: random.Random, surname: str | None = None) -> str:
    return (surname or rng.choice(SURNAMES)) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))


def _phone(rng: random.Random) -> str:
    return f"1{rng.choice('3578')}{rng.randrange(10**9):09d}"


def _terms(today: date) -> list[dict[str, str]]:
    """The school year around ``today``: autumn term Sep 1 - Jan 20, spring term Feb 20 - Jul 10."""
    autumn = today.year if today.month >= 8 else today.year - 1
    spans = [(date(autumn, 9, 1), date(autumn + 1, 1, 20)), (date(autumn + 1, 2, 20), date(autumn + 1, 7, 10))]
    return [{"starts_on": a.isoformat(), "ends_on": b.isoformat()} for a, b in spans]


def plan_county(county: str, children: int, seed: int, today: date | None = None) -> CountyPlan:
    """The whole demo county, drawn from ``seed`` (no I/O)."""
    rng, today = random.Random(f"{county}:{seed}"), today or today_local()
    n_townships = max(2, min(20, children // 1000))
    townships = {}
    for t in range(n_townships):
        # 100-199 towns (镇), 200-299 townships (乡): the shape of real township codes.
        suffix, kind = (f"{100 + t:03d}", "镇") if t < n_townships * 2 // 3 else (f"{200 + t:03d}", "乡")
        townships[county + suffix] = rng.choice(PLACE) + rng.choice(PLACE) + kind
    per_township = max(1, children // n_townships)
    villages, schools, places = {}, {}, []
    for code, name in townships.items():
        # 001-0xx communities (社区) at the township seat, 200-2xx administrative villages (村).
        n_villages = max(2, min(30, per_township // 45))
        for v in range(n_villages):
            vcode = code + (f"{1 + v:03d}" if v < 2 else f"{200 + v:03d}")
            villages[vcode] = rng.choice(PLACE) + rng.choice(PLACE) + ("社区" if v < 2 else "村")
        primaries = [f"{code}-P{k}" for k in range(1, max(1, n_villages // 5) + 1)]
        middle = f"{code}-M1"
        for k, sid in enumerate(primaries, 1):
            schools[sid] = f"{name}第{GRADES[min(k, 6) - 1]}小学"
        schools[middle] = f"{name}初级中学"
        places.append((code, [c for c in villages if c.startswith(code)], primaries, middle))

    plans: list[ChildPlan] = []
    for key in range(children):
        township, vcodes, primaries, middle = places[key % len(places)]
        age = rng.randint(3, 15)
        birth = today - timedelta(days=365 * age + rng.randrange(365))
        if age < 6:
            school, class_name = None, None  # kindergarten age: no school on record
        else:
            grade, school = (age - 5, rng.choice(primaries)) if age < 12 else (age - 11, middle)
            class_name = f"{GRADES[min(grade, 6) - 1]}年级{rng.randint(1, 3)}班"
        surname = rng.choice(SURNAMES)
        one_incapable = rng.random() < SHARE_ONE_PARENT_INCAPABLE
        father = {"name": _name(rng, surname), "status": "migrant_worker", "work_place": rng.choice(WORKPLACES),
                  "phone": _phone(rng)}
        mother = {"name": _name(rng), "status": "incapable" if one_incapable else "migrant_worker"}
        if not one_incapable:
            mother |= {"work_place": rng.choice(WORKPLACES), "phone": _phone(rng)}
        risks = [r for r, share in (("dibao_family", 0.05), ("disabled", 0.01)) if rng.random() < share]
        guardian = None
        if rng.random() >= SHARE_NO_GUARDIAN:
            relationship = rng.choices(("grandparent", "relative", "sibling"), (0.8, 0.15, 0.05))[0]
            guardian = {"name": _name(rng, surname if relationship == "grandparent" else None), "relationship": relationship,
                        "capacity": rng.choices(("full", "limited"), (0.4, 0.6))[0], "phone": _phone(rng)}
        else:
            risks.append("no_guardian")
        body = {
            "name": _name(rng, surname), "gender": rng.choice(("male", "female")), "birth_date": birth.isoformat(),
            "hukou_status": "registered", "village_code": rng.choice(vcodes), "school_id": school, "class_name": class_name,
            "left_behind_type": "one_out_other_incapable" if one_incapable else "both_parents_out",
            "father": father, "mother": mother, "guardian": guardian, "risk_categories": sorted(risks),
        }
        child = ChildPlan(key, body)
        if guardian and rng.random() < SHARE_AGREEMENT:
            signed = today - timedelta(days=rng.randint(1, 330))
            child.agreement = {"signed_on": signed.isoformat(), "valid_until": (signed + timedelta(days=365)).isoformat()}
        if school:
            draw = rng.random()
            for stage, share in (("absent", SHARE_ABSENT), ("dropped_out", SHARE_DROPPED_OUT), ("returned", SHARE_RETURNED)):
                if draw < share:
                    child.school_stage = stage
                    break
                draw -= share
        plans.append(child)

    _cases(plans)
    helpers = _helpers(rng, county, townships, villages, plans)
    return CountyPlan(county, today, townships, villages, schools, plans, helpers, _terms(today),
                      paired_from=today - timedelta(days=40))


def _cases(children: list[ChildPlan]) -> None:
    """Every kind of case in even a small county: a 劝返 case at each stage (its absences open it), and a
    child with no guardian (无人监护, a case of its own)."""
    pupils = [c for c in children if c.body["school_id"] and c.school_stage in (None, "absent")]
    for child, case in zip(pupils, CASES):
        child.school_stage, child.case = "absent", case
    if all(c.body["guardian"] for c in children):
        unguarded = children[-1]
        unguarded.body |= {"guardian": None, "risk_categories": sorted({*unguarded.body["risk_categories"], "no_guardian"})}
        unguarded.agreement = None


def _helpers(rng: random.Random, county: str, townships: dict, villages: dict, children: list[ChildPlan]) -> list[HelperPlan]:
    """班主任 for every class with left-behind pupils, 爱心妈妈 and 爱心辅导员 for some children, a 儿童福利督导员
    per village; each with the contacts of the month, some short of what the rules ask (逾期 and 待完成)."""
    helpers: list[HelperPlan] = []

    def helper(key: str, role: str, organisation: str, region: str, **extra) -> HelperPlan:
        h = HelperPlan(key, {"name": _name(rng), "role": role, "organisation": organisation, "region_code": region,
                             "phone": _phone(rng), "account": key, **extra})
        helpers.append(h)
        return h

    classes: dict[tuple[str, str], HelperPlan] = {}
    for c in children:
        if c.body["school_id"]:
            where = (c.body["school_id"], c.body["class_name"])
            if where not in classes:
                classes[where] = helper(f"demo-{county}-t{len(classes)}", "class_teacher", "学校", c.body["village_code"][:9],
                                        school_id=where[0], class_name=where[1])
            teacher = classes[where]
            teacher.children.append(c.key)
            # Visits pairs a class teacher with their class itself, from today: this month's talk is today's.
            if rng.random() < 0.85:
                teacher.contacts[c.key] = [("talk", 0)]
    by_village: dict[str, list[ChildPlan]] = {}
    for c in children:
        by_village.setdefault(c.body["village_code"], []).append(c)
    for vcode, kids in by_village.items():
        helper(f"demo-{county}-s{vcode}", "village_supervisor", "村委会", vcode)
        for role, share, per, org in (("caring_mother", SHARE_CARING_MOTHER, CHILDREN_PER_MOTHER, "妇联"),
                                      ("volunteer_tutor", SHARE_TUTOR, CHILDREN_PER_TUTOR, "团委")):
            chosen = [c for c in kids if rng.random() < share]
            for i in range(0, len(chosen), per):
                h = helper(f"demo-{county}-{role[0]}{vcode}-{i // per}", role, org, vcode)
                for c in chosen[i:i + per]:
                    h.children.append(c.key)
                    visits = rng.choices((0, 1, 2, 3), (0.15, 0.3, 0.45, 0.1))[0]
                    h.contacts[c.key] = [("home_visit", rng.randint(1, 28)) for _ in range(visits)] + (
                        [("parent_contact", rng.randint(1, 28))] if rng.random() < 0.6 else [])
    return helpers


# --- loading through the APIs ---------------------------------------------------------------------


async def _send(client: httpx.AsyncClient, method: str, url: str, body: Any = None, *, ok: Iterable[int] = (200, 201, 204)) -> Any:
    """One request, tried again on a dropped connection or a 503; a refusal raises with the service's words."""
    for attempt in range(4):
        try:
            r = await client.request(method, url, json=body)
            while r.status_code == 429:  # the services' per-user rate limit: the demo waits as it is told
                await asyncio.sleep(float(r.headers.get("retry-after", "1")))
                r = await client.request(method, url, json=body)
        except httpx.TransportError:
            if attempt == 3:
                raise
            await asyncio.sleep(0.5 * 2**attempt)  # backing off a busy service, not waiting for a deadline
            continue
        if r.status_code == 503 and attempt < 3:
            await asyncio.sleep(0.5 * 2**attempt)
            continue
        if r.status_code not in ok:
            raise DemoError(f"{method} {client.base_url}{url} -> {r.status_code}: {r.text[:500]}")
        return r.json() if r.content else None
    return None


async def _each(items: list, work: Callable[[Any], Awaitable[None]], workers: int, advance: Callable[[int], None]) -> None:
    """``work`` on every item, ``workers`` at a time; the first failure stops the rest."""
    queue: asyncio.Queue = asyncio.Queue()
    for item in items:
        queue.put_nowait(item)

    async def worker() -> None:
        while not queue.empty():
            await work(queue.get_nowait())
            advance(1)

    async with asyncio.TaskGroup() as group:
        for _ in range(min(workers, len(items))):
            group.create_task(worker())


Step = Callable[[str, int], Callable[[int], None]]  # (description, total) -> advance(n)


async def existing_children(registry: httpx.AsyncClient, county: str) -> int:
    page = await _send(registry, "GET", f"/api/v1/children?region={county}&page_size=1&include_closed=true")
    return page["total"]


async def load(plan: CountyPlan, clients: dict[str, httpx.AsyncClient], *, workers: int = 8,
               step: Step = lambda _d, _t: lambda _n: None, visits_timeout: float = 900,
               office: dict[str, str] | None = None) -> dict[str, int]:
    """Send ``plan`` to the services (``clients`` by service name, authorised as an admin); returns what was created.
    ``office``: the headers of the county office's login (county_office), which closes the returned case.
    A county that holds children already is left as it is (the result then says ``already_loaded``)."""
    registry, visits, notifications = clients["registry"], clients["visits"], clients["notifications"]
    if (held := await existing_children(registry, plan.county)) > 0:
        return {"already_loaded": held}
    await _send(visits, "PUT", f"/api/v1/counties/{plan.county}/terms", {"terms": plan.terms})
    ids: dict[int, str] = {}

    async def register(c: ChildPlan) -> None:
        ids[c.key] = (await _send(registry, "POST", "/api/v1/children", c.body))["id"]
        base, today = f"/api/v1/children/{ids[c.key]}", plan.today
        if c.agreement:
            await _send(registry, "POST", f"{base}/agreements", c.agreement)
        if c.school_stage:
            # An unexcused absence (无故旷课); then 辍学登记 a week on; then, for some, 返校.
            start = today - timedelta(days=21)
            await _send(registry, "POST", f"{base}/absences", {
                "from_date": start.isoformat(), "to_date": (start + timedelta(days=6)).isoformat(), "school_days": 5,
                "excused": False, "reason_code": "unknown"})
        if c.school_stage in ("dropped_out", "returned"):
            await _send(registry, "PUT", f"{base}/enrolment",
                        {"status": "dropped_out", "effective_on": (today - timedelta(days=14)).isoformat()})
        if c.school_stage == "returned":
            await _send(registry, "POST", f"{base}/school-return", {"returned_on": (today - timedelta(days=3)).isoformat()})

    await _each(plan.children, register, workers, step("登记儿童 children", len(plan.children)))

    helper_ids: dict[str, str] = {}

    async def add_helper(h: HelperPlan) -> None:
        helper_ids[h.key] = (await _send(visits, "POST", "/api/v1/helpers", h.body))["id"]
        await _send(notifications, "PUT", f"/api/v1/users/{h.key}", {"phone": h.body["phone"], "channels": ["inbox", "sms"]})

    await _each(plan.helpers, add_helper, workers, step("帮扶人 helpers", len(plan.helpers)))
    await _visits_caught_up(visits, plan.county, len(plan.children), step("走访服务同步 visits catching up",
                                                                             len(plan.children)), visits_timeout)

    paired = [h for h in plan.helpers if h.children and h.body["role"] != "class_teacher"]  # teachers: by visits

    async def pair(h: HelperPlan) -> None:
        for i in range(0, len(h.children), 500):  # the API's limit per pairing request
            await _send(visits, "POST", "/api/v1/pairings", {
                "helper_ids": [helper_ids[h.key]], "child_ids": [ids[k] for k in h.children[i:i + 500]],
                "started_on": plan.paired_from.isoformat()})

    await _each(paired, pair, workers, step("结对 pairings", len(paired)))
    records = [(h, key, kind, ago) for h in plan.helpers for key, contacts in h.contacts.items() for kind, ago in contacts]

    async def record(item) -> None:
        h, key, kind, ago = item
        await _send(visits, "POST", "/api/v1/records", {
            "helper_id": helper_ids[h.key], "child_id": ids[key], "kind": kind,
            "visited_on": (plan.today - timedelta(days=ago)).isoformat(),
            "observations": [{"area": "study", "level": "good"}, {"area": "life", "level": "fair"}]})

    await _each(records, record, workers, step("走访记录 visit records", len(records)))
    teachers = {(h.body["school_id"], h.body["class_name"]): helper_ids[h.key] for h in plan.helpers if h.body["role"] == "class_teacher"}
    cases = [c for c in plan.children if c.case]

    async def follow(c: ChildPlan) -> None:
        case = await _case_opened(visits, ids[c.key], office, visits_timeout)
        if c.case == "reported":  # 劝返 refused twice: the written report goes to the education bureau
            for view in ("家里缺劳力，想让孩子出去打工", "仍不同意返校"):
                await _send(visits, "POST", "/api/v1/records", {
                    "helper_id": teachers[(c.body["school_id"], c.body["class_name"])], "child_id": ids[c.key],
                    "kind": "persuasion_visit", "visited_on": plan.today.isoformat(),
                    "persuasion": {"outcome": "refused", "cause": "work", "guardian_view": view}})
        elif c.case == "closed":  # the county office records the pupil back at school (已返校复学)
            r = await visits.post(f"/api/v1/referrals/{case['id']}/outcome", json={"outcome": "returned"}, headers=office)
            if r.status_code != 200:
                raise DemoError(f"closing case {case['id']} -> {r.status_code}: {r.text[:500]}")

    await _each(cases, follow, workers, step("劝返案件 dropout cases", len(cases)))
    return plan.summary()


async def _visits_caught_up(visits: httpx.AsyncClient, county: str, expected: int, advance, timeout: float) -> None:
    """Pairing needs the children in visits, which learns of them from the registry's events."""
    loop, seen = asyncio.get_running_loop(), 0
    deadline = loop.time() + timeout
    while True:
        total = (await _send(visits, "GET", f"/api/v1/overview?region={county}&page_size=1"))["total"]
        advance(total - seen)
        seen = total
        if total >= expected:
            return
        if loop.time() > deadline:
            raise DemoError(f"visits knows {total} of the county's {expected} children after {timeout:.0f} s: "
                            "is it running and consuming registry.events? (shouhu status visits)")
        await asyncio.sleep(0.5)  # polling another service's progress, not a deadline


async def _case_opened(visits: httpx.AsyncClient, child_id: str, office: dict[str, str] | None, timeout: float) -> dict:
    """The dropout case that the child's absences open in visits, once it has had the registry's event."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        page_no, seen, total = 1, 0, 1
        while seen < total:
            r = await visits.get("/api/v1/referrals", params={"policy": "dropout", "page": page_no, "page_size": 200}, headers=office)
            if r.status_code != 200:
                raise DemoError(f"GET /api/v1/referrals -> {r.status_code}: {r.text[:500]}")
            page = r.json()
            if found := [c for c in page["items"] if c["child_id"] == child_id]:
                return found[0]
            page_no, seen, total = page_no + 1, seen + len(page["items"]), page["total"] if page["items"] else 0
        if loop.time() > deadline:
            raise DemoError(f"visits opened no 劝返 case for child {child_id} after {timeout:.0f} s: is it consuming registry.events?")
        await asyncio.sleep(0.5)  # polling another service's progress, not a deadline
