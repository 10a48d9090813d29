"""The leak scan (issue 9): a county's registrations (one through the census import), a visit with a
concern and a dropout case reported to the education bureau, the four services in this process; then
no log record, no stream entry outside the agencies' own and the contacts stream, no outbox payload of
visits, notifications or reporting, and no text in reporting's database holds a name, an ID number or
a phone of the scenario (architecture.md, "Personal data is minimised")."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest
from sqlalchemy import text

from services.notifications.app import build_spec
from services.notifications.config import NotificationsConfig
from services.registry.app import SPEC as REGISTRY
from services.reporting.app import SPEC as REPORTING
from services.visits.app import SPEC as VISITS
from shared.auth import Role
from shared.clock import today_local
from tests.integration.registry_census.rosters import good, id_number, row, xlsx
from tests.support import child_payload, fresh_county, running_app, token, wait_until

NAMES = ("司马翠花", "司马大壮", "慕容秀英", "上官桂兰", "欧阳铁柱", "欧阳满仓", "张老师傅")
PHONES = ("13511223344", "15866778899", "18933445566", "17755667788", "13622446688")
# Streams that carry names and phones by design: the contacts of the family, and each agency's own.
PRIVATE_STREAMS = ("registry.contacts", "to-agency.")


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        parts = [record.name, record.getMessage(), json.dumps(getattr(record, "fields", {}), ensure_ascii=False, default=str)]
        if record.exc_info:
            parts.append(logging.Formatter().formatException(record.exc_info))
        self.texts.append(" ".join(parts))


def readable(value) -> str:
    """Text with JSON decoded at every level, so that a name escaped as \\uXXXX is seen as itself."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if isinstance(value, str):
        try:
            decoded = json.loads(value)
        except ValueError:
            return value
        if isinstance(decoded, (dict, list)):
            return readable_obj(decoded)
        return value
    return readable_obj(value)


def readable_obj(obj) -> str:
    if isinstance(obj, dict):
        return " ".join(f"{k}={readable(v)}" for k, v in obj.items())
    if isinstance(obj, list):
        return " ".join(readable(v) for v in obj)
    return readable(obj) if isinstance(obj, (str, bytes)) else str(obj)


def leaks(where: str, texts, secrets: tuple[str, ...]) -> list[str]:
    return [f"{where}: {s!r} in {t[:300]!r}" for t in texts for s in secrets if s in t]


@pytest.fixture
def logs():
    root = logging.getLogger()
    handler, level = Records(), root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield handler
    root.removeHandler(handler)
    root.setLevel(level)


