"""The field app on a 360-px phone, one role at a time: sign in through the link, do the role's main
task, and find the result through the services' APIs. Screenshots go to test-artifacts/."""

from __future__ import annotations

from datetime import timedelta

from playwright.async_api import expect

from shared.auth import Role
from shared.clock import today_local
from tests.browser import screenshot_path
from tests.conftest import scalar
from tests.support import wait_until


async def test_a_helper_sees_her_children_and_worklist_and_records_a_visit(field, browser):
    child = await field.child("王小花")
    mother = await field.helper("caring_mother", "mother-wang")
    await field.pair(mother, child)
    context, page = await field.phone(browser, field.token(Role.helper, field.county, "mother-wang"))
    try:
        children = page.locator("[data-test=children]")
        await expect(children).to_contain_text("王小花")
        await expect(page.locator("[data-test=worklist]")).to_contain_text("本周待走访与逾期")
        await page.screenshot(path=screenshot_path("field-helper-home"), full_page=True)

        await children.locator("[data-test=record-visit]").click()
        form = page.locator("[data-test=visit-form]")
        await form.locator("[data-area=psychology] [data-level=attention]").click()
        await page.select_option("#concern", "psychological_distress")
        await page.fill("#note", "想念妈妈")
        await page.screenshot(path=screenshot_path("field-helper-visit-form"), full_page=True)
        await form.locator("[data-test=save-visit]").click()

        sent = page.locator("[data-test=outbox] li[data-state=sent]")
        await expect(sent).to_have_count(1)
        record_id = await sent.get_attribute("data-client-id")
        r = await field.api("visits", "GET", f"/api/v1/records/{record_id}")
        assert r.status_code == 200, r.text
        record = r.json()
        assert (record["child_id"], record["helper_id"], record["kind"], record["note"]) == (child, mother, "home_visit", "想念妈妈")
        assert {o["area"]: o["level"] for o in record["observations"]}["psychology"] == "attention"
        assert await field.records_of(child) == 1
        assert await scalar(field.engines["visits"], "SELECT kind FROM concerns WHERE child_id = :c", c=child) == "psychological_distress"

        await page.click("[data-test=lang]")  # English on request
        await expect(page.locator("[data-test=children]")).to_contain_text("My children")
    finally:
        await context.close()


async def test_two_visits_recorded_offline_reach_the_server_once_each_when_the_signal_returns(field, browser):
    child = await field.child("李明")
    mother = await field.helper("caring_mother", "mother-li")
    await field.pair(mother, child)
    context, page = await field.phone(browser, field.token(Role.helper, field.county, "mother-li"))
    try:
        await expect(page.locator("[data-test=children]")).to_contain_text("李明")
        await context.set_offline(True)
        for kind in ("home_visit", "phone"):
            await page.locator("[data-test=children] [data-test=record-visit]").click()
            await page.select_option("#kind", kind)
            await page.locator("[data-test=save-visit]").click()
        queued = page.locator("[data-test=outbox] li[data-state=queued]")
        await expect(queued).to_have_count(2)
        await page.screenshot(path=screenshot_path("field-offline-queued"), full_page=True)
        assert await field.records_of(child) == 0

        await context.set_offline(False)
        await expect(page.locator("[data-test=outbox] li[data-state=sent]")).to_have_count(2, timeout=20_000)
        await page.screenshot(path=screenshot_path("field-offline-sent"), full_page=True)
        assert await field.records_of(child) == 2
        ids = await page.locator("[data-test=outbox] li").evaluate_all("els => els.map(e => e.dataset.clientId)")
        for record_id in ids:
            assert (await field.api("visits", "GET", f"/api/v1/records/{record_id}")).status_code == 200
    finally:
        await context.close()


