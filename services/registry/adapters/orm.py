"""The registry's tables."""

from sqlalchemy import ARRAY, Column, Date, DateTime, Index, Integer, Table, Text, func
from sqlalchemy.dialects.postgresql import JSONB, UUID

from shared.db import new_metadata
from shared.outbox import outbox_table

metadata = new_metadata()

children = Table(
    "children",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("name", Text, nullable=False),
    Column("gender", Text, nullable=False),
    Column("birth_date", Date, nullable=False),
    # Resident ID number: only a keyed hash (lookup, duplicates) and a masked form.
    Column("id_number_hash", Text),
    Column("id_number_masked", Text),
    Column("hukou_status", Text, nullable=False),
    Column("village_code", Text, nullable=False),
    Column("school_id", Text),
    Column("class_name", Text),
    Column("left_behind_type", Text, nullable=False),
    Column("father", JSONB, nullable=False),
    Column("mother", JSONB, nullable=False),
    Column("guardian", JSONB),
    Column("risk_categories", ARRAY(Text), nullable=False, server_default="{}"),
    Column("version", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_children_village_code", "village_code", postgresql_ops={"village_code": "text_pattern_ops"}),
    Index("ix_children_school_id", "school_id"),
    Index("ix_children_id_number_hash", "id_number_hash"),
)

outbox = outbox_table(metadata)
