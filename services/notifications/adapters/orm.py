"""The notifications service's tables. For now: the contact directory."""

from sqlalchemy import Column, DateTime, Integer, Table, func
from sqlalchemy.dialects.postgresql import JSONB, UUID

from shared.db import new_metadata
from shared.messaging import consumer_tables
from shared.outbox import outbox_table

metadata = new_metadata()

# One contact card (家长联系卡) per child: guardian and parents, for messages to come.
contacts = Table(
    "contacts",
    metadata,
    Column("child_id", UUID(as_uuid=True), primary_key=True),
    Column("card", JSONB, nullable=False),
    Column("version", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

inbox, positions = consumer_tables(metadata)
outbox = outbox_table(metadata)