async def test_a_class_teacher_records_a_talk_and_reports_an_absence(field, browser):
    school, klass = f"school-{field.county}", "三年级二班"
    pupil = await field.child("张伟", school_id=school, class_name=klass)
    other_class = await field.child("赵敏", school_id=school, class_name="五年级一班")
    await field.helper("class_teacher", "teacher-zhang", school_id=school, class_name=klass)  # paired with the class by visits
    context, page = await field.phone(browser, field.token(Role.school, field.county, "teacher-zhang", school=school))
    try:
        pupils = page.locator("[data-test=pupils]")
        await expect(pupils).to_contain_text("张伟")
        await expect(pupils.locator(f"[data-child='{other_class}']")).to_have_count(0)
        await page.screenshot(path=screenshot_path("field-teacher-home"), full_page=True)

        await pupils.locator(f"[data-child='{pupil}'] [data-test=talk]").click()
        await page.locator("[data-test=save-visit]").click()
        await expect(page.locator("[data-test=outbox] li[data-state=sent]")).to_have_count(1)

        await page.locator(f"[data-test=pupils] [data-child='{pupil}'] [data-test=absence]").click()
        await page.fill("#days", "1")
        await page.locator("[data-test=send]").click()
        await expect(page.locator("[data-test=message]")).to_contain_text("张伟")
        await expect(page.locator("[data-test=outbox] li[data-what=absence]")).to_have_attribute("data-state", "sent")
        await page.screenshot(path=screenshot_path("field-teacher-absence"), full_page=True)

        absences = (await field.api("registry", "GET", f"/api/v1/children/{pupil}/absences")).json()
        assert [(a["school_days"], a["excused"]) for a in absences] == [(1, False)]
        talk_id = await page.locator("[data-test=outbox] li[data-what=talk]").get_attribute("data-client-id")
        talk = (await field.api("visits", "GET", f"/api/v1/records/{talk_id}")).json()
        assert (talk["kind"], talk["helper_role"], talk["child_id"]) == ("talk", "class_teacher", pupil)
    finally:
        await context.close()


async def test_a_village_supervisor_registers_a_child_and_sees_a_conflicting_change_before_overwriting(field, browser):
    existing = await field.child("陈静")
    context, page = await field.phone(browser, field.token(Role.village_supervisor, field.village, "supervisor-chen"))
    try:
        children = page.locator("[data-test=children]")
        await expect(children).to_contain_text("陈静")
        await expect(page.locator("[data-test=overdue]")).to_be_visible()
        await page.screenshot(path=screenshot_path("field-supervisor-home"), full_page=True)

        await page.locator("[data-test=register]").click()
        await page.fill("#name", "刘洋")
        await page.fill("#birth", "2016-05-01")
        await page.fill("#guardian", "刘奶奶")
        await page.locator("[data-test=send]").click()
        await expect(page.locator("[data-test=message]")).to_contain_text("刘洋")
        registered: list = []

        async def on_the_server() -> bool:  # the app's outbox sends in the background: the message may come first
            nonlocal registered
            found = (await field.api("registry", "GET", "/api/v1/children", params={"q": "刘洋", "region": field.village})).json()
            registered = [(c["village_code"], c["guardian"]["name"]) for c in found["items"]]
            return bool(registered)

        await wait_until(on_the_server, timeout=20, what="the registration on the server")
        assert registered == [(field.village, "刘奶奶")]

        # The supervisor opens the archive; someone else changes the guardian meanwhile.
        await children.locator(f"[data-child='{existing}'] [data-test=archive]").click()
        r = await field.api("registry", "PATCH", f"/api/v1/children/{existing}", json={"guardian": {"name": "外公"}})
        assert r.status_code == 200, r.text
        await page.fill("#guardian", "姑姑")
        await page.select_option("#relationship", "relative")
        await page.locator("[data-test=send]").click()
        # Both versions side by side, field by field, in words: her change, and the archive now.
        change = page.locator("[data-test=outbox] li[data-state=conflict]")
        await expect(change.locator("[data-test=conflict]")).to_be_visible()
        await expect(change.locator("[data-field='guardian.name'] [data-test=current]")).to_have_text("外公")
        await expect(change.locator("[data-field='guardian.name'] [data-test=mine]")).to_have_text("姑姑")
        await expect(change.locator("[data-field='guardian.relationship'] [data-test=mine]")).to_have_text("亲戚")
        await page.screenshot(path=screenshot_path("field-supervisor-conflict"), full_page=True)
        now = (await field.api("registry", "GET", f"/api/v1/children/{existing}")).json()
        assert now["guardian"]["name"] == "外公"  # nothing overwritten until the supervisor chooses

        await change.locator("[data-test=keep-mine]").click()
        await expect(page.locator("[data-test=outbox] li[data-what=guardianChange]")).to_have_attribute("data-state", "sent")
        now = (await field.api("registry", "GET", f"/api/v1/children/{existing}")).json()
        assert (now["guardian"]["name"], now["guardian"]["relationship"]) == ("姑姑", "relative")
    finally:
        await context.close()


