"""The complete archive against real PostgreSQL: reference places, duplicates and merges, search,
guardianship agreements and the 无人监护 flag (an expiry found after a restart), closing and
reopening, transfers, school status and the growth record."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from services.registry.app import SPEC as REGISTRY
from shared.auth import Role
from shared.clock import today_local
from tests.conftest import scalar
from tests.integration.test_registry_api import CHILDREN, county, id_number, outbox_events, register, village  # noqa: F401
from tests.support import child_payload, fresh_county, running_app, token, wait_until

TODAY = today_local()


def types(events: list[dict]) -> list[str]:
    return [e["type"] for e in events]


async def archive(client, settings, child_id: str) -> dict:
    r = await client.get(f"{CHILDREN}/{child_id}", headers=token(settings))
    assert r.status_code == 200, r.text
    return r.json()


# --- places, ages, duplicates -------------------------------------------------------------


async def test_an_unknown_county_is_refused_and_a_16_year_old_is_registered_with_a_warning(settings, county):
    async with running_app(REGISTRY, settings) as (_, client):
        r = await client.post(CHILDREN, json=child_payload(village_code="990001001001"), headers=token(settings))
        assert r.status_code == 422, r.text
        [error] = r.json()["errors"]
        assert (error["field"], error["type"]) == ("village_code", "county_unknown")
        assert "990001" in error["message_zh"] and error["message_en"]

        sixteen = TODAY.replace(year=TODAY.year - 16) - timedelta(days=1)
        r = await client.post(
            CHILDREN, json=child_payload(village_code=village(county), birth_date=sixteen.isoformat()), headers=token(settings)
        )
        assert r.status_code == 201, r.text
        assert [w["code"] for w in r.json()["warnings"]] == ["age_16_to_18"]
        assert [w["code"] for w in (await archive(client, settings, r.json()["id"]))["warnings"]] == ["age_16_to_18"]

        r = await client.post(CHILDREN, json=child_payload(village_code=village(county)), headers=token(settings))
        assert r.json()["warnings"] == []


async def test_an_id_number_on_an_open_archive_is_refused_with_the_childs_id(settings, engines, county):
    number = id_number(date(2014, 6, 1), area=county)
    body = child_payload(village_code=village(county), id_number=number)
    async with running_app(REGISTRY, settings) as (_, client):
        first = (await client.post(CHILDREN, json=body, headers=token(settings))).json()["id"]
        r = await client.post(CHILDREN, json={**body, "name": "另一个名字"}, headers=token(settings))
        assert r.status_code == 409, r.text
        assert (r.json()["detail"]["code"], r.json()["detail"]["existing_child_id"]) == ("id_number_registered", first)
        assert r.json()["detail"]["field"] == "id_number"

        other = await register(client, settings, village_code=village(county, n=2))
        r = await client.patch(f"{CHILDREN}/{other}", json={"id_number": number}, headers=token(settings))
        assert r.status_code == 409 and r.json()["detail"]["existing_child_id"] == first

        # Once the first archive is closed, the number may be registered again.
        r = await client.post(f"{CHILDREN}/{first}/close", json={"reason": "moved_away", "closed_on": TODAY.isoformat()},
                              headers=token(settings))
        assert r.status_code == 204, r.text
        assert (await client.post(CHILDREN, json=body, headers=token(settings))).status_code == 201
        # ... and the closed one cannot be reopened while the other is open.
        r = await client.post(f"{CHILDREN}/{first}/reopen", headers=token(settings))
        assert r.status_code == 409 and r.json()["detail"]["code"] == "id_number_registered"
    assert await scalar(engines["registry"], "SELECT count(*) FROM children WHERE village_code LIKE :c", c=f"{county}%") == 3


async def test_the_same_name_birth_date_and_township_is_listed_for_review_and_an_admin_merges(settings, engines, county):
    here, there = village(county, township=1, n=1), village(county, township=1, n=2)
    number = id_number(date(2014, 6, 1), area=county)
    async with running_app(REGISTRY, settings) as (_, client):
        first = await register(client, settings, name="张　三", village_code=here)
        r = await client.post(CHILDREN, json=child_payload(name="张三 ", village_code=there, id_number=number), headers=token(settings))
        assert r.status_code == 201, r.text
        second = r.json()["id"]
        assert r.json()["possible_duplicates"] == [first]
        assert [w["code"] for w in r.json()["warnings"]] == ["possible_duplicate"]
        # Another township, or another birth date: not a candidate.
        elsewhere = await client.post(CHILDREN, json=child_payload(name="张三", village_code=village(county, township=2)), headers=token(settings))
        assert elsewhere.json()["possible_duplicates"] == []

        r = await client.get("/api/v1/duplicates", headers=token(settings, Role.county_office, county))
        [group] = r.json()
        assert (group["township_code"], group["birth_date"], set(group["child_ids"])) == (here[:9], "2014-06-01", {first, second})

        r = await client.post(f"{CHILDREN}/{first}/merge", json={"survivor_id": second}, headers=token(settings, Role.county_office, county))
        assert r.status_code == 403
        r = await client.post(f"{CHILDREN}/{first}/merge", json={"survivor_id": second}, headers=token(settings))
        assert r.status_code == 204, r.text

        merged = await archive(client, settings, first)
        assert (merged["archive_status"], merged["closed_reason"], merged["merged_into"]) == ("closed", "merged", second)
        assert (await client.get("/api/v1/duplicates", headers=token(settings, Role.county_office, county))).json() == []
        r = await client.post(f"{CHILDREN}/{first}/reopen", headers=token(settings))
        assert r.status_code == 409 and r.json()["detail"]["code"] == "archive_merged"
        r = await client.patch(f"{CHILDREN}/{first}", json={"class_name": "一班"}, headers=token(settings))
        assert r.status_code == 409 and r.json()["detail"]["code"] == "archive_closed"
    last = (await outbox_events(engines, first))[-1]
    assert (last["type"], last["data"]) == ("registry.child.merged", {"child_id": first, "survivor_id": second})


async def test_children_are_found_by_part_of_the_name_or_by_the_whole_id_number_within_scope(settings, county):
    number = id_number(date(2014, 6, 1), area=county)
    async with running_app(REGISTRY, settings) as (_, client):
        wang = await register(client, settings, name="王　小明", village_code=village(county), id_number=number)
        await register(client, settings, name="李小红", village_code=village(county))
        scoped = token(settings, Role.county_office, county)

        async def found(q: str, headers=scoped) -> list[str]:
            r = await client.get(CHILDREN, params={"q": q}, headers=headers)
            assert r.status_code == 200, r.text
            return [c["id"] for c in r.json()["items"]]

        assert await found("小明") == [wang]
        assert await found("王小明") == [wang]
        assert await found("ｗ") == [] and len(await found("小")) == 2
        assert await found(number) == [wang]
        assert await found(number.lower()) == [wang]
        assert await found(number, token(settings, Role.county_office, fresh_county())) == []


# --- guardianship ---------------------------------------------------------------------------


async def agreement_status(engines, agreement_id: str) -> str:
    return await scalar(engines["registry"], "SELECT status FROM agreements WHERE id = :id", id=agreement_id)


async def test_an_agreement_expiry_is_found_after_a_restart_and_flags_the_child_once(settings, engines, county):
    async with running_app(REGISTRY, settings) as (_, client):
        child = await register(client, settings, village_code=village(county))
        r = await client.post(f"{CHILDREN}/{child}/agreements", headers=token(settings), json={
            "signed_on": (TODAY - timedelta(days=300)).isoformat(), "valid_until": TODAY.isoformat(),
        })
        assert r.status_code == 201, r.text
        agreement = r.json()
        assert (agreement["status"], agreement["guardian_relationship"]) == ("in_force", "grandparent")

    # The service stopped; the timer is a row. A new process, two days later, fires it.
    async with running_app(REGISTRY, settings) as (app, client):
        poller = app.state.runtime.timer_poller
        poller.now = lambda: datetime.now(UTC) + timedelta(days=2)
        # The service's own poller runs the same fire_due in the background.
        async def expired() -> bool:
            return await agreement_status(engines, agreement["id"]) == "expired"

        await wait_until(expired, what="the agreement's expiry")
        assert await poller.fire_due() == 0  # fired once, not again
        listed = (await client.get(f"{CHILDREN}/{child}/agreements", headers=token(settings))).json()
        flagged = await archive(client, settings, child)
    assert [(a["status"], a["ended_on"]) for a in listed] == [("expired", TODAY.isoformat())]
    assert (flagged["unguarded_cause"], flagged["unguarded_since"]) == ("agreement_expired", TODAY.isoformat())
    tail = (await outbox_events(engines, child))[-2:]
    assert types(tail) == ["registry.agreement.expired", "registry.guardianship.unguarded"]
    assert tail[1]["data"] == {"child_id": child, "cause": "agreement_expired"}


async def test_the_flag_rises_without_a_guardian_and_clears_only_with_a_signed_agreement(settings, engines, county):
    headers = token(settings)
    async with running_app(REGISTRY, settings) as (_, client):
        child = await register(client, settings, village_code=village(county), guardian=None)
        assert (await archive(client, settings, child))["unguarded_cause"] == "no_guardian"
        signing = {"signed_on": (TODAY - timedelta(days=1)).isoformat(), "valid_until": (TODAY + timedelta(days=365)).isoformat()}

        r = await client.post(f"{CHILDREN}/{child}/agreements", json=signing, headers=headers)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "guardian"
        r = await client.patch(f"{CHILDREN}/{child}", json={"guardian": {"name": "舅舅", "relationship": "relative"}}, headers=headers)
        assert r.json()["unguarded_cause"] == "no_guardian"  # a guardian alone does not lower the flag

        r = await client.post(f"{CHILDREN}/{child}/agreements", json={**signing, "valid_until": signing["signed_on"]}, headers=headers)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "valid_until"
        r = await client.post(f"{CHILDREN}/{child}/agreements", json=signing, headers=headers)
        assert r.status_code == 201, r.text
        agreement = r.json()["id"]
        assert (await archive(client, settings, child))["unguarded_cause"] is None
        r = await client.post(f"{CHILDREN}/{child}/agreements", json=signing, headers=headers)
        assert r.status_code == 409 and r.json()["detail"]["agreement_id"] == agreement

        later = (TODAY + timedelta(days=730)).isoformat()
        r = await client.post(f"{CHILDREN}/{child}/agreements/{agreement}/renew", json={"valid_until": later}, headers=headers)
        assert r.status_code == 200 and r.json()["valid_until"] == later
        due = await scalar(engines["registry"], "SELECT due_at FROM timers WHERE key = :k", k=agreement)
        assert due.date() == TODAY + timedelta(days=730) or due.astimezone(UTC).date() == TODAY + timedelta(days=730)

        r = await client.post(f"{CHILDREN}/{child}/agreements/{agreement}/revoke", json={"revoked_on": TODAY.isoformat()}, headers=headers)
        assert r.status_code == 204, r.text
        assert (await archive(client, settings, child))["unguarded_cause"] == "agreement_revoked"
        assert await scalar(engines["registry"], "SELECT count(*) FROM timers WHERE key = :k", k=agreement) == 0
        r = await client.post(f"{CHILDREN}/{child}/agreements/{agreement}/renew", json={"valid_until": later}, headers=headers)
        assert r.status_code == 409 and r.json()["detail"]["code"] == "agreement_ended"

        # Sign again, then remove the guardian: the agreement ends with them.
        agreement = (await client.post(f"{CHILDREN}/{child}/agreements", json=signing, headers=headers)).json()["id"]
        r = await client.patch(f"{CHILDREN}/{child}", json={"guardian": None}, headers=headers)
        assert r.json()["unguarded_cause"] == "guardian_removed"
    flags = [e for e in await outbox_events(engines, child) if e["type"].startswith(("registry.guardianship", "registry.agreement", "registry.guardian.removed"))]
    assert [(e["type"], e["data"].get("cause")) for e in flags] == [
        ("registry.guardianship.unguarded", "no_guardian"),
        ("registry.agreement.signed", None),
        ("registry.guardianship.restored", None),
        ("registry.agreement.renewed", None),
        ("registry.agreement.revoked", None),
        ("registry.guardianship.unguarded", "agreement_revoked"),
        ("registry.agreement.signed", None),
        ("registry.guardianship.restored", None),
        ("registry.guardian.removed", None),
        ("registry.agreement.revoked", None),
        ("registry.guardianship.unguarded", "guardian_removed"),
    ]


# --- closing, transfers ------------------------------------------------------------------------


async def test_a_closed_archive_is_read_only_until_reopened_and_parents_returning_close_it(settings, engines, county):
    headers = token(settings)
    async with running_app(REGISTRY, settings) as (_, client):
        child = await register(client, settings, village_code=village(county))
        r = await client.post(f"{CHILDREN}/{child}/close", json={"reason": "merged", "closed_on": TODAY.isoformat()}, headers=headers)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "reason"
        r = await client.post(f"{CHILDREN}/{child}/close", json={"reason": "aged_out", "closed_on": TODAY.isoformat()}, headers=headers)
        assert r.status_code == 204
        for method, path, body in [
            ("PATCH", "", {"class_name": "一班"}),
            ("POST", "/absences", {"from_date": TODAY.isoformat(), "to_date": TODAY.isoformat(), "school_days": 1, "excused": False}),
            ("POST", "/growth-notes", {"noted_on": TODAY.isoformat(), "topic": "study", "text": "进步"}),
            ("POST", "/close", {"reason": "aged_out", "closed_on": TODAY.isoformat()}),
        ]:
            r = await client.request(method, f"{CHILDREN}/{child}{path}", json=body, headers=headers)
            assert r.status_code == 409 and r.json()["detail"]["code"] == "archive_closed", (path, r.text)
        listed = await client.get(CHILDREN, params={"region": county}, headers=headers)
        assert listed.json()["total"] == 0
        listed = await client.get(CHILDREN, params={"region": county, "include_closed": "true"}, headers=headers)
        assert listed.json()["items"][0]["closed_reason"] == "aged_out"

        assert (await client.post(f"{CHILDREN}/{child}/reopen", headers=headers)).status_code == 204
        r = await client.patch(f"{CHILDREN}/{child}", json={"father": {"status": "at_home"}, "mother": {"status": "at_home"}}, headers=headers)
        assert r.status_code == 200, r.text
        assert (r.json()["archive_status"], r.json()["closed_reason"]) == ("closed", "parents_returned")
    assert types(await outbox_events(engines, child))[-4:] == [
        "registry.archive.closed", "registry.archive.reopened", "registry.child.updated", "registry.archive.closed",
    ]


async def test_a_transfer_carries_the_old_and_new_place_and_the_child_leaves_the_senders_area(settings, engines, county):
    to_county = fresh_county()
    township = token(settings, Role.township, village(county)[:9])
    async with running_app(REGISTRY, settings) as (_, client):
        child = await register(client, settings, village_code=village(county))
        url = f"{CHILDREN}/{child}/transfer"
        r = await client.post(url, json={"to_village_code": "12345", "effective_on": TODAY.isoformat()}, headers=township)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "to_village_code"
        r = await client.post(url, headers=township, json={
            "to_village_code": village(county), "to_school_id": "school-1", "to_class_name": "三年级二班", "effective_on": TODAY.isoformat(),
        })
        assert r.status_code == 422 and r.json()["errors"][0]["type"] == "transfer_nothing"
        r = await client.post(url, headers=township, json={
            "to_village_code": village(to_county), "to_school_id": "school-9", "effective_on": TODAY.isoformat(),
        })
        assert r.status_code == 204, r.text
        assert (await client.get(f"{CHILDREN}/{child}", headers=township)).status_code == 404
        moved = await archive(client, settings, child)
    assert (moved["village_code"], moved["school_id"], moved["class_name"]) == (village(to_county), "school-9", None)
    last = (await outbox_events(engines, child))[-1]
    assert last["type"] == "registry.child.transferred" and last["region_code"] == village(to_county)
    assert last["data"] | {"effective_on": None} == {
        "child_id": child, "from_village_code": village(county), "to_village_code": village(to_county),
        "from_school_id": "school-1", "to_school_id": "school-9", "to_class_name": None, "effective_on": None,
    }


# --- school status, growth record ----------------------------------------------------------------


async def test_absences_returns_and_enrolment_are_recorded_once_each_with_their_events(settings, engines, county):
    headers = token(settings, Role.school, county, school="school-1")  # the school of child_payload's child
    day = lambda n: (TODAY - timedelta(days=n)).isoformat()  # noqa: E731
    async with running_app(REGISTRY, settings) as (_, client):
        child = await register(client, settings, village_code=village(county))
        url = f"{CHILDREN}/{child}"
        r = await client.post(f"{url}/absences", json={"from_date": day(3), "to_date": day(5), "school_days": 2, "excused": False}, headers=headers)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "to_date"
        r = await client.post(f"{url}/absences", json={"from_date": day(5), "to_date": day(3), "school_days": 4, "excused": False}, headers=headers)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "school_days"
        r = await client.post(f"{url}/absences", json={"from_date": day(5), "to_date": day(3), "school_days": 3, "excused": False, "reason_code": "work"}, headers=headers)
        assert r.status_code == 201, r.text
        r = await client.post(f"{url}/absences", json={"from_date": day(4), "to_date": day(4), "school_days": 1, "excused": True}, headers=headers)
        assert r.status_code == 409 and r.json()["detail"]["code"] == "absence_overlaps"
        assert len((await client.get(f"{url}/absences", headers=headers)).json()) == 1

        r = await client.put(f"{url}/enrolment", json={"status": "dropped_out", "effective_on": day(2)}, headers=headers)
        assert r.status_code == 204, r.text
        assert (await archive(client, settings, child))["enrolment_status"] == "dropped_out"
        r = await client.post(f"{url}/school-return", json={"returned_on": day(0)}, headers=headers)
        assert r.status_code == 204, r.text
        assert (await archive(client, settings, child))["enrolment_status"] == "in_school"
    events = await outbox_events(engines, child)
    assert types(events)[-4:] == [
        "registry.absence.reported", "registry.enrolment.changed", "registry.school.returned", "registry.enrolment.changed",
    ]
    absence = events[-4]["data"]
    assert (absence["school_days"], absence["excused"], absence["reason_code"], absence["school_id"]) == (3, False, "work", "school-1")
    assert [(e["data"]["previous"], e["data"]["status"]) for e in (events[-3], events[-1])] == [("in_school", "dropped_out"), ("dropped_out", "in_school")]


async def test_growth_notes_are_kept_in_time_order_and_travel_on_no_stream(settings, engines, county):
    async with running_app(REGISTRY, settings) as (_, client):
        child = await register(client, settings, village_code=village(county))
        url = f"{CHILDREN}/{child}/growth-notes"
        for noted_on, topic, text in [(TODAY, "study", "数学进步明显"), (TODAY - timedelta(days=30), "family_education", "与父母视频")]:
            r = await client.post(url, json={"noted_on": noted_on.isoformat(), "topic": topic, "text": text}, headers=token(settings))
            assert r.status_code == 201, r.text
        r = await client.post(url, json={"noted_on": TODAY.isoformat(), "topic": "mood", "text": "x"}, headers=token(settings))
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "topic"
        notes = (await client.get(url, headers=token(settings))).json()
        assert (await client.get(url, headers=token(settings, Role.county_office, fresh_county()))).status_code == 404
    assert [n["topic"] for n in notes] == ["family_education", "study"]
    assert "数学进步明显" not in str(await outbox_events(engines, child))
