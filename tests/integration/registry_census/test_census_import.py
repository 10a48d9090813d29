"""Census import (摸底排查) against real PostgreSQL and Redis: report, events, idempotence, resume, template."""

from __future__ import annotations

import asyncio
import dataclasses
import io
from uuid import UUID

from openpyxl import load_workbook
from sqlalchemy import text

from services.registry.app import SPEC as REGISTRY
from services.registry.service_layer.census import CensusImporter
from shared.auth import Role
from tests.conftest import scalar
from tests.integration.registry_census.rosters import HEADERS, csv_bytes, good, id_number, row, xlsx
from tests.support import running_app, token, wait_until

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


async def upload(client, settings, content: bytes, name: str = "roster.xlsx", role: Role = Role.admin, region: str = ""):
    return await client.post(
        "/api/v1/imports/census", files={"file": (name, content)}, headers=token(settings, role, region)
    )


async def events_of(engines, child_id) -> list[str]:
    async with engines["registry"].connect() as conn:
        rows = await conn.execute(text("SELECT event_type FROM outbox WHERE aggregate_id = :id ORDER BY id"), {"id": str(child_id)})
        return [r[0] for r in rows]


async def test_report_names_every_bad_row_and_good_rows_are_registered_with_their_events(settings, engines):
    township = "410523100"
    village = township + "301"
    rows = [
        good(1, village),  # row 2
        row(good(2, village), 身份证号="410523201403030045"),  # row 3: wrong check character (4 is right)
        row(good(3, village), 性别="未知"),  # row 4
        [None] * len(HEADERS),  # row 5: empty, skipped
        row(good(4, village), 父亲去向=None),  # row 6
        good(5, "410526100301"),  # row 7: another township's village
        row(good(6, village), 监护人电话="12345"),  # row 8
        row(good(7, village), 姓名="+HYPERLINK(\"http://x\")", 出生日期="2015/2/30"),  # row 9
        good(8, village),  # row 10
    ]
    async with running_app(REGISTRY, settings) as (_, client):
        r = await upload(client, settings, xlsx(rows), role=Role.township, region=township)
        assert r.status_code == 201, r.text
        job = r.json()
        assert (job["status"], job["rows_total"], job["registered"], job["rejected"]) == ("done", 8, 2, 6)

        report = {x["row"]: [(e["column"], e["type"]) for e in x["errors"]] for x in job["report"]}
        assert report == {
            3: [("身份证号", "id_number_check")],
            4: [("性别", "cell_choice")],
            6: [("父亲去向", "missing")],
            7: [("村(社区)代码", "outside_region")],
            8: [("监护人电话", "phone_format")],
            9: [("出生日期", "cell_date")],
        }
        assert all(e["message_zh"] and e["message_en"] for x in job["report"] for e in x["errors"])

        registered = (await client.get(f"/api/v1/children?region={village}", headers=token(settings))).json()["items"]
        assert sorted(c["name"] for c in registered) == ["儿童1", "儿童8"]
        for child in registered:
            assert await events_of(engines, child["id"]) == [
                "registry.child.registered", "registry.guardian.assigned", "registry.child.contacts",
            ]

        r = await client.get(f"/api/v1/imports/{job['id']}/report.xlsx", headers=token(settings, Role.township, township))
        assert r.status_code == 200 and r.headers["content-type"] == XLSX
        sheet = load_workbook(io.BytesIO(r.content)).worksheets[0]
        cells = {c.row: c for c in sheet["A"]}
        assert cells[1].value == "错误"
        assert {n for n, c in cells.items() if n > 1 and c.value} == {3, 4, 6, 7, 8, 9}
        assert "身份证号" in cells[3].value and "校验码" in cells[3].value
        name = sheet.cell(9, 1 + HEADERS.index("姓名") + 1)
        assert name.value == "'+HYPERLINK(\"http://x\")" and name.data_type == "s"  # text, never a formula