async def test_a_village_supervisor_sees_the_villages_open_referrals(field, browser):
    unguarded = await field.child("吴小草", guardian=None)  # registered without a guardian: 无人监护

    async def opened() -> list[dict]:
        r = await field.api("visits", "GET", "/api/v1/referrals", params={"policy": "unguarded"})
        return [c for c in r.json()["items"] if c["child_id"] == unguarded]

    await wait_until(opened, what="the 无人监护 case of a child registered without a guardian")
    [case] = await opened()
    context, page = await field.phone(browser, field.token(Role.village_supervisor, field.village, "supervisor-wu"))
    try:
        row = page.locator(f"[data-test=referrals] [data-referral='{case['id']}']")
        await expect(row).to_contain_text("吴小草")
        await expect(row).to_contain_text("无人监护")
        await expect(row).to_have_attribute("data-stage", case["stage"])
        if case["due_at"]:
            await expect(row.locator("[data-test=deadline]")).to_be_visible()
        await page.screenshot(path=screenshot_path("field-supervisor-referrals"), full_page=True)
    finally:
        await context.close()


async def test_a_township_director_sees_reportings_figures_of_the_township(field, browser):
    kids = [await field.child(name) for name in ("周一", "周二")]
    await field.child("周三", guardian=None)
    mother = await field.helper("caring_mother", "mother-zhou")
    await field.pair(mother, *kids)
    township = field.village[:9]
    auth = field.auth(Role.township, township)

    figures: dict = {}

    async def counted() -> bool:
        nonlocal figures
        figures = (await field.api("reporting", "GET", "/api/v1/figures", params={"region": township}, headers=auth)).json()
        return figures["children"]["total"] == 3

    await wait_until(counted, what="reporting to count the township's children")
    context, page = await field.phone(browser, field.token(Role.township, township, "director-zhou"))
    try:
        await expect(page.locator("[data-test=children-total] b")).to_have_text("3")
        await expect(page.locator("[data-test=unguarded] b")).to_have_text(str(figures["guardianship"]["unguarded_now"]))
        await expect(page.locator("[data-test=agreements] b")).to_have_text(str(figures["guardianship"]["agreements_in_force"]))
        await expect(page.locator(f"[data-test=places] [data-place='{field.village}']")).to_contain_text("3")
        assert figures["guardianship"]["unguarded_now"] == 1
        await page.screenshot(path=screenshot_path("field-director-home"), full_page=True)
    finally:
        await context.close()


