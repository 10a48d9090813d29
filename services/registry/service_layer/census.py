"""The census import job (摸底排查导入): an uploaded roster registered chunk by chunk.

The upload and its job are rows in PostgreSQL, so a restart loses nothing. A
worker takes a job that nobody holds (``FOR UPDATE SKIP LOCKED``, then a lease
on the row) and registers it a chunk at a time: the chunk's children, their
events (outbox), their natural keys, each row's outcome and the job's resume
point commit in one transaction. A row is registered whole or not at all.
While a chunk's transaction waits on PostgreSQL, the next chunk is read and checked
(a task of the same event loop, a few rows at a time: a thread would make every
query and XADD of the process wait for the interpreter lock).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from itertools import islice
from operator import itemgetter
from typing import Any
from uuid import UUID, uuid4

import asyncpg
from pydantic import ValidationError
from sqlalchemy import func, insert, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import DataError, DBAPIError, DisconnectionError, IntegrityError

from services.registry.adapters.id_vault import IdVault
from services.registry.adapters.census_batch import BatchUnitOfWork, BufferedOutbox, RowWrites
from services.registry.adapters.orm import census_import_rows, census_imports, children
from services.registry.domain import census
from services.registry.domain.model import OUTSIDE_THE_AREA
from services.registry.domain.rules import RuleViolation
from services.registry.entrypoints.schemas import ChildIn
from services.registry.service_layer.handlers import register_child
from shared.errors import describe
from shared.logs import log_fields
from shared.security.rls import hidden_by_the_scope
from shared.tasks import sleep_unless_stopped

log = logging.getLogger("shouhu.registry.census")

CHUNK_ROWS = 500
CHECK_SLICE = 20  # rows checked between two turns of the event loop (about a millisecond)
# A row the database refuses (e.g. a NUL character in a text), through SQLAlchemy or asyncpg itself (COPY, arrays).
_REFUSED = (IntegrityError, DataError, asyncpg.IntegrityConstraintViolationError, asyncpg.DataError)
LEASE = timedelta(seconds=60)
# Where a job is over: "failed" when a chunk failed for a reason that trying again would not remove.
FINISHED = ("done", "failed")
# SQLSTATE classes of an outage, which the job waits out: connection exception, transaction rollback
# (serialization failure, deadlock), insufficient resources, operator intervention (shutdown, cancel), system error.
_TRANSIENT_SQLSTATES = ("08", "40", "53", "57", "58")


def transient(exc: BaseException) -> bool:
    """Whether a chunk's failure is an outage (PostgreSQL or the network away, a connection lost, a
    deadlock): the job then goes on from its last chunk later. Any other failure (a statement PostgreSQL
    refuses whatever the moment, e.g. COPY into a table under row-level security, or a bug) would fail
    the same way on every try: the job fails with its reason instead of retrying for ever."""
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        exc = exc.orig or exc
    sqlstate = getattr(exc, "sqlstate", None)
    if isinstance(sqlstate, str):
        return sqlstate[:2] in _TRANSIENT_SQLSTATES
    return isinstance(exc, (OSError, TimeoutError, asyncpg.ConnectionDoesNotExistError, DisconnectionError))


def _required_by_api(path: str) -> bool:
    model: Any = ChildIn
    for name in path.split("."):
        info = model.model_fields[name]
        if not info.is_required():
            return False
        model = info.annotation
    return True


# ChildIn is the one definition of a valid child: the roster's required columns follow from it.
REQUIRED = frozenset(c.field for c in census.COLUMNS if _required_by_api(c.field))


def open_roster(content: bytes) -> census.Roster:
    return census.Roster(content, REQUIRED)


def template() -> bytes:
    return census.template(REQUIRED)


# ``content_key`` of a roster dropped under retention (``protection.purge_rosters``), followed by the
# day it was dropped; ``content`` is then empty. Never a key's id: those have no colon.
PURGED = "purged:"


class RosterPurged(Exception):
    """The roster of a finished import was dropped under retention; its counts and row outcomes stay."""

    def __init__(self, import_id: UUID, on: str) -> None:
        super().__init__(import_id)
        self.import_id, self.on = import_id, on


def stored_roster(vault: IdVault, import_id: UUID, content: bytes, content_key: str | None) -> bytes:
    """The roster as uploaded, from its ``census_imports`` row.

    Sealed rather than dropped once the import is done: the job reads the roster again on every
    resume (a restart, a lapsed lease: ``last_row`` is a position in the file), and the report
    (``report.xlsx``: the roster with its 错误 column, to correct and upload again) is built from it
    after the import has finished. So the roster stays, sealed with the ID numbers' key ring (AES-GCM,
    bound to the import's id) and re-sealed by ``rotate-keys``. ``content_key`` None: stored in clear
    before migration 0007 (read as is until ``rotate-keys`` seals it). Raises RosterPurged once
    retention has dropped it."""
    if content_key is not None and content_key.startswith(PURGED):
        raise RosterPurged(import_id, content_key.removeprefix(PURGED))
    return content if content_key is None else vault.open_roster(content, import_id)


@dataclass
class Checked:
    """A data row after reading and validation: the API body when valid, else the reasons."""

    row: int
    body: dict[str, Any] | None
    key: str | None = None
    errors: list[dict] = field(default_factory=list)


def check_row(parsed: census.RosterRow, headers: dict[str, str], *, region: str, key: str) -> Checked:
    """Validate a row exactly as POST /children validates a body (ChildIn), in the caller's area."""
    errors = list(parsed.errors)
    unreadable = {e["field"] for e in errors}
    try:
        child = ChildIn.model_validate(parsed.data)
    except ValidationError as exc:
        for err in exc.errors():
            described = describe(err)
            column = _column(described["field"])
            if column not in unreadable:  # a cell that could not be read is already reported
                errors.append({"column": headers.get(column) if column else None, **described})
        return Checked(parsed.number, None, errors=errors)
    if errors:
        return Checked(parsed.number, None, errors=errors)
    if not child.village_code.startswith(region):
        return Checked(parsed.number, None, errors=[census.problem(
            headers["village_code"], "village_code", "outside_region", "村（社区）代码不在您的辖区内",
            "the village is outside your area",
        )])
    body = child.model_dump(exclude={"client_id"})  # a phone's retry key: a roster row has none
    return Checked(parsed.number, body, census.natural_key(body, key))


