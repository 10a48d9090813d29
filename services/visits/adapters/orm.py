"""The visits service's tables. For now: what it knows of each child from the registry."""

from sqlalchemy import Column, DateTime, Integer, Table, Text, func
from sqlalchemy.dialects.postgresql import UUID

from shared.db import new_metadata
from shared.messaging import consumer_tables
from shared.outbox import outbox_table

metadata = new_metadata()

# The child's place and school: where schedules and pairings (later) hang.
children = Table(
    "children",
    metadata,
    Column("child_id", UUID(as_uuid=True), primary_key=True),
    Column("village_code", Text, nullable=False),
    Column("school_id", Text),
    Column("class_name", Text),
    Column("left_behind_type", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
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

inbox, positions = consumer_tables(metadata)
outbox = outbox_table(metadata)