async def test_no_name_id_number_or_phone_leaves_its_place(settings, engines, redis, tmp_path, logs):
    county = fresh_county()
    village, today = f"{county}001001", today_local()
    school = f"school-{county}"
    agencies = tmp_path / "agencies.json"
    agencies.write_text(json.dumps([
        {"code": f"{p}-{county}", "kind": kind, "region": county, "name": f"{kind} {county}", "channels": ["agency_stream"]}
        for p, kind in (("edu", "education_bureau"), ("zf", "township_government"), ("mz", "civil_affairs"))
    ]), encoding="utf-8")
    notifications = build_spec(NotificationsConfig(agencies_file=agencies, quiet_start="00:00", quiet_end="00:00"))
    ids = (id_number(village, "2014-06-01", 7), id_number(village, "2013-02-03", 9, "male"))
    auth = token(settings, Role.admin)
    async with (
        running_app(REGISTRY, settings) as (_, registry),
        running_app(VISITS, settings) as (_, visits),
        running_app(notifications, settings),
        running_app(REPORTING, settings) as (_, reporting),
    ):
        body = child_payload(
            name=NAMES[0], village_code=village, school_id=school, class_name="五年级一班", birth_date="2014-06-01",
            id_number=ids[0],
            father={"name": NAMES[1], "status": "migrant_worker", "work_place": "广东东莞", "phone": PHONES[0]},
            mother={"name": NAMES[2], "status": "migrant_worker", "phone": PHONES[1]},
            guardian={"name": NAMES[3], "relationship": "grandparent", "capacity": "limited", "phone": PHONES[2]},
        )
        r = await registry.post("/api/v1/children", json=body, headers=auth)
        assert r.status_code == 201, r.text
        child = r.json()["id"]
        roster = row(good(9, village), 姓名=NAMES[4], 出生日期="2013-02-03", 性别="男", 身份证号=ids[1],
                     父亲姓名=NAMES[5], 父亲电话=PHONES[3], 监护人电话=PHONES[4])
        r = await registry.post("/api/v1/imports/census", files={"file": ("roster.xlsx", xlsx([roster]))}, headers=auth)
        assert r.status_code == 201 and r.json()["registered"] == 1, r.text

        async def known() -> bool:
            return (await visits.get(f"/api/v1/children/{child}/compliance", headers=auth)).status_code == 200

        await wait_until(known, what="visits to know the child")
        teacher = await visits.post("/api/v1/helpers", headers=auth, json={
            "name": NAMES[6], "role": "class_teacher", "organisation": "中心小学", "region_code": county,
            "school_id": school, "class_name": "五年级一班", "phone": PHONES[4],
        })
        assert teacher.status_code == 201, teacher.text
        teacher = teacher.json()["id"]
        r = await visits.post("/api/v1/records", headers=auth, json={
            "helper_id": teacher, "child_id": child, "kind": "home_visit", "visited_on": today.isoformat(),
            "note": f"{NAMES[0]}的奶奶{NAMES[3]}说电话{PHONES[2]}", "concerns": [
                {"kind": "psychological_distress", "severity": "high", "note": f"{NAMES[0]}想念{NAMES[1]}"}],
        })
        assert r.status_code == 201, r.text
        start = today - timedelta(days=7 + today.weekday())
        r = await registry.post(f"/api/v1/children/{child}/absences", headers=auth, json={
            "from_date": start.isoformat(), "to_date": (start + timedelta(days=2)).isoformat(), "school_days": 3,
            "excused": False})
        assert r.status_code == 201, r.text
        case: dict = {}

        async def opened() -> bool:
            nonlocal case
            r = await visits.get("/api/v1/referrals", params={"policy": "dropout"}, headers=auth)
            case = next((x for x in r.json()["items"] if x["child_id"] == child), {})
            return bool(case)

        await wait_until(opened, what="the dropout case")
        for outcome, cause in (("unreachable", None), ("refused", "work"), ("refused", "work")):
            r = await visits.post("/api/v1/records", headers=auth, json={
                "helper_id": teacher, "child_id": child, "kind": "persuasion_visit", "visited_on": today.isoformat(),
                "persuasion": {"outcome": outcome, "cause": cause, "guardian_view": f"{NAMES[3]}说家里缺劳力"}})
            assert r.status_code == 201, r.text
        edu = settings.stream(f"to-agency.edu-{county}")

        async def reported() -> bool:
            return await redis.xlen(edu) > 0

        await wait_until(reported, timeout=30, what="the written report on the bureau's stream")

        async def counted() -> bool:
            r = await reporting.get("/api/v1/figures", params={"region": county}, headers=auth)
            return r.status_code == 200 and r.json()["children"]["total"] == 2

        await wait_until(counted, what="reporting to count both children")

    secrets = NAMES + PHONES + ids
    found = leaks("log", logs.texts, secrets)
    for key in await redis.keys(settings.stream_namespace + "*"):
        stream = key.decode().removeprefix(settings.stream_namespace)
        if stream.startswith(PRIVATE_STREAMS) or await redis.type(key) != b"stream":
            continue
        found += leaks(f"stream {stream}", [readable_obj(fields) for _, fields in await redis.xrange(key)], secrets)
    for service in ("visits", "notifications", "reporting"):
        async with engines[service].connect() as conn:
            if not await conn.scalar(text("SELECT to_regclass('outbox') IS NOT NULL")):
                continue
            payloads = (await conn.execute(text("SELECT stream, payload FROM outbox WHERE stream LIKE :ns"),
                                           {"ns": settings.stream_namespace + "%"})).all()
        found += leaks(f"{service} outbox", [readable(p) for s, p in payloads
                                             if not s.removeprefix(settings.stream_namespace).startswith(PRIVATE_STREAMS)], secrets)
    async with engines["reporting"].connect() as conn:
        columns = (await conn.execute(text(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public' "
            "AND data_type IN ('text', 'character varying', 'character', 'json', 'jsonb', 'ARRAY')"))).all()
        for table, column in columns:
            hits = await conn.scalar(text(f'SELECT count(*) FROM "{table}" WHERE "{column}"::text LIKE ANY(:patterns)'),
                                     {"patterns": [f"%{s}%" for s in secrets]})
            if hits:
                found.append(f"reporting {table}.{column}: {hits} rows")
    assert logs.texts and not found, "\n".join(found)