def _column(path: str) -> str | None:
    """The roster column of an error's field path (``risk_categories.0`` -> ``risk_categories``)."""
    parts = path.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in census.BY_FIELD:
            return ".".join(parts[:n])
    return None


@dataclass
class Outcome:
    row: int
    outcome: str  # registered | already_registered | rejected
    child_id: UUID | None = None
    errors: list[dict] | None = None


def _already(row: int, child_id: UUID) -> Outcome:
    return Outcome(row, "already_registered", child_id, [census.problem(
        None, None, "already_registered", f"已登记（儿童编号 {child_id}）", f"already registered (child {child_id})",
    )])


@dataclass
class _Pending:
    checked: Checked
    child_id: UUID
    writes: dict


@dataclass
class _Job:
    id: UUID
    actor: str
    region: str
    last_row: int
    rows: Iterator[census.RosterRow]
    headers: dict[str, str]
    ahead: asyncio.Task | None = None  # the next chunk, read and checked while this one's transaction runs

    def drop(self) -> None:
        """Given up (no longer ours, or a chunk failed): the chunk read ahead is not needed."""
        if self.ahead is not None:
            self.ahead.cancel()
            self.ahead = None


async def _driver(session):
    """The asyncpg connection of the session's transaction, for COPY and array parameters."""
    return (await (await session.connection()).get_raw_connection()).driver_connection


_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _records(table, rows: list[dict[str, Any]]) -> tuple[list[str], list[tuple]]:
    """``rows`` (dicts with the same keys) as COPY records: their columns, and a tuple a row, JSONB as text."""
    columns = list(rows[0])
    values = itemgetter(*columns) if len(columns) > 1 else lambda r: (r[columns[0]],)
    json_at = [i for i, c in enumerate(columns) if isinstance(table.c[c].type, JSONB)]
    if not json_at:
        return columns, [values(r) for r in rows]
    records = []
    for r in rows:
        record = list(values(r))
        for i in json_at:
            if record[i] is not None:
                record[i] = _json(record[i])
        records.append(tuple(record))
    return columns, records


# The registry's tables under row-level security (migration 0006_access, PROTECTED): PostgreSQL refuses
# COPY FROM into them ("COPY FROM not supported with row-level security") for any role but a superuser's.
UNDER_RLS = frozenset(("children", "agreements", "absences", "growth_notes"))
_json_rows = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str).encode  # UUIDs and dates as text