async def test_the_same_roster_imported_twice_registers_nobody_twice(settings, engines):
    village = "410523100302"
    content = csv_bytes([good(n, village) for n in range(4)] + [good(1, village)], encoding="gb18030")
    async with running_app(REGISTRY, settings) as (_, client):
        first = (await upload(client, settings, content, "名单.csv")).json()
        # The fifth row is the second one again: recognised within the same roster.
        assert (first["registered"], first["already_registered"]) == (4, 1)
        second = (await upload(client, settings, content, "名单.csv")).json()
        assert (second["registered"], second["already_registered"], second["rejected"]) == (0, 5, 0)

    async with engines["registry"].connect() as conn:
        ids = dict((await conn.execute(text(
            "SELECT row_number, child_id FROM census_import_rows WHERE import_id = :id AND outcome = 'registered'"
        ), {"id": first["id"]})).all())
    assert {x["row"]: UUID(x["child_id"]) for x in second["report"]} == {**ids, 6: ids[3]}
    assert await scalar(engines["registry"], "SELECT count(*) FROM children WHERE village_code = :v", v=village) == 4


async def test_an_interrupted_job_resumes_from_its_last_chunk_without_duplicates(settings, engines):
    village = "410523100303"
    rows = [good(n, village, id_number=None) for n in range(1100)]
    rows[700] = row(rows[700], 性别="?")  # one bad row in a later chunk
    rows.append(rows[10])  # the same child again, last: already registered by the first chunk
    total = len(rows)
    # Without the service's own importer, so the test decides which worker holds the job when.
    async with running_app(dataclasses.replace(REGISTRY, background=()), settings) as (app, client):
        runtime = app.state.runtime
        r = await upload(client, settings, csv_bytes(rows, encoding="utf-8-sig"), "big.csv")
        assert r.status_code == 202 and r.json()["status"] == "queued", r.text
        job_id = r.json()["id"]

        crashed = CensusImporter(runtime)
        job = await crashed.claim()
        assert str(job.id) == job_id
        assert await crashed.step(job) is True  # one chunk committed; then the worker "dies" holding the lease
        progress = (await client.get(f"/api/v1/imports/{job_id}", headers=token(settings))).json()
        assert (progress["status"], progress["rows_done"], progress["rows_total"]) == ("running", 500, total)
        assert await CensusImporter(runtime).claim() is None  # the lease still holds

        async with engines["registry"].begin() as conn:  # the lease lapses, as it would a minute later
            await conn.execute(text("UPDATE census_imports SET lease_until = now() - interval '1 second' WHERE id = :id"), {"id": job_id})
        stop = asyncio.Event()
        worker = asyncio.create_task(CensusImporter(runtime).run(stop))

        async def finished() -> bool:
            return (await client.get(f"/api/v1/imports/{job_id}", headers=token(settings))).json()["status"] == "done"

        await wait_until(finished, timeout=60, what="the resumed import to finish")
        stop.set()
        await worker
        job = (await client.get(f"/api/v1/imports/{job_id}", headers=token(settings))).json()

    assert (job["rows_done"], job["registered"], job["already_registered"], job["rejected"]) == (total, 1099, 1, 1)
    assert [(x["row"], x["outcome"]) for x in job["report"]] == [(702, "rejected"), (total + 1, "already_registered")]
    registry = engines["registry"]
    assert await scalar(registry, "SELECT count(*) FROM children WHERE village_code = :v", v=village) == 1099
    assert await scalar(registry, "SELECT count(DISTINCT row_number) FROM census_import_rows WHERE import_id = :id", id=job_id) == total
    assert await scalar(registry, "SELECT count(*) FROM census_import_rows WHERE import_id = :id", id=job_id) == total
    assert await scalar(
        registry, "SELECT count(*) FROM outbox o JOIN children c ON o.aggregate_id = c.id::text WHERE c.village_code = :v", v=village,
    ) == 3 * 1099


