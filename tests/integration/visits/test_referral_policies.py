"""Each referral policy's trigger and closing condition (转介政策), its agencies and its disclosure log,
with the visits service fed registry events through real Redis."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import text

from services.visits.adapters.orm import timers
from services.visits.service_layer import referrals
from shared.auth import Role, issue_token
from shared.clock import today_local
from shared.contracts.notifications_v1 import NOTIFICATION_REQUESTS
from shared.contracts.registry_v1 import (
    ABSENCE_REPORTED,
    ARCHIVE_CLOSED,
    CHILD_GUARDED,
    CHILD_REGISTERED,
    CHILD_UNGUARDED,
    CHILD_UPDATED,
    AbsenceReported,
    ArchiveClosed,
    ChildFactsChanged,
    ChildGuarded,
    ChildRegistered,
    ChildUnguarded,
    ChildUpdated,
)
from tests.conftest import scalar
from tests.integration.visits.conftest import COUNTY, village
from shared.timers import TimerPoller
from tests.support import wait_until


async def cases(visits, child_id) -> list[dict]:
    r = await visits.client.get("/api/v1/referrals", params={"page_size": 200}, headers=visits.auth())
    assert r.status_code == 200, r.text
    return [c for c in r.json()["items"] if c["child_id"] == str(child_id)]


async def case(visits, referral_id: str, headers=None) -> dict:
    r = await visits.client.get(f"/api/v1/referrals/{referral_id}", headers=headers or visits.auth())
    assert r.status_code == 200, r.text
    return r.json()


async def until_cases(visits, child_id, check, what: str) -> list[dict]:
    found: list[dict] = []

    async def seen() -> bool:
        nonlocal found
        found = await cases(visits, child_id)
        return check(found)

    await wait_until(seen, what=what)
    return found


async def test_no_valid_guardian_refers_to_civil_affairs_and_closes_when_a_signed_agreement_is_in_place(start_visits):
    async with start_visits() as visits:
        child = await visits.child()
        await visits.publish(CHILD_UNGUARDED, ChildUnguarded(child_id=child, cause="agreement_expired"), child, village())
        [opened] = await until_cases(visits, child, lambda c: len(c) == 1, "the 无人监护 case")
        assert (opened["policy"], opened["stage"], opened["trigger"]) == ("unguarded", "reported", "registry.guardianship.unguarded")
        details = await case(visits, opened["id"])
        assert {(d["agency"], d["purpose"]) for d in details["disclosures"]} == {
            ("civil_affairs", "report"), ("township_government", "inform")}
        assert details["disclosures"][0]["fields"] == ["guardianship_cause", "village_code"]

        await visits.publish(CHILD_GUARDED, ChildGuarded(child_id=child, agreement_id=uuid.uuid4()), child, village())
        [closed] = await until_cases(visits, child, lambda c: c[0]["stage"] == "closed", "the case closed by the agreement")
    assert closed["outcome"] == "condition_cleared"
    requests = [e for e in await visits.outbox("notifications.message.requested") if e["data"]["data"].get("case_id") == opened["id"]]
    assert sorted((e["data"]["kind"], e["data"]["recipients"][0]["agency"]) for e in requests) == [
        ("guardianship_referral", "civil_affairs"), ("guardianship_referral", "township_government")]
    assert all(e["data"]["child_id"] == str(child) and "name" not in e["data"]["data"] for e in requests)


async def test_no_household_registration_refers_to_the_police_and_closes_on_registration(start_visits):
    async with start_visits() as visits:
        child = uuid.uuid4()
        data = ChildRegistered(
            child_id=child, gender="male", birth_date=date(2016, 5, 1), village_code=village(2), hukou_status="unregistered",
            left_behind_type="both_parents_out", father_status="migrant_worker", mother_status="migrant_worker",
        )
        await visits.publish(CHILD_REGISTERED, data, child, village(2))
        [opened] = await until_cases(visits, child, lambda c: len(c) == 1, "the 无户籍 case")
        assert (opened["policy"], opened["trigger"]) == ("no_hukou", "registry.child.registered")
        details = await case(visits, opened["id"])
        assert [(d["agency"], d["fields"]) for d in details["disclosures"]] == [
            ("public_security", ["birth_date", "guardian", "name", "village_code"])]

        update = ChildUpdated(child_id=child, changed_fields=["hukou_status"], changes=ChildFactsChanged(hukou_status="registered"))
        await visits.publish(CHILD_UPDATED, update, child, village(2))
        [closed] = await until_cases(visits, child, lambda c: c[0]["stage"] == "closed", "the case closed by registration")
    assert closed["outcome"] == "condition_cleared"


async def test_concerns_seen_on_a_visit_are_referred_by_kind_violence_at_once(start_visits):
    async with start_visits() as visits:
        child = await visits.child(3)
        mother = await visits.helper("caring_mother")
        await visits.pair([mother], [child])
        concerns = [{"kind": k, "severity": "high"} for k in ("violence_signs", "injury", "hardship", "psychological_distress", "other")]
        before = datetime.now(UTC)
        r = await visits.record(mother, child, "home_visit", concerns=concerns)
        assert r.status_code == 201, r.text
        found = {c["policy"]: c for c in await cases(visits, child)}
    assert set(found) == {"violence", "medical", "hardship", "psychological"}  # "other" has no policy
    violence = found["violence"]
    assert violence["stage"] == "reported" and violence["trigger"] == "visits.concern.raised"
    # Urgent: the police's acknowledgement is due in minutes, not days.
    assert datetime.fromisoformat(violence["due_at"]) - before < timedelta(minutes=31)
    assert datetime.fromisoformat(found["hardship"]["due_at"]) - before > timedelta(days=1)
    urgent = [e["data"] for e in await visits.outbox("notifications.message.requested")
              if e["data"]["data"].get("case_id") == violence["id"]]
    assert {(m["kind"], m["urgency"], m["recipients"][0]["agency"]) for m in urgent} == {
        ("violence_report", "urgent", "public_security"), ("violence_report", "urgent", "township_government")}
    # On the urgent requests' own stream, never queued behind ordinary ones; the others on the usual one.
    async with visits.engine.connect() as conn:
        streams = dict((await conn.execute(text(
            "SELECT payload::json->'data'->>'urgency', array_agg(DISTINCT stream) FROM outbox "
            "WHERE event_type = 'notifications.message.requested' GROUP BY 1"))).all())
    assert [s.rpartition(".requests")[2] for s in streams.pop("urgent")] == [".urgent"], streams
    assert streams and all(s[0].endswith(NOTIFICATION_REQUESTS) for s in streams.values()), streams


async def test_an_agency_reads_a_case_only_while_it_is_open_and_closing_it_ends_every_deadline(start_visits, settings):
    async with start_visits() as visits:
        child = await visits.child(4)
        await visits.publish(CHILD_UNGUARDED, ChildUnguarded(child_id=child, cause="no_guardian"), child, village(4))
        [opened] = await until_cases(visits, child, lambda c: len(c) == 1, "the case")
        def agency_of(kind: str, code: str, region: str = COUNTY) -> dict:
            return {"Authorization": f"Bearer {issue_token(settings, role=Role.agency, region=region, agency=code, agency_kind=kind)}"}

        agency = agency_of("civil_affairs", f"mz-{COUNTY}")
        other = agency_of("civil_affairs", "mz-410526", "410526")
        police, no_kind = agency_of("public_security", f"gaj-{COUNTY}"), agency_of(None, f"mz-{COUNTY}")
        informed = agency_of("township_government", f"zf-{COUNTY}")  # 通报: reads the case, does not answer it
        seen = await case(visits, opened["id"], agency)
        assert seen["stage"] == "reported" and seen["helper_ids"] == []
        for outsider in (other, police, no_kind):  # another area; the same area but another kind; no kind
            assert (await visits.client.get(f"/api/v1/referrals/{opened['id']}", headers=outsider)).status_code == 404
        assert (await case(visits, opened["id"], informed))["stage"] == "reported"
        r = await visits.client.post(f"/api/v1/referrals/{opened['id']}/acknowledgement", headers=informed)
        assert r.status_code == 404, r.text

        r = await visits.client.post(f"/api/v1/referrals/{opened['id']}/acknowledgement", headers=agency)
        assert r.status_code == 200 and r.json()["stage"] == "acknowledged"
        pending = "SELECT count(*) FROM timers WHERE kind = 'referral_deadline' AND fired_at IS NULL AND (key = :k OR key LIKE :k || ':%')"
        assert await scalar(visits.engine, pending, k=opened["id"]) == 1  # the outcome's deadline
        r = await visits.client.post(f"/api/v1/referrals/{opened['id']}/outcome", json={"outcome": "teleported"}, headers=agency)
        assert r.status_code == 422
        r = await visits.client.post(f"/api/v1/referrals/{opened['id']}/outcome", json={"outcome": "resolved"}, headers=agency)
        assert r.status_code == 200 and r.json()["outcome"] == "resolved"
        assert (await visits.client.get(f"/api/v1/referrals/{opened['id']}", headers=agency)).status_code == 404
        assert await scalar(visits.engine, pending, k=opened["id"]) == 0

        # A closed archive closes whatever is open for the child.
        await visits.publish(CHILD_UNGUARDED, ChildUnguarded(child_id=child, cause="guardian_removed"), child, village(4))
        await until_cases(visits, child, lambda c: any(x["stage"] != "closed" for x in c), "a second case")
        await visits.publish(ARCHIVE_CLOSED, ArchiveClosed(child_id=child, reason="moved_away", closed_on=date.today()), child, village(4))
        closed = await until_cases(visits, child, lambda c: all(x["stage"] == "closed" for x in c), "every case closed")
    assert sorted(c["outcome"] for c in closed) == ["archive_closed", "resolved"]


async def test_a_persuasion_deadline_passing_reports_in_writing_then_reminds_and_escalates(start_visits):
    async with start_visits() as visits:
        child = await visits.child(5, school="school-deadline", class_name="一班")
        monday = today_local() - timedelta(days=7 + today_local().weekday())
        absence = AbsenceReported(child_id=child, absence_id=uuid.uuid4(), school_id="school-deadline", from_date=monday,
                                  to_date=monday + timedelta(days=2), school_days=3, excused=False)
        await visits.publish(ABSENCE_REPORTED, absence, child, village(5))
        [opened] = await until_cases(visits, child, lambda c: len(c) == 1, "the dropout case")
        assert opened["stage"] == "persuasion"

        async def fire_at(days: int) -> None:
            poller = TimerPoller(timers, visits.app.state.runtime.uow, referrals.TIMER_HANDLERS,
                                 now=lambda: datetime.now(UTC) + timedelta(days=days))
            while await poller.fire_due():
                pass

        await fire_at(8)  # the 7 days of persuasion are over; the bureau's 2 working days are not
        reported = await case(visits, opened["id"])
        report = await visits.client.get(f"/api/v1/referrals/{opened['id']}/report", headers=visits.auth())
        audit = (await visits.client.get("/api/v1/audit", params={"record_id": opened["id"], "action": "export"},
                                         headers=visits.auth(Role.admin, ""))).json()
        await fire_at(30)  # now they are, and the working day after the reminder too
        escalated = await case(visits, opened["id"])
    assert reported["stage"] == "reported"
    assert [t["step"] for t in reported["timeline"]] == ["opened", "persuasion_deadline_passed", "reported"]
    assert report.status_code == 200 and "期限届满" in report.text
    # The report names the child: the copy says who took it, and the taking is on record.
    assert "导出人 exported by: dev (county_office), " in report.text
    assert [(e["kind"], e["role"]) for e in audit] == [("referral_report", "county_office")]
    assert [t["step"] for t in escalated["timeline"]][-2:] == ["reminded", "escalated"]


async def test_an_office_moves_a_deadline_and_its_timer_moves_with_it(start_visits):
    async with start_visits() as visits:
        child = await visits.child(6)
        await visits.publish(CHILD_UNGUARDED, ChildUnguarded(child_id=child, cause="no_guardian"), child, village(6))
        [opened] = await until_cases(visits, child, lambda c: len(c) == 1, "the case")
        later = datetime.now(UTC) + timedelta(days=10)
        url = f"/api/v1/referrals/{opened['id']}/deadline"
        r = await visits.client.put(url, json={"due_at": later.isoformat(), "reason": "x"}, headers=visits.auth())
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "reason"
        r = await visits.client.put(url, json={"due_at": "2020-01-01T00:00:00+08:00", "reason": "节假日调整"}, headers=visits.auth())
        assert r.status_code == 422 and r.json()["detail"]["errors"][0]["field"] == "due_at"
        r = await visits.client.put(url, json={"due_at": later.isoformat(), "reason": "节假日调整"}, headers=visits.auth())
        assert r.status_code == 200, r.text
        due = await scalar(visits.engine, "SELECT due_at FROM timers WHERE kind = 'referral_deadline' AND key = :k", k=opened["id"])
        moved = (await case(visits, opened["id"]))["timeline"][-1]
    assert abs((due - later).total_seconds()) < 1
    assert (moved["step"], moved["detail"]["reason"]) == ("deadline_moved", "节假日调整")
