"""The visits service's tables."""

from sqlalchemy import (
    ARRAY, BigInteger, Boolean, CheckConstraint, Column, Date, DateTime, ForeignKey, Index, Integer, Table, Text,
    UniqueConstraint, func, text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

from shared.db import new_metadata
from shared.messaging import consumer_tables
from shared.outbox import outbox_table
from shared.timers import timers_table

metadata = new_metadata()

# The child's place and school from the registry: where schedules and pairings hang.
children = Table(
    "children",
    metadata,
    Column("child_id", UUID(as_uuid=True), primary_key=True),
    Column("village_code", Text, nullable=False),
    Column("school_id", Text),
    Column("class_name", Text),
    Column("left_behind_type", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("closed_on", Date),  # 结档: no schedule from then on
    Column("merged_into", UUID(as_uuid=True)),
    # The last withdrawal of consent (撤回同意, registry.consent.changed): from the first day until the
    # second (NULL: still withdrawn); both NULL: never withdrawn (services/visits/domain/consent.py).
    Column("consent_withdrawn_on", Date),
    Column("consent_given_on", Date),
    Index("ix_children_village_code", "village_code", postgresql_ops={"village_code": "text_pattern_ops"}),
    Index("ix_children_school_class", "school_id", "class_name"),
)

# Name and guardian contact, for helpers' worklists (from registry.contacts).
child_contacts = Table(
    "child_contacts",
    metadata,
    Column("child_id", UUID(as_uuid=True), primary_key=True),
    Column("child_name", Text, nullable=False),
    Column("guardian_name", Text),
    Column("guardian_phone", Text),
    Column("version", Integer, nullable=False),
)

# 帮扶人: class teachers, caring mothers, proxy parents, volunteer tutors, party members, supervisors.
helpers = Table(
    "helpers",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("name", Text, nullable=False),
    Column("role", Text, nullable=False),
    Column("organisation", Text, nullable=False),
    Column("region_code", Text, nullable=False),
    Column("phone", Text),
    Column("school_id", Text),
    Column("class_name", Text),
    Column("account", Text, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_helpers_region_code", "region_code", postgresql_ops={"region_code": "text_pattern_ops"}),
    Index("ix_helpers_school_class", "school_id", "class_name", postgresql_where=text("role = 'class_teacher'")),
)

# 结对帮扶: one row per helper and child; one-to-many and many-to-many are several rows.
pairings = Table(
    "pairings",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("helper_id", UUID(as_uuid=True), ForeignKey("helpers.id"), nullable=False),
    Column("child_id", UUID(as_uuid=True), ForeignKey("children.child_id"), nullable=False),
    Column("started_on", Date, nullable=False),
    Column("ended_on", Date),  # the first day no longer in force
    Column("end_reason", Text),
    Column("version", Integer, nullable=False),
    Column("created_by", Text, nullable=False),
    Index("ix_pairings_child_id", "child_id"),
    Index("ix_pairings_helper_id", "helper_id"),
    Index("uq_pairings_active", "helper_id", "child_id", unique=True, postgresql_where=text("ended_on IS NULL")),
)

# 走访规则: a county's versions of a rule; the defaults live in the code (domain/rules.py).
visit_rules = Table(
    "visit_rules",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("county_code", Text, nullable=False),
    Column("code", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("effective_from", Date, nullable=False),
    Column("name", Text, nullable=False),
    Column("roles", ARRAY(Text), nullable=False),
    Column("kinds", ARRAY(Text), nullable=False),
    Column("count", Integer, nullable=False),
    Column("window", Text, nullable=False),
    Column("days", Integer),  # a rolling window's length (滚动周期天数)
    Column("group_name", Text),
    Column("active", Boolean, nullable=False),
    Column("changed_by", Text, nullable=False),
    Column("changed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("county_code", "code", "version"),
    CheckConstraint("(\"window\" = 'rolling') = (days IS NOT NULL)", name="rolling_days"),
)

# 学期: a county's term dates (default dates are used for years a county has not set).
county_terms = Table(
    "county_terms",
    metadata,
    Column("county_code", Text, primary_key=True),
    Column("starts_on", Date, primary_key=True),
    Column("ends_on", Date, nullable=False),
    CheckConstraint("ends_on > starts_on", name="term_dates"),
)

# 走访记录
visit_records = Table(
    "visit_records",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("child_id", UUID(as_uuid=True), ForeignKey("children.child_id"), nullable=False),
    Column("helper_id", UUID(as_uuid=True), ForeignKey("helpers.id"), nullable=False),
    Column("helper_role", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("visited_on", Date, nullable=False),
    Column("observations", JSONB, nullable=False),  # [{area, level, note}]
    Column("note", Text),
    Column("village_code", Text, nullable=False),  # the child's place when visited: scopes who may read it
    Column("version", Integer, nullable=False),
    Column("recorded_by", Text, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_visit_records_child_day", "child_id", "visited_on"),
    Index("ix_visit_records_helper_day", "helper_id", "visited_on"),
)

# The audit trail of corrections (更正记录): what a record said before and after.
record_corrections = Table(
    "record_corrections",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("record_id", UUID(as_uuid=True), ForeignKey("visit_records.id"), nullable=False, index=True),
    Column("version", Integer, nullable=False),
    Column("reason", Text, nullable=False),
    Column("before", JSONB, nullable=False),
    Column("after", JSONB, nullable=False),
    Column("changed_by", Text, nullable=False),
    Column("changed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

concerns = Table(
    "concerns",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("record_id", UUID(as_uuid=True), ForeignKey("visit_records.id"), nullable=False, index=True),
    Column("child_id", UUID(as_uuid=True), nullable=False, index=True),
    Column("kind", Text, nullable=False),
    Column("severity", Text, nullable=False),
    Column("note", Text),
    Column("raised_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# 集体关爱活动 (留守儿童之家, schools) and who took part.
activities = Table(
    "activities",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("kind", Text, nullable=False),
    Column("held_on", Date, nullable=False),
    Column("place", Text, nullable=False),
    Column("organiser", Text, nullable=False),
    Column("region_code", Text, nullable=False),
    Column("guardians", Integer, nullable=False),
    Column("recorded_by", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_activities_region_code", "region_code", postgresql_ops={"region_code": "text_pattern_ops"}),
)

activity_children = Table(
    "activity_children",
    metadata,
    Column("activity_id", UUID(as_uuid=True), ForeignKey("activities.id"), primary_key=True),
    Column("child_id", UUID(as_uuid=True), ForeignKey("children.child_id"), primary_key=True),
    Index("ix_activity_children_child_id", "child_id"),
)

# One row per child-rule-window that ended short: the guard that emits visits.visit.overdue once.
overdue_windows = Table(
    "overdue_windows",
    metadata,
    Column("child_id", UUID(as_uuid=True), primary_key=True),
    Column("rule_code", Text, primary_key=True),
    Column("window_key", Text, primary_key=True),
    Column("required", Integer, nullable=False),
    Column("done", Integer, nullable=False),
    Column("detected_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

inbox, positions = consumer_tables(metadata)
outbox = outbox_table(metadata)
timers = timers_table(metadata)
