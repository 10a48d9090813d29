"""The visits service's stores in PostgreSQL."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from uuid import UUID

from sqlalchemy import (
    ARRAY, Date, String, and_, any_, bindparam, case, cast, func, insert, literal, literal_column, null, or_, select, tuple_,
    union_all, update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.visits.adapters.orm import (
    activities, activity_children, child_contacts, children, concerns, county_terms, helpers, overdue_windows,
    pairings, record_corrections, timers, visit_records, visit_rules,
)
from services.visits.domain.consent import CONSENT_ROLES
from services.visits.domain.compliance import ACTIVITY_CONTACT, Contact, PairingSpan, Status, WindowTotals
from services.visits.domain.model import ChildPlace, Helper, Pairing, VisitRecord
from services.visits.domain.rules import VisitRule
from services.visits.domain.windows import Term, Window
from shared.db import among, array_param, columns_of, insert_rows
from shared.contracts.visits_v1 import ContactKind, HelperRole, PairingEndReason, WindowKind

WINDOW_END = "visits.window_end"  # the timer kind: a child-rule-window has ended

_CHILD_KEYS = ("child_id", "village_code", "school_id", "class_name", "closed_on", "consent_withdrawn_on",
               "consent_given_on")
_CHILD = [children.c[k] for k in _CHILD_KEYS]
_HELPER = [helpers.c[k] for k in ("id", "name", "role", "organisation", "region_code", "phone", "school_id",
                                   "class_name", "account")]
_PAIRING = [pairings.c[k] for k in ("id", "helper_id", "child_id", "started_on", "ended_on", "end_reason", "version")]
_RECORD = [visit_records.c[k] for k in ("id", "child_id", "helper_id", "helper_role", "kind", "visited_on",
                                         "observations", "note", "village_code", "version")]


def _helper(row) -> Helper:
    return Helper(**{**row, "role": HelperRole(row["role"])})


def _pairing(row) -> Pairing:
    reason = row["end_reason"]
    return Pairing(**{**row, "end_reason": PairingEndReason(reason) if reason else None})


def _record(row) -> VisitRecord:
    return VisitRecord(**{**row, "helper_role": HelperRole(row["helper_role"]), "kind": ContactKind(row["kind"])})


def in_force(day: date):
    """The SQL form of ``PairingSpan.in_force``."""
    return and_(pairings.c.started_on <= day, or_(pairings.c.ended_on.is_(None), pairings.c.ended_on > day))


_CONSENT_ROLES = sorted(r.value for r in CONSENT_ROLES)


def consent_binds(day):
    """The SQL form of ``consent.binding_spans``: a volunteer's pairing does not hold the child to a rule
    on a day inside the last withdrawal of consent (a statutory helper's always does)."""
    return or_(
        helpers.c.role.not_in(_CONSENT_ROLES), children.c.consent_withdrawn_on.is_(None),
        day < children.c.consent_withdrawn_on,
        and_(children.c.consent_given_on.is_not(None), day >= children.c.consent_given_on),
    )


_ADD_CHILDREN = insert_rows(
    children, ("child_id", "village_code", "school_id", "class_name", "left_behind_type")
).on_conflict_do_nothing().returning(children.c.child_id)

_CONTACT_CARD = ("child_id", "child_name", "guardian_name", "guardian_phone", "version")
_contacts = insert_rows(child_contacts, _CONTACT_CARD)
_SAVE_CONTACTS = _contacts.on_conflict_do_update(
    index_elements=["child_id"], set_={k: _contacts.excluded[k] for k in _CONTACT_CARD[1:]}
)


class ChildRepository:
    """Children added in this transaction are held as they stand until one is changed (``update``): a run's
    handlers read them back without a statement, and know nothing of theirs predates the transaction (a
    child's events come in order: its cases, absences and pairings follow its registration)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self._added: dict[UUID, ChildPlace] = {}

    def added(self, child_ids: list[UUID]) -> set[UUID]:
        """Those of ``child_ids`` added in this transaction."""
        return {c for c in child_ids if c in self._added}

    async def get(self, child_id: UUID, *, for_update: bool = False) -> ChildPlace | None:
        stmt = select(*_CHILD).where(children.c.child_id == child_id)
        row = (await self.session.execute(stmt.with_for_update() if for_update else stmt)).mappings().first()
        return ChildPlace(**row) if row else None

    async def get_many(self, child_ids: list[UUID]) -> dict[UUID, ChildPlace]:
        found = {c: self._added[c] for c in child_ids if c in self._added}
        if rest := [c for c in child_ids if c not in found]:
            rows = (await self.session.execute(select(*_CHILD).where(among(children.c.child_id, "child_ids")),
                                               {"child_ids": rest})).mappings()
            found |= {r["child_id"]: ChildPlace(**r) for r in rows}
        return found

    async def add_many(self, places: list[dict], *, teachers_into: "HelperRepository | None" = None) -> None:
        """Children first heard of (``child_id`` and place in each dict); ones already known stay as they are.
        With ``teachers_into``, the class teachers of the places' classes are read in the same statement and
        kept there for the transaction (a run's children are paired with them next: one round trip, not two)."""
        if teachers_into is None:
            added = set(await self.session.scalars(_ADD_CHILDREN, columns_of(places)))
        else:
            wanted = _classes({(p["school_id"], p["class_name"]) for p in places})
            rows = (await self.session.execute(_ADD_CHILDREN_AND_TEACHERS, columns_of(places) | {
                "schools": [s for s, _ in wanted], "classes": [c for _, c in wanted]})).mappings().all()
            added = {r["child_id"] for r in rows if r["child_id"] is not None}
            teachers_into.keep_class_teachers(wanted, [r for r in rows if r["child_id"] is None])
        self._added |= {p["child_id"]: ChildPlace(**{k: p[k] for k in ("child_id", "village_code", "school_id", "class_name")})
                        for p in places if p["child_id"] in added}

    async def update(self, child_id: UUID, **values) -> None:
        self._added.pop(child_id, None)  # read from the row from now on
        await self.session.execute(
            update(children).where(children.c.child_id == child_id).values(**values, updated_at=func.now())
        )

    async def in_class(self, school_id: str, class_name: str) -> list[ChildPlace]:
        rows = await self.session.execute(
            select(*_CHILD).where(
                children.c.school_id == school_id, children.c.class_name == class_name, children.c.closed_on.is_(None)
            )
        )
        return [ChildPlace(**r) for r in rows.mappings()]

    async def save_contacts(self, cards: list[dict]) -> None:
        """Children's contact cards (``child_id`` and the columns of ``child_contacts`` in each, one per
        child), each replacing the one held, in one statement."""
        await self.session.execute(_SAVE_CONTACTS, columns_of(cards))

    async def names(self, child_ids: list[UUID]) -> dict[UUID, str]:
        rows = await self.session.execute(
            select(child_contacts.c.child_id, child_contacts.c.child_name).where(child_contacts.c.child_id.in_(child_ids))
        )
        return dict(rows.all())

    async def move_history(self, from_child: UUID, to_child: UUID) -> None:
        """Merge (重复档案合并): records, concerns and activity places go to the survivor."""
        for table in (visit_records, concerns):
            await self.session.execute(update(table).where(table.c.child_id == from_child).values(child_id=to_child))
        both = select(activity_children.c.activity_id).where(activity_children.c.child_id == to_child)
        await self.session.execute(
            update(activity_children)
            .where(activity_children.c.child_id == from_child, activity_children.c.activity_id.not_in(both))
            .values(child_id=to_child)
        )
        await self.session.execute(activity_children.delete().where(activity_children.c.child_id == from_child))

    async def quietest(self, region: str, limit: int, offset: int) -> tuple[list[tuple[ChildPlace, date | None]], int]:
        """Open children of ``region``, those longest without any contact (never first), with their last contact."""
        # Per child of the region, through the (child, day) indexes: grouping every record of the county
        # network first made each call read all of them (p50 3.4 s a township at a million children, bench).
        last_visit = (
            select(func.max(visit_records.c.visited_on)).where(visit_records.c.child_id == children.c.child_id)
            .scalar_subquery()
        )
        last_activity = (
            select(func.max(activities.c.held_on))
            .join(activity_children, activities.c.id == activity_children.c.activity_id)
            .where(activity_children.c.child_id == children.c.child_id).scalar_subquery()
        )
        last = func.greatest(last_visit, last_activity).label("last_contact")
        where = [children.c.village_code.startswith(region, autoescape=True), children.c.closed_on.is_(None)]
        total = await self.session.scalar(select(func.count()).select_from(children).where(*where))
        rows = await self.session.execute(
            select(*_CHILD, last)
            .where(*where)
            .order_by(last.asc().nulls_first(), children.c.child_id)
            .limit(limit).offset(offset)
        )
        out = []
        for r in rows.mappings():
            out.append((ChildPlace(**{k: r[k] for k in _CHILD_KEYS}),
                        r["last_contact"]))
        return out, total


# The class teachers of a run's classes: the classes as two arrays, so that the statement is the same for any
# number of them (an IN list of pairs was a new statement, compiled and prepared, for each census batch).
_CLASSES = func.unnest(array_param("schools", helpers.c.school_id), array_param("classes", helpers.c.class_name)
                       ).table_valued("school_id", "class_name").render_derived()
_CLASS_TEACHERS = select(*_HELPER).where(
    helpers.c.role == HelperRole.class_teacher.value,
    tuple_(helpers.c.school_id, helpers.c.class_name).in_(select(_CLASSES.c.school_id, _CLASSES.c.class_name)),
)

# ... and with the children of a run added, in one statement: the rows of the children added (child_id), then
# those of the class teachers (child_id null).
_added_children = _ADD_CHILDREN.cte("added_children")
_ADD_CHILDREN_AND_TEACHERS = union_all(
    select(_added_children.c.child_id, *(null().cast(c.type).label(c.name) for c in _HELPER)),
    select(null().cast(children.c.child_id.type).label("child_id"), *_HELPER).where(*_CLASS_TEACHERS.whereclause.clauses),
)


def _classes(classes: set[tuple[str | None, str | None]]) -> list[tuple[str, str]]:
    """The classes that can have a class teacher: school and class both named."""
    return sorted((s, c) for s, c in classes if s and c)


class HelperRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self._class_teachers: dict[tuple[str, str], list[Helper]] = {}  # by class, read in this transaction

    async def add(self, helper: Helper) -> None:
        self._class_teachers.clear()  # a new class teacher: read them again
        await self.session.execute(insert(helpers).values({**vars(helper), "role": helper.role.value}))

    async def get_many(self, helper_ids: list[UUID]) -> dict[UUID, Helper]:
        rows = (await self.session.execute(select(*_HELPER).where(helpers.c.id.in_(helper_ids)))).mappings()
        return {r["id"]: _helper(r) for r in rows}

    async def get(self, helper_id: UUID) -> Helper | None:
        return (await self.get_many([helper_id])).get(helper_id)

    async def by_account(self, account: str) -> list[Helper]:
        rows = await self.session.execute(select(*_HELPER).where(helpers.c.account == account).order_by(helpers.c.id))
        return [_helper(r) for r in rows.mappings()]

    async def class_teachers(self, classes: set[tuple[str | None, str | None]]) -> dict[tuple[str, str], list[Helper]]:
        """The class teachers of each (school, class); classes without both named have none."""
        wanted = _classes(classes)
        if missing := [k for k in wanted if k not in self._class_teachers]:
            rows = await self.session.execute(_CLASS_TEACHERS, {"schools": [s for s, _ in missing], "classes": [c for _, c in missing]})
            self.keep_class_teachers(missing, rows.mappings())
        return {k: self._class_teachers[k] for k in wanted if self._class_teachers[k]}

    def keep_class_teachers(self, classes: list[tuple[str, str]], rows) -> None:
        """The class teachers of ``classes`` (helpers' rows), known for the rest of the transaction."""
        for k in classes:
            self._class_teachers[k] = []
        for r in rows:
            self._class_teachers[r["school_id"], r["class_name"]].append(_helper({c.name: r[c.name] for c in _HELPER}))


class PairingRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.children_paired_now: set[UUID] = set()  # children given a pairing in this transaction

    async def add_many(self, made: list[Pairing], created_by: str) -> None:
        if made:
            await self.session.execute(insert(pairings), [{**vars(p), "created_by": created_by} for p in made])
            self.children_paired_now |= {p.child_id for p in made}

    async def get(self, pairing_id: UUID, *, for_update: bool = False) -> Pairing | None:
        stmt = select(*_PAIRING).where(pairings.c.id == pairing_id)
        row = (await self.session.execute(stmt.with_for_update() if for_update else stmt)).mappings().first()
        return _pairing(row) if row else None

    async def save(self, p: Pairing) -> None:
        await self.session.execute(
            update(pairings).where(pairings.c.id == p.id).values(
                ended_on=p.ended_on, end_reason=p.end_reason and p.end_reason.value, version=p.version,
                child_id=p.child_id,
            )
        )

    async def active(self, *, child_id: UUID | None = None, helper_id: UUID | None = None) -> list[tuple[Pairing, HelperRole]]:
        """Pairings not ended (``ended_on`` unset), with the helper's role, locked for a change."""
        where = [pairings.c.ended_on.is_(None)]
        if child_id is not None:
            where.append(pairings.c.child_id == child_id)
        if helper_id is not None:
            where.append(pairings.c.helper_id == helper_id)
        rows = await self.session.execute(
            select(*_PAIRING, helpers.c.role).join(helpers, helpers.c.id == pairings.c.helper_id)
            .where(*where).order_by(pairings.c.started_on, pairings.c.id).with_for_update(of=pairings)
        )
        return [(_pairing({k: r[k] for k in r.keys() if k != "role"}), HelperRole(r["role"])) for r in rows.mappings()]

    async def helpers_of(self, child_ids: list[UUID]) -> dict[UUID, list[UUID]]:
        """The helpers of each child's pairings not ended, in the order of ``active`` (locked alike), in one statement."""
        rows = await self.session.execute(
            select(pairings.c.child_id, pairings.c.helper_id)
            .where(pairings.c.ended_on.is_(None), among(pairings.c.child_id, "child_ids"))
            .order_by(pairings.c.started_on, pairings.c.id).with_for_update(), {"child_ids": child_ids}
        )
        out: dict[UUID, list[UUID]] = defaultdict(list)
        for child_id, helper_id in rows.all():
            out[child_id].append(helper_id)
        return out

    async def paired_on(self, helper_id: UUID, child_id: UUID, day: date) -> bool:
        return bool(await self.session.scalar(
            select(func.count()).select_from(pairings)
            .where(pairings.c.helper_id == helper_id, pairings.c.child_id == child_id, in_force(day))
        ))

    async def spans(self, child_ids: list[UUID]) -> dict[UUID, list[PairingSpan]]:
        rows = await self.session.execute(
            select(pairings.c.child_id, pairings.c.helper_id, helpers.c.role, pairings.c.started_on, pairings.c.ended_on)
            .join(helpers, helpers.c.id == pairings.c.helper_id).where(pairings.c.child_id.in_(child_ids))
        )
        out: dict[UUID, list[PairingSpan]] = defaultdict(list)
        for child_id, helper_id, role, started_on, ended_on in rows.all():
            out[child_id].append(PairingSpan(helper_id, HelperRole(role), started_on, ended_on))
        return out

    async def children_paired_in(self, county: str, day: date, child_ids: list[UUID] | None = None) -> list[UUID]:
        """Open children of ``county`` (or only of ``child_ids``) with a pairing in force on ``day``."""
        where = [children.c.village_code.startswith(county, autoescape=True), children.c.closed_on.is_(None),
                 in_force(day)]
        if child_ids is not None:
            where.append(among(children.c.child_id, "child_ids"))
        rows = await self.session.scalars(
            select(children.c.child_id).join(pairings, pairings.c.child_id == children.c.child_id).where(*where)
            .distinct(), {"child_ids": child_ids} if child_ids is not None else {}
        )
        return list(rows)

    async def children_of(self, helper_id: UUID, day: date) -> list[UUID]:
        rows = await self.session.scalars(
            select(pairings.c.child_id).where(pairings.c.helper_id == helper_id, in_force(day)).distinct()
        )
        return list(rows)

    async def children_ever(self, helper_id: UUID, start: date, end: date) -> list[UUID]:
        """Children paired with the helper at some time between two days."""
        rows = await self.session.scalars(
            select(pairings.c.child_id).where(
                pairings.c.helper_id == helper_id, pairings.c.started_on <= end,
                or_(pairings.c.ended_on.is_(None), pairings.c.ended_on > start),
            ).distinct()
        )
        return list(rows)

    async def to_repair(self, region: str) -> list[tuple[Pairing, HelperRole, str]]:
        """Pairings ended because the child moved, where the child has no pairing of that role since (待重新结对)."""
        later = pairings.alias("later")
        later_helper = helpers.alias("later_helper")
        replaced = (
            select(literal(1)).select_from(later.join(later_helper, later_helper.c.id == later.c.helper_id))
            .where(later.c.child_id == pairings.c.child_id, later.c.ended_on.is_(None),
                   later_helper.c.role == helpers.c.role)
            .exists()
        )
        rows = await self.session.execute(
            select(*_PAIRING, helpers.c.role, children.c.village_code)
            .join(helpers, helpers.c.id == pairings.c.helper_id)
            .join(children, children.c.child_id == pairings.c.child_id)
            .where(
                pairings.c.end_reason.in_(["transferred", "class_changed"]), ~replaced,
                children.c.closed_on.is_(None), children.c.village_code.startswith(region, autoescape=True),
            )
            .order_by(pairings.c.ended_on.desc(), pairings.c.id)
        )
        return [
            (_pairing({k: r[k] for k in r.keys() if k not in ("role", "village_code")}), HelperRole(r["role"]),
             r["village_code"])
            for r in rows.mappings()
        ]


class RuleRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def versions(self, county: str) -> list[VisitRule]:
        rows = await self.session.execute(select(visit_rules).where(visit_rules.c.county_code == county))
        return [
            VisitRule(
                code=r.code, name=r.name, roles=tuple(HelperRole(x) for x in r.roles),
                kinds=tuple(ContactKind(x) for x in r.kinds), count=r.count, window=WindowKind(r.window),
                group=r.group_name, active=r.active, effective_from=r.effective_from, version=r.version, days=r.days,
            )
            for r in rows
        ]

    async def lock_county(self, county: str) -> None:
        """Serialise rule changes of one county (versions are numbered in order)."""
        await self.session.execute(select(func.pg_advisory_xact_lock(func.hashtext("visit_rules:" + county))))

    async def add(self, county: str, rule: VisitRule, changed_by: str) -> None:
        await self.session.execute(insert(visit_rules).values(
            county_code=county, code=rule.code, version=rule.version, effective_from=rule.effective_from,
            name=rule.name, roles=[r.value for r in rule.roles], kinds=[k.value for k in rule.kinds], count=rule.count,
            window=rule.window.value, days=rule.days, group_name=rule.group, active=rule.active, changed_by=changed_by,
        ))

    async def terms(self, county: str) -> list[Term]:
        rows = await self.session.execute(
            select(county_terms.c.starts_on, county_terms.c.ends_on).where(county_terms.c.county_code == county)
        )
        return [Term(s, e) for s, e in rows.all()]

    async def replace_terms(self, county: str, terms: list[Term]) -> None:
        await self.session.execute(county_terms.delete().where(county_terms.c.county_code == county))
        if terms:
            await self.session.execute(insert(county_terms).values(
                [{"county_code": county, "starts_on": t.start, "ends_on": t.end} for t in terms]
            ))


class RecordRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, r: VisitRecord, recorded_by: str) -> None:
        values = {**vars(r), "helper_role": r.helper_role.value, "kind": r.kind.value}
        await self.session.execute(insert(visit_records).values(**values, recorded_by=recorded_by))

    async def get(self, record_id: UUID, *, for_update: bool = False) -> VisitRecord | None:
        stmt = select(*_RECORD).where(visit_records.c.id == record_id)
        row = (await self.session.execute(stmt.with_for_update() if for_update else stmt)).mappings().first()
        return _record(row) if row else None

    async def save_correction(self, r: VisitRecord, before: dict, reason: str, changed_by: str) -> None:
        await self.session.execute(update(visit_records).where(visit_records.c.id == r.id).values(
            kind=r.kind.value, visited_on=r.visited_on, observations=r.observations, note=r.note, version=r.version,
        ))
        await self.session.execute(insert(record_corrections).values(
            record_id=r.id, version=r.version, reason=reason, before=before, after=r.facts(), changed_by=changed_by,
        ))

    async def corrections(self, record_id: UUID) -> list[dict]:
        rows = await self.session.execute(
            select(record_corrections.c.version, record_corrections.c.reason, record_corrections.c.before,
                   record_corrections.c.after, record_corrections.c.changed_by, record_corrections.c.changed_at)
            .where(record_corrections.c.record_id == record_id).order_by(record_corrections.c.version)
        )
        return [dict(r) for r in rows.mappings()]

    async def concern_ids(self, record_id: UUID) -> list[UUID]:
        rows = await self.session.scalars(select(concerns.c.id).where(concerns.c.record_id == record_id).order_by(concerns.c.id))
        return list(rows)

    async def add_concern(self, concern_id: UUID, record: VisitRecord, kind: str, severity: str, note: str | None) -> None:
        await self.session.execute(insert(concerns).values(
            id=concern_id, record_id=record.id, child_id=record.child_id, kind=kind, severity=severity, note=note,
        ))

    async def contacts(self, child_ids: list[UUID], start: date, end: date) -> dict[UUID, list[Contact]]:
        """Visit records and group activities that count as contacts, per child, between two days."""
        out: dict[UUID, list[Contact]] = defaultdict(list)
        rows = await self.session.execute(
            select(visit_records.c.child_id, visit_records.c.visited_on, visit_records.c.kind,
                   visit_records.c.helper_id, visit_records.c.helper_role)
            .where(visit_records.c.child_id.in_(child_ids), visit_records.c.visited_on.between(start, end))
        )
        for child_id, on, kind, helper_id, role in rows.all():
            out[child_id].append(Contact(on, ContactKind(kind), helper_id, HelperRole(role)))
        rows = await self.session.execute(
            select(activity_children.c.child_id, activities.c.held_on, activities.c.kind)
            .join(activities, activities.c.id == activity_children.c.activity_id)
            .where(activity_children.c.child_id.in_(child_ids), activities.c.held_on.between(start, end),
                   activities.c.kind.in_([k.value for k in ACTIVITY_CONTACT]))
        )
        for child_id, on, kind in rows.all():
            out[child_id].append(Contact(on, ACTIVITY_CONTACT[kind]))
        return out

    async def add_activity(self, activity_id: UUID, values: dict, child_ids: list[UUID], recorded_by: str) -> None:
        await self.session.execute(insert(activities).values(id=activity_id, recorded_by=recorded_by, **values))
        await self.session.execute(insert(activity_children).values(
            [{"activity_id": activity_id, "child_id": c} for c in child_ids]
        ))


def _arm_statement(only_some_children: bool):
    """INSERT of window-end timers: (rule, window) rows from arrays x the county's open children paired
    with a helper of one of the rule's roles. Built once, whatever the number of windows or children."""
    text_param = lambda name: array_param(name, timers.c.key)  # noqa: E731
    plan = func.unnest(
        *(text_param(c) for c in ("rule_code", "window", "start", "end", "key_suffix", "roles")),
        array_param("deadline", timers.c.due_at),
    ).table_valued("rule_code", "window", "start", "end", "key_suffix", "roles", "deadline").render_derived()
    child = cast(children.c.child_id, String)
    where = [
        children.c.village_code.startswith(bindparam("county")), children.c.closed_on.is_(None),
        helpers.c.role == any_(func.string_to_array(plan.c.roles, ",")), in_force(bindparam("today")),
        consent_binds(bindparam("today")),
    ]
    if only_some_children:
        where.append(among(children.c.child_id, "child_ids"))
    rows = (
        select(
            literal(WINDOW_END), child + plan.c.key_suffix, plan.c.deadline,
            func.jsonb_build_object(
                "child_id", child, "rule_code", plan.c.rule_code, "window", plan.c.window,
                "start", plan.c.start, "end", plan.c.end,
            ),
        )
        .select_from(children.join(pairings, pairings.c.child_id == children.c.child_id)
                     .join(helpers, helpers.c.id == pairings.c.helper_id))
        .join(plan, literal(True))
        .where(*where).distinct()
    )
    stmt = pg_insert(timers).from_select(["kind", "key", "due_at", "payload"], rows)
    return stmt.on_conflict_do_nothing(index_elements=["kind", "key"])


_ARM, _ARM_CHILDREN = _arm_statement(False), _arm_statement(True)


def _window_totals_statement(contacts_in_region: bool):
    """Due, done and overdue of every open child of a region, for (rule, window) rows given as arrays, in one
    aggregate: the set-based twin of ``compliance.evaluate`` (same binding, same contacts counted). The
    children bound and the contacts counted are each reduced to (window, child) before they meet: joining
    the bound rows with every record of their child first was 1.7 times slower at a million children.
    Contacts are read for the region's children only when it is a county or smaller; for a wider region,
    finding each record's child costs more than counting the records of children outside it."""
    text_param = lambda name: array_param(name, timers.c.key)  # noqa: E731
    rows = func.unnest(
        *(text_param(c) for c in ("rule_code", "roles", "kinds", "activity_kinds")),
        array_param("required", visit_rules.c.count),
        *(array_param(c, pairings.c.started_on) for c in ("start", "end", "judged_on")),
    ).table_valued(
        "rule_code", "roles", "kinds", "activity_kinds", "required", "start", "end", "judged_on",
        with_ordinality="i",
    ).render_derived()
    # A CTE, so the lists are split once, not for every pairing and record they are matched against (the
    # planner had the unnest run again for each of 3.3 million records).
    split = lambda name: func.string_to_array(rows.c[name], ",", type_=ARRAY(String)).label(name)  # noqa: E731
    plan = select(
        rows.c.i, rows.c.rule_code, split("roles"), split("kinds"), split("activity_kinds"), rows.c.required,
        rows.c.start, rows.c.end, rows.c.judged_on,
    ).cte("plan")
    county = func.left(children.c.village_code, literal_column("6"), type_=String)
    in_region = children.c.village_code.startswith(bindparam("region"))
    # A child is held to a window's rule by a pairing in force on its last day (or today, while it runs).
    bound = (
        select(plan.c.i, children.c.child_id, county.label("county"))
        .select_from(children.join(pairings, pairings.c.child_id == children.c.child_id)
                     .join(helpers, helpers.c.id == pairings.c.helper_id))
        .join(plan, literal(True))
        .where(
            in_region, children.c.closed_on.is_(None), among(county, "counties"), helpers.c.role == any_(plan.c.roles),
            pairings.c.started_on <= plan.c.judged_on,
            or_(pairings.c.ended_on.is_(None), pairings.c.ended_on > plan.c.judged_on), consent_binds(plan.c.judged_on),
        )
        .distinct().cte("bound")
    )
    period = lambda col: col.between(bindparam("period_start", type_=Date), bindparam("period_end", type_=Date))  # noqa: E731
    records = (
        select(visit_records.c.child_id, visit_records.c.visited_on.label("on"), visit_records.c.kind,
               visit_records.c.helper_role.label("role"))
        .where(period(visit_records.c.visited_on))
    )
    in_activities = (
        select(activity_children.c.child_id, activities.c.held_on, activities.c.kind, cast(null(), String))
        .join(activities, activities.c.id == activity_children.c.activity_id)
        .where(period(activities.c.held_on), activities.c.kind.in_([k.value for k in ACTIVITY_CONTACT]))
    )
    if contacts_in_region:
        records = records.join(children, children.c.child_id == visit_records.c.child_id).where(in_region)
        in_activities = in_activities.join(children, children.c.child_id == activity_children.c.child_id).where(in_region)
    contacts = union_all(records, in_activities).subquery("contacts")
    # Group activities count as the contact they stand for; a helper's contact, when the helper's role binds.
    counted = (
        select(plan.c.i, contacts.c.child_id, func.count().label("n"))
        .select_from(contacts)
        .join(plan, and_(
            contacts.c.on.between(plan.c.start, plan.c.end),
            or_(
                and_(contacts.c.role.is_(None), contacts.c.kind == any_(plan.c.activity_kinds)),
                and_(contacts.c.kind == any_(plan.c.kinds), contacts.c.role == any_(plan.c.roles)),
            ),
        ))
        .group_by(plan.c.i, contacts.c.child_id)
        .subquery("counted")
    )
    done = func.coalesce(counted.c.n, 0)
    status = case((done >= plan.c.required, Status.done.value),
                  (plan.c.end < bindparam("today", type_=Date), Status.overdue.value), else_=Status.due.value)
    return (
        select(bound.c.county, plan.c.rule_code, plan.c.start, status.label("status"), func.count().label("children"),
               func.sum(plan.c.required).label("required"), func.sum(func.least(done, plan.c.required)).label("done"))
        .select_from(bound.join(plan, plan.c.i == bound.c.i)
                     .outerjoin(counted, and_(counted.c.i == bound.c.i, counted.c.child_id == bound.c.child_id)))
        .group_by(bound.c.county, plan.c.rule_code, plan.c.start, status)
    )


_WINDOW_TOTALS = {narrow: _window_totals_statement(narrow) for narrow in (True, False)}

_ARM_ROLLING = insert_rows(timers, ("kind", "key", "due_at", "payload")).on_conflict_do_nothing(
    index_elements=["kind", "key"]
)
_moved = func.unnest(array_param("prefix", timers.c.key), array_param("keep", timers.c.key)).table_valued(
    "prefix", "keep"
).render_derived()
# A child's rolling timers of a rule share the key prefix "<child>:<code>:rolling:"; ";" follows ":", so the
# range is the prefix, read through the (kind, key) index.
_DROP_MOVED = timers.delete().where(
    timers.c.kind == WINDOW_END, timers.c.fired_at.is_(None),
    timers.c.key >= _moved.c.prefix, timers.c.key < _moved.c.prefix + ";", timers.c.key != _moved.c.keep,
    timers.c.payload["end"].astext >= bindparam("today"),
)


class ComplianceRepository:
    """Compliance (考核) of a whole region at once, computed in PostgreSQL."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def window_totals(self, region: str, counties: list[str], windows: list[tuple[VisitRule, Window]],
                            today: date) -> dict[str, list[WindowTotals]]:
        """Each (rule, window) over the open children of ``region`` in ``counties`` held to it, per county: one
        statement, whatever the number of children (calendar windows; a rolling window is each child's own)."""
        if not windows:
            return {}
        activity = {c: a for a, c in ACTIVITY_CONTACT.items()}
        params = {
            "rule_code": [r.code for r, _ in windows], "roles": [",".join(r.roles) for r, _ in windows],
            "kinds": [",".join(r.kinds) for r, _ in windows],
            "activity_kinds": [",".join(activity[k] for k in r.kinds if k in activity) for r, _ in windows],
            "required": [r.count for r, _ in windows], "start": [w.start for _, w in windows],
            "end": [w.end for _, w in windows], "judged_on": [min(w.end, today) for _, w in windows],
            "period_start": min(w.start for _, w in windows), "period_end": max(w.end for _, w in windows),
            "region": region, "counties": counties, "today": today,
        }
        totals = {(c, r.code, w.start): WindowTotals(r, w) for c in counties for r, w in windows}
        rows = await self.session.execute(_WINDOW_TOTALS[len(region) >= 6], params)
        for county, code, start, status, n, required, done in rows.all():
            t = totals[county, code, start]
            t.children[Status(status)] += n
            t.required += required
            t.done += done
        out: dict[str, list[WindowTotals]] = defaultdict(list)
        for (c, _, _), t in totals.items():
            out[c].append(t)
        return out

    async def counties(self, region: str) -> list[str]:
        """The counties (6-digit codes) with open children under ``region``."""
        if len(region) >= 6:
            return [region[:6]]
        rows = await self.session.scalars(
            select(func.left(children.c.village_code, 6)).where(
                children.c.village_code.startswith(region, autoescape=True), children.c.closed_on.is_(None)
            ).distinct()
        )
        return sorted(rows)


class ScheduleRepository:
    """The window-end timers (timers are data) and the overdue windows found."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def arm(self, county: str, windows: list[tuple[VisitRule, Window]], today: date,
                  child_ids: list[UUID] | None) -> None:
        """A timer at the end of each rule's window for every open child of ``county`` whose pairings
        bind it to that rule, in one statement. An existing timer is left alone
        (``shared.timers.schedule`` would re-arm a fired one)."""
        if not windows:
            return
        plan = {
            "rule_code": [r.code for r, _ in windows], "window": [w.kind.value for _, w in windows],
            "start": [w.start.isoformat() for _, w in windows], "end": [w.end.isoformat() for _, w in windows],
            "key_suffix": [f":{r.code}:{w.key}" for r, w in windows], "deadline": [w.deadline for _, w in windows],
            "roles": [",".join(role.value for role in r.roles) for r, _ in windows],
        }
        params = plan | {"county": county, "today": today}
        if child_ids is None:
            await self.session.execute(_ARM, params)
        else:
            await self.session.execute(_ARM_CHILDREN, params | {"child_ids": child_ids})

    async def arm_rolling(self, windows: list[tuple[UUID, str, Window]], today: date) -> None:
        """Set each (child, rule code)'s rolling window: a pending timer of another window still running
        on ``today`` is dropped (a contact moved the deadline); one already ended stays, to report the
        lapse. A window whose timer exists, fired or not, is left alone: a lapse fires once."""
        if not windows:
            return
        prefixes = [f"{child_id}:{code}:{WindowKind.rolling.value}:" for child_id, code, _ in windows]
        keys = [f"{child_id}:{code}:{w.key}" for child_id, code, w in windows]
        await self.session.execute(_DROP_MOVED, {"prefix": prefixes, "keep": keys, "today": today.isoformat()})
        await self.session.execute(_ARM_ROLLING, columns_of([
            {"kind": WINDOW_END, "key": key, "due_at": w.deadline, "payload": {
                "child_id": str(child_id), "rule_code": code, "window": w.kind.value,
                "start": w.start.isoformat(), "end": w.end.isoformat(),
            }}
            for key, (child_id, code, w) in zip(keys, windows, strict=True)
        ]))

    async def disarm(self, child_id: UUID) -> None:
        await self.session.execute(timers.delete().where(
            timers.c.kind == WINDOW_END, timers.c.key.startswith(f"{child_id}:"), timers.c.fired_at.is_(None)
        ))

    async def disarm_windows(self, county: str, kinds: set[WindowKind]) -> None:
        """Drop the pending timers of ``county``'s children for windows of these kinds (term dates changed)."""
        in_county = select(cast(children.c.child_id, String)).where(
            children.c.village_code.startswith(county, autoescape=True)
        )
        await self.session.execute(timers.delete().where(
            timers.c.kind == WINDOW_END, timers.c.fired_at.is_(None),
            timers.c.payload["window"].astext.in_([k.value for k in kinds]),
            timers.c.payload["child_id"].astext.in_(in_county),
        ))

    async def pending(self, child_id: UUID) -> list[tuple[str, dict]]:
        rows = await self.session.execute(
            select(timers.c.key, timers.c.payload).where(
                timers.c.kind == WINDOW_END, timers.c.key.startswith(f"{child_id}:"), timers.c.fired_at.is_(None)
            ).order_by(timers.c.key)
        )
        return [tuple(r) for r in rows.all()]

    async def mark_overdue(self, child_id: UUID, rule_code: str, window: Window, required: int, done: int) -> bool:
        """Record the window as overdue; False when it already was (the event went out then)."""
        stmt = pg_insert(overdue_windows).values(
            child_id=child_id, rule_code=rule_code, window_key=window.key, required=required, done=done,
        ).on_conflict_do_nothing().returning(overdue_windows.c.child_id)
        return (await self.session.execute(stmt)).first() is not None