async def test_the_template_example_row_imports(settings, engines):
    async with running_app(REGISTRY, settings) as (_, client):
        r = await client.get("/api/v1/imports/census/template", headers=token(settings, Role.school, "410523"))
        assert r.status_code == 200 and r.headers["content-type"] == XLSX
        job = (await upload(client, settings, r.content, "模板.xlsx", Role.school, "410523")).json()
        assert (job["status"], job["registered"], job["rejected"]) == ("done", 1, 0), job["report"]
        child_id = (await client.get("/api/v1/children?region=410523100201", headers=token(settings))).json()["items"][0]["id"]
        child = (await client.get(f"/api/v1/children/{child_id}", headers=token(settings))).json()
    assert (child["name"], child["gender"], child["birth_date"], child["left_behind_type"]) == ("王小明", "male", "2015-03-02", "both_parents_out")
    assert child["guardian"] == {"name": "王奶奶", "relationship": "grandparent", "capacity": "limited", "phone": "13900139000"}
    assert child["risk_categories"] == ["dibao_family"] and child["id_number_masked"] == "4105**********0011"


async def test_who_may_import_and_what_is_refused_as_a_file(settings):
    async with running_app(REGISTRY, settings) as (_, client):
        r = await upload(client, settings, xlsx([good(1)]), role=Role.helper)
        assert r.status_code == 403
        r = await upload(client, settings, csv_bytes([], headers=["姓名", "性别", "出生日期"]), "x.csv")
        assert r.status_code == 422
        error = r.json()["errors"][0]
        assert (error["field"], error["type"]) == ("file", "file_columns") and "户籍状况" in error["message_zh"]
        r = await upload(client, settings, b"\xd0\xcf\x11\xe0old excel", "x.xls")
        assert r.status_code == 422 and r.json()["errors"][0]["type"] == "file_format"
        other = (await upload(client, settings, xlsx([good(1)]))).json()["id"]
        r = await client.get(f"/api/v1/imports/{other}", headers=token(settings, Role.township, "410526100"))
        assert r.status_code == 404  # an import of another area is not revealed


async def test_an_id_number_already_on_file_or_twice_in_the_roster_is_refused_naming_the_child(settings, engines):
    village = "410523100311"
    first = good(1, village)
    number = first[HEADERS.index("身份证号")]
    async with running_app(REGISTRY, settings) as (_, client):
        assert (await upload(client, settings, xlsx([first]))).json()["registered"] == 1
        # Row 2: the same number as the archive on file; row 4: the same as row 3 of this roster.
        again = [
            row(good(2, village), 身份证号=number, 出生日期=first[HEADERS.index("出生日期")], 性别=first[HEADERS.index("性别")]),
            good(3, village),
            row(good(4, village), 姓名="另一个", 出生日期=good(3, village)[HEADERS.index("出生日期")],
                身份证号=good(3, village)[HEADERS.index("身份证号")]),
        ]
        job = (await upload(client, settings, xlsx(again))).json()
    assert (job["registered"], job["rejected"]) == (1, 2), job["report"]
    report = {x["row"]: [(e["column"], e["type"]) for e in x["errors"]] for x in job["report"]}
    assert report == {2: [("身份证号", "id_number_registered")], 4: [("身份证号", "id_number_registered")]}
    assert await scalar(engines["registry"], "SELECT count(*) FROM children WHERE village_code = :v", v=village) == 2


async def test_a_row_the_database_refuses_is_rejected_alone_and_the_others_are_registered(settings, engines):
    village = "410523100312"
    rows = [good(n, village) for n in range(3)]
    rows[1] = row(rows[1], 班级="三年级\x00二班")  # valid for the API, but PostgreSQL text holds no NUL character
    async with running_app(REGISTRY, settings) as (_, client):
        job = (await upload(client, settings, csv_bytes(rows), "名单.csv")).json()
    assert (job["registered"], job["rejected"]) == (2, 1), job["report"]
    [refused] = job["report"]
    assert (refused["row"], [e["type"] for e in refused["errors"]]) == (3, ["database_refused"])
    assert await scalar(engines["registry"], "SELECT count(*) FROM children WHERE village_code = :v", v=village) == 2
    assert await scalar(
        engines["registry"], "SELECT count(*) FROM outbox o JOIN children c ON o.aggregate_id = c.id::text WHERE c.village_code = :v",
        v=village,
    ) == 2 * 3