async def _copy(session, table, rows: list[dict[str, Any]]) -> None:
    """Rows into ``table`` in the session's transaction: by COPY (many times faster than INSERTs), or, into
    a table under row-level security, by one INSERT of the rows as a JSON array, which the policies check
    row by row (a row outside the transaction's scope fails the statement)."""
    driver = await _driver(session)
    if table.name in UNDER_RLS:
        names = ", ".join(f'"{c}"' for c in rows[0])
        await driver.execute(
            f"INSERT INTO {table.name} ({names}) SELECT {names} FROM jsonb_populate_recordset(NULL::{table.name}, $1::jsonb)",
            _json_rows(rows),
        )
        return
    columns, records = _records(table, rows)
    await driver.copy_records_to_table(table.name, columns=columns, records=records)




class CensusImporter:
    """Submits rosters and processes import jobs; ``run`` is the worker loop of the registry process."""

    def __init__(self, runtime, *, chunk_rows: int = CHUNK_ROWS, lease: timedelta = LEASE, poll_ms: int = 1000) -> None:
        self.rt, self.chunk_rows, self.lease, self.poll = runtime, chunk_rows, lease, poll_ms / 1000
        self.name = f"census-{uuid4().hex[:12]}"
        spec, settings = runtime.spec, runtime.settings
        self.outbox = BufferedOutbox(spec.outbox, spec.name, settings.stream_namespace)
        self.vault = IdVault.from_settings(settings)

    async def submit(self, *, filename: str, content: bytes, actor: str, region: str) -> UUID:
        """Store the roster as a job; a roster of one chunk or less is processed at once, here.
        Raises RuleViolation (field ``file``) when the file cannot be read as a roster."""
        roster = await asyncio.to_thread(open_roster, content)
        total = await asyncio.to_thread(roster.count)
        now = total <= self.chunk_rows
        job_id = uuid4()
        sealed = await asyncio.to_thread(self.vault.seal_roster, content, job_id)
        async with self.rt.sessionmaker() as session, session.begin():
            await session.execute(insert(census_imports).values(
                id=job_id, filename=filename, format=roster.format, content=sealed, content_key=self.vault.keys.current,
                actor=actor, region=region,
                status="running" if now else "queued", rows_total=total,
                # Held by this request while it processes; the worker takes over if the request dies.
                worker=self.name if now else None, lease_until=func.now() + self.lease if now else None,
            ))
        if now:
            job = await self._open(job_id)
            while job is not None and await self.step(job):
                pass
        return job_id

    async def run(self, stop: asyncio.Event) -> None:
        """Process queued jobs, and jobs whose worker's lease lapsed, until ``stop``."""
        while not stop.is_set():
            job = None
            try:
                job = await self.claim()
                if job is not None:
                    await self.process(job, stop)
                    continue
            except Exception as exc:
                if job is not None and not transient(exc):
                    log.error("census import failed", extra=log_fields(error=type(exc).__name__))
                    await self._fail(job, exc)
                    continue
                # PostgreSQL away: the job row keeps its place
                log.warning("census import failed; will retry", extra=log_fields(error=type(exc).__name__))
                await self._note_error(exc)
            await sleep_unless_stopped(stop, self.poll)

    async def claim(self) -> _Job | None:
        t = census_imports
        free = (
            select(t.c.id)
            .where(t.c.status.notin_(FINISHED), (t.c.lease_until.is_(None)) | (t.c.lease_until < func.now()))
            .order_by(t.c.created_at)
            .limit(1)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        async with self.rt.sessionmaker() as session, session.begin():
            job_id = await session.scalar(
                update(t).where(t.c.id == free)
                .values(status="running", worker=self.name, lease_until=func.now() + self.lease, updated_at=func.now())
                .returning(t.c.id)
            )
        return await self._open(job_id) if job_id else None

    async def process(self, job: _Job, stop: asyncio.Event) -> None:
        while await self.step(job):
            if stop.is_set():
                job.drop()
                await self._release(job)  # another worker (or this one, restarted) goes on at once
                return

    async def _open(self, job_id: UUID) -> _Job | None:
        t = census_imports
        async with self.rt.sessionmaker() as session:
            row = (await session.execute(
                select(t.c.content, t.c.content_key, t.c.actor, t.c.region, t.c.last_row)
                .where(t.c.id == job_id, t.c.worker == self.name)
            )).first()
        if row is None:
            return None
        roster = await asyncio.to_thread(lambda: open_roster(stored_roster(self.vault, job_id, row.content, row.content_key)))
        return _Job(job_id, row.actor, row.region, row.last_row, roster.rows(after=row.last_row), roster.headers)

    async def _check_chunk(self, job: _Job) -> list[Checked]:
        """The job's next chunk, read and checked ``CHECK_SLICE`` rows at a time, the event loop free between."""
        key, rows, batch = self.rt.settings.id_hash_key, islice(job.rows, self.chunk_rows), []
        while part := [check_row(r, job.headers, region=job.region, key=key) for r in islice(rows, CHECK_SLICE)]:
            batch += part
            await asyncio.sleep(0)
        return batch

    async def step(self, job: _Job) -> bool:
        """Register the next chunk of ``job`` in one transaction; False when the job is done or no longer ours.
        The chunk after it is read and checked meanwhile (the next ``step`` takes it)."""
        ahead, job.ahead = job.ahead, None
        batch = await (ahead or self._check_chunk(job))
        finished = len(batch) < self.chunk_rows
        if not finished:
            job.ahead = asyncio.ensure_future(self._check_chunk(job))
        try:
            committed = await self._commit(job, batch, finished)
        except BaseException:
            job.drop()
            raise
        if not committed:
            job.drop()
            return False
        if self.rt.relay is not None:
            self.rt.relay.wake()  # the chunk's events are committed: published now, not at the relay's next poll
        job.last_row = batch[-1].row if batch else job.last_row
        return not finished

    async def _commit(self, job: _Job, batch: list[Checked], finished: bool) -> bool:
        """The chunk's registrations, row outcomes and the job's progress in one transaction; False
        when the job is no longer ours."""
        t = census_imports
        async with self.rt.sessionmaker() as session, session.begin():
            last_row = await session.scalar(
                select(t.c.last_row).where(t.c.id == job.id, t.c.worker == self.name).with_for_update()
            )
            if last_row != job.last_row:
                return False  # the lease lapsed and another worker has gone on
            outcomes = await self._register(session, job, batch)
            if outcomes:
                await _copy(session, census_import_rows, [
                    {"import_id": job.id, "row_number": o.row, "outcome": o.outcome, "child_id": o.child_id, "errors": o.errors}
                    for o in outcomes
                ])
            count = {k: sum(o.outcome == k for o in outcomes) for k in ("registered", "already_registered", "rejected")}
            await session.execute(update(t).where(t.c.id == job.id).values(
                last_row=batch[-1].row if batch else last_row,
                rows_done=t.c.rows_done + len(batch),
                registered=t.c.registered + count["registered"],
                already_registered=t.c.already_registered + count["already_registered"],
                rejected=t.c.rejected + count["rejected"],
                status="done" if finished else "running",
                finished_at=func.now() if finished else None,
                lease_until=None if finished else func.now() + self.lease,
                worker=None if finished else self.name,
                error=None,
                updated_at=func.now(),
            ))
        return True

    async def _register(self, session, job: _Job, batch: list[Checked]) -> list[Outcome]:
        outcomes = {c.row: Outcome(c.row, "rejected", errors=c.errors) for c in batch if c.body is None}
        valid = [c for c in batch if c.body is not None]
        existing = dict(await (await _driver(session)).fetch(
            "SELECT key, child_id FROM census_keys WHERE key = ANY($1::text[])", [c.key for c in valid],
        )) if valid else {}
        pending: list[_Pending] = []
        open_id_numbers = await self._open_id_numbers(session, valid)
        for c in valid:
            if c.key in existing:  # registered before, or by an earlier row of this roster
                outcomes[c.row] = _already(c.row, existing[c.key])
                continue
            uow = BatchUnitOfWork(RowWrites(session), self.outbox, open_id_numbers, actor=job.actor, import_id=job.id)
            try:
                child = await register_child(uow, c.body, actor=job.actor, vault=self.vault)
            except RuleViolation as v:
                field_path = _column(v.field or "")
                outcomes[c.row] = Outcome(c.row, "rejected", errors=[census.problem(
                    job.headers.get(field_path) if field_path else None, v.field, v.code, v.zh, v.en)])
                continue
            existing[c.key] = child.id
            if child.id_number_hash:
                open_id_numbers[child.id_number_hash] = child.id
            pending.append(_Pending(c, child.id, uow.session.committed))
        try:
            async with session.begin_nested():
                registered = await self._insert(session, job, pending)
        except _REFUSED:
            # One row the database refuses must not cost the others: each row in its own savepoint.
            registered = []
            for p in pending:
                try:
                    async with session.begin_nested():
                        registered += await self._insert(session, job, [p])
                except _REFUSED as exc:
                    outcomes[p.checked.row] = Outcome(p.checked.row, "rejected", errors=[census.problem(
                        None, None, "database_refused", "保存失败，该行未登记，请联系管理员",
                        f"the database refused the row ({type(getattr(exc, 'orig', exc)).__name__})",
                    )])
        outcomes |= {o.row: o for o in registered}
        return sorted(outcomes.values(), key=lambda o: o.row)

    async def _open_id_numbers(self, session, valid: list[Checked]) -> dict[str, UUID]:
        """The chunk's ID numbers already on open archives, in one query instead of one per row."""
        hashes = [self.vault.hash(c.body["id_number"]) for c in valid if c.body.get("id_number")]
        if not hashes:
            return {}
        found = dict(await (await _driver(session)).fetch(
            "SELECT id_number_hash, id FROM children WHERE id_number_hash = ANY($1::text[]) AND archive_status = 'open'", hashes,
        ))
        # A township's import in the request sees its own area only; a number is one child's province-wide.
        if unseen := [h for h in hashes if h not in found]:
            elsewhere = select(children.c.id_number_hash).where(
                children.c.id_number_hash.in_(unseen), children.c.archive_status == "open")
            found |= {h: OUTSIDE_THE_AREA for h, in await hidden_by_the_scope(session, elsewhere)}
        return found

    async def _insert(self, session, job: _Job, pending: list[_Pending]) -> list[Outcome]:
        """Insert the natural keys, then the children and events of the rows whose key was still free."""
        if not pending:
            return []
        driver = await _driver(session)
        won = {r[0] for r in await driver.fetch(
            "INSERT INTO census_keys (key, child_id, import_id, row_number)"
            " SELECT k, c, $3, n FROM unnest($1::text[], $2::uuid[], $4::int[]) AS t (k, c, n)"
            " ON CONFLICT DO NOTHING RETURNING key",
            [p.checked.key for p in pending], [p.child_id for p in pending], job.id, [p.checked.row for p in pending],
        )}
        lost = [p for p in pending if p.checked.key not in won]  # another import registered them meanwhile
        winners = {}
        if lost:
            winners = dict(await driver.fetch(
                "SELECT key, child_id FROM census_keys WHERE key = ANY($1::text[])", [p.checked.key for p in lost],
            ))
        rows: dict = {}
        for p in pending:
            if p.checked.key in won:
                for table, values in p.writes.items():
                    rows.setdefault(table, []).extend(values)
        for table, values in rows.items():
            await _copy(session, table, values)
        return [
            Outcome(p.checked.row, "registered", p.child_id) if p.checked.key in won else _already(p.checked.row, winners[p.checked.key])
            for p in pending
        ]

    async def _release(self, job: _Job) -> None:
        t = census_imports
        async with self.rt.sessionmaker() as session, session.begin():
            await session.execute(
                update(t).where(t.c.id == job.id, t.c.worker == self.name).values(worker=None, lease_until=None)
            )

    async def _fail(self, job: _Job, exc: Exception) -> None:
        """The job is over, failed: its reason on the row (``error``), its committed chunks stay registered
        (a corrected roster uploaded again recognises them)."""
        job.drop()
        t = census_imports
        try:
            async with self.rt.sessionmaker() as session, session.begin():
                await session.execute(
                    update(t).where(t.c.id == job.id, t.c.worker == self.name, t.c.status.notin_(FINISHED))
                    .values(status="failed", error=f"{type(exc).__name__}: {exc}"[:2000], finished_at=func.now(),
                            worker=None, lease_until=None, updated_at=func.now())
                )
        except Exception:
            pass  # the database itself is away: the lease lapses and the job is tried again

    async def _note_error(self, exc: Exception) -> None:
        """Operators see why a job does not move on its row (the row stays claimable after its lease)."""
        t = census_imports
        try:
            async with self.rt.sessionmaker() as session, session.begin():
                await session.execute(
                    update(t).where(t.c.worker == self.name, t.c.status.notin_(FINISHED))
                    .values(error=f"{type(exc).__name__}: {exc}"[:2000], updated_at=func.now())
                )
        except Exception:
            pass  # the database itself is away: nothing to note it in
