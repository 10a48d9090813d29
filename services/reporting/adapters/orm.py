"""The reporting service's tables: facts without names, and counts by place."""

from sqlalchemy import ARRAY, Boolean, Column, Integer, Table, Text, false
from sqlalchemy.dialects.postgresql import UUID

from shared.db import new_metadata
from shared.messaging import consumer_tables

metadata = new_metadata()

# Per child, only what figures need: place, type, categories. No name, phone or ID number.
child_facts = Table(
    "child_facts",
    metadata,
    Column("child_id", UUID(as_uuid=True), primary_key=True),
    Column("village_code", Text, nullable=False),
    Column("gender", Text, nullable=False),
    Column("left_behind_type", Text, nullable=False),
    Column("hukou_status", Text, nullable=False),
    Column("risk_categories", ARRAY(Text), nullable=False),
    # 结档 or merged: kept, but counted nowhere.
    Column("closed", Boolean, nullable=False, server_default=false()),
)

# Left-behind children per place at every level, kept up to date as events arrive.
region_counts = Table(
    "region_counts",
    metadata,
    Column("region_code", Text, primary_key=True),
    Column("children", Integer, nullable=False),
)

inbox, positions = consumer_tables(metadata)