async def test_progress_reads_only_the_rows_to_report_and_new_archives_have_time_ordered_ids(settings, engines):
    village = "410523100313"
    rows = [good(n, village, id_number=None) for n in range(600)]
    rows[450] = row(rows[450], 性别="?")
    async with running_app(REGISTRY, settings) as (_, client):
        r = await upload(client, settings, csv_bytes(rows), "名单.csv")
        job_id = r.json()["id"]

        async def finished() -> bool:
            return (await client.get(f"/api/v1/imports/{job_id}", headers=token(settings))).json()["status"] == "done"

        await wait_until(finished, timeout=60, what="the import to finish")
        job = (await client.get(f"/api/v1/imports/{job_id}", headers=token(settings))).json()
    assert (job["registered"], job["rejected"], [x["row"] for x in job["report"]]) == (599, 1, [452])
    async with engines["registry"].connect() as conn:
        # The progress query (entrypoints/imports.py): through the index of the rows to report, not the
        # primary key, which walks every registered row of the import (migration 0011).
        plan = "\n".join(r[0] for r in await conn.execute(text(
            "EXPLAIN SELECT row_number, outcome, child_id, errors FROM census_import_rows"
            " WHERE import_id = :id AND outcome <> 'registered' ORDER BY row_number LIMIT 1000"
        ), {"id": job_id}))
        ids = [r[0] for r in await conn.execute(text(
            "SELECT child_id FROM census_import_rows WHERE import_id = :id AND outcome = 'registered' ORDER BY row_number"
        ), {"id": job_id})]
    assert "ix_census_import_rows_problems" in plan, plan
    # Version 7, growing in the roster's order: the indexes keyed by child take them at their right end.
    assert all(i.version == 7 for i in ids) and ids == sorted(ids)


async def test_a_chunk_failing_for_good_fails_the_job_with_its_reason_and_an_outage_is_waited_out(settings, engines, monkeypatch):
    import asyncpg

    from services.registry.service_layer import census as census_layer

    village = "410523100314"
    rows = [good(n, village, id_number=None) for n in range(1200)]
    failure: list[BaseException] = []
    real_insert = CensusImporter._insert

    async def insert(self, session, job, pending):
        if failure and pending and pending[0].checked.row > 501:  # the second chunk on (rows 2..501 are the first)
            raise failure[0]
        return await real_insert(self, session, job, pending)

    monkeypatch.setattr(CensusImporter, "_insert", insert)
    async with running_app(dataclasses.replace(REGISTRY, background=()), settings) as (app, client):
        runtime = app.state.runtime
        job_id = (await upload(client, settings, csv_bytes(rows), "名单.csv")).json()["id"]
        stop = asyncio.Event()

        async def job() -> dict:
            return (await client.get(f"/api/v1/imports/{job_id}", headers=token(settings))).json()

        # An outage: noted on the job, which keeps its place and goes on once it is over.
        failure.append(asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"))
        worker = CensusImporter(runtime, poll_ms=20, lease=census_layer.timedelta(milliseconds=200))
        running = asyncio.create_task(worker.run(stop))

        async def noted() -> bool:
            return (await job())["error"] is not None

        await wait_until(noted, timeout=30, what="the outage to be noted")
        assert ((j := await job())["status"], j["rows_done"]) == ("running", 500)
        failure.clear()

        async def done() -> bool:
            return (await job())["status"] == "done"

        await wait_until(done, timeout=60, what="the job to go on after the outage")
        # A statement PostgreSQL refuses whatever the moment: the job fails with the reason, once.
        job_id = (await upload(client, settings, csv_bytes([good(n, "410523100315", id_number=None) for n in range(1200)]),
                               "名单2.csv")).json()["id"]
        failure.append(asyncpg.FeatureNotSupportedError("COPY FROM not supported with row-level security"))

        async def failed() -> bool:
            return (await job())["status"] == "failed"

        await wait_until(failed, timeout=30, what="the job to fail")
        stop.set()
        await running
        failed_job = await job()
    assert failed_job["error"] == "FeatureNotSupportedError: COPY FROM not supported with row-level security"
    assert (failed_job["rows_done"], failed_job["registered"]) == (500, 500) and failed_job["finished_at"]
    assert await CensusImporter(runtime).claim() is None  # not taken up again
    assert census_layer.transient(asyncpg.DeadlockDetectedError("deadlock")) and not census_layer.transient(TypeError("bug"))