async def test_a_class_teacher_records_two_refusals_on_an_open_case_and_it_is_reported(field, browser):
    school, klass = f"school-{field.county}", "五年级一班"
    pupil = await field.child("王小军", school_id=school, class_name=klass)
    await field.helper("class_teacher", "teacher-wang", school_id=school, class_name=klass)
    start = today_local() - timedelta(days=7 + today_local().weekday())  # Monday of last week: three school days
    r = await field.api("registry", "POST", f"/api/v1/children/{pupil}/absences", json={
        "from_date": start.isoformat(), "to_date": (start + timedelta(days=2)).isoformat(), "school_days": 3, "excused": False})
    assert r.status_code == 201, r.text
    case: dict = {}

    async def stage_is(stage: str) -> bool:
        nonlocal case
        found = (await field.api("visits", "GET", "/api/v1/referrals", params={"policy": "dropout"})).json()["items"]
        case = next((c for c in found if c["child_id"] == pupil), {})
        return case.get("stage") == stage

    await wait_until(lambda: stage_is("persuasion"), what="the case opened by the absences")
    context, page = await field.phone(browser, field.token(Role.school, field.county, "teacher-wang", school=school))
    try:
        row = page.locator(f"[data-test=referrals] [data-referral='{case['id']}']")
        await expect(row).to_contain_text("王小军")
        await expect(row).to_contain_text("学校劝返")
        await expect(row.locator("[data-test=deadline]")).to_be_visible()
        await page.screenshot(path=screenshot_path("field-teacher-cases"), full_page=True)
        for view in ("孩子想去打工，家里缺劳力", "还是不同意回校"):
            await row.locator("[data-test=persuade]").click()
            await page.select_option("#outcome", "refused")
            await page.select_option("#cause", "work")
            await page.fill("#guardian-view", view)
            await page.screenshot(path=screenshot_path("field-teacher-persuasion"), full_page=True)
            await page.locator("[data-test=send]").click()
            await expect(page.locator("[data-test=message]")).to_contain_text("王小军")
        await expect(page.locator("[data-test=outbox] li[data-what=persuasion_visit][data-state=sent]")).to_have_count(2)

        await wait_until(lambda: stage_is("reported"), what="the case reported after two refusals")
        done = (await field.api("visits", "GET", f"/api/v1/referrals/{case['id']}")).json()
        assert done["refusals"] == 2
        assert [(a["outcome"], a["cause"], a["guardian_view"]) for a in done["attempts"]] == [
            ("refused", "work", "孩子想去打工，家里缺劳力"), ("refused", "work", "还是不同意回校")]
    finally:
        await context.close()


async def test_opened_with_no_signal_the_app_shows_the_saved_lists_and_queues_a_registration(field, browser):
    existing = await field.child("郑小梅")
    context, page = await field.phone(browser, field.token(Role.village_supervisor, field.village, "supervisor-zheng"))
    try:
        await expect(page.locator("[data-test=children]")).to_contain_text("郑小梅")
        # The service worker holds the app shell once it controls the page.
        await page.wait_for_function("navigator.serviceWorker.controller !== null")
        await context.set_offline(True)
        await page.reload()
        await expect(page.locator("[data-test=offline]")).to_be_visible()
        await expect(page.locator(f"[data-test=children] [data-child='{existing}']")).to_contain_text("郑小梅")
        await page.screenshot(path=screenshot_path("field-offline-reloaded"), full_page=True)

        await page.locator("[data-test=register]").click()
        await page.fill("#name", "郑小雨")
        await page.fill("#birth", "2017-03-01")
        await page.fill("#guardian", "郑奶奶")
        await page.locator("[data-test=send]").click()
        queued = page.locator("[data-test=outbox] li[data-what=register]")
        await expect(queued).to_have_attribute("data-state", "queued")
        client_id = await queued.get_attribute("data-client-id")
        assert (await field.api("registry", "GET", f"/api/v1/children/{client_id}")).status_code == 404

        await context.set_offline(False)
        await expect(queued).to_have_attribute("data-state", "sent", timeout=20_000)
        child = (await field.api("registry", "GET", f"/api/v1/children/{client_id}")).json()
        assert (child["name"], child["village_code"], child["guardian"]["name"]) == ("郑小雨", field.village, "郑奶奶")
        found = (await field.api("registry", "GET", "/api/v1/children", params={"q": "郑小雨", "region": field.village})).json()
        assert found["total"] == 1
    finally:
        await context.close()
