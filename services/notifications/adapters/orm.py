"""The notifications service's tables: the directory, requests, deliveries and receipts."""

from sqlalchemy import ARRAY, Column, Date, DateTime, ForeignKey, Index, Integer, Table, Text, UniqueConstraint, func
from sqlalchemy.dialects.postgresql import JSONB, UUID

from shared.db import new_metadata
from shared.messaging import consumer_tables
from shared.outbox import outbox_table
from shared.timers import timers_table

metadata = new_metadata()

# One contact card (家长联系卡) per child: guardian and parents (from registry.contacts).
contacts = Table(
    "contacts",
    metadata,
    Column("child_id", UUID(as_uuid=True), primary_key=True),
    Column("card", JSONB, nullable=False),
    Column("version", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# The guardian's consent per child (知情同意, from registry.consent.changed): while withdrawn, messages to
# the family are suppressed (domain/model.py, ``suppressed_by_consent``).
consents = Table(
    "consents",
    metadata,
    Column("child_id", UUID(as_uuid=True), primary_key=True),
    Column("consent", Text, nullable=False),  # given | withdrawn
    Column("effective_on", Date, nullable=False),
    Column("version", Integer, nullable=False),  # aggregate_version of the registry event
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Users reached by role "user" (helpers, teachers, supervisors): their channels in order.
users = Table(
    "users",
    metadata,
    Column("user_id", Text, primary_key=True),
    Column("phone", Text),
    Column("email", Text),
    Column("channels", ARRAY(Text), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

requests = Table(
    "requests",
    metadata,
    Column("request_id", UUID(as_uuid=True), primary_key=True),
    Column("kind", Text, nullable=False),
    Column("urgency", Text, nullable=False),
    Column("child_id", UUID(as_uuid=True)),
    Column("region_code", Text, nullable=False),
    Column("data", JSONB, nullable=False),
    Column("requested_by", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("request_id", UUID(as_uuid=True), ForeignKey("requests.request_id"), nullable=False),
    Column("kind", Text, nullable=False),
    Column("recipient", Text, nullable=False),  # guardian:<child>, user:<id>, agency:<code>...
    Column("recipient_role", Text, nullable=False),
    Column("agency_code", Text),
    Column("channels", ARRAY(Text), nullable=False),  # the recipient's, in order of preference
    Column("channel_index", Integer, nullable=False, server_default="0"),
    Column("channel", Text),  # channels[channel_index]; null when none is left
    Column("attempts", Integer, nullable=False, server_default="0"),  # failed attempts on the current channel
    Column("attempt_seq", Integer, nullable=False, server_default="0"),  # names each attempt's timer
    Column("event_version", Integer, nullable=False, server_default="0"),  # aggregate_version of its events
    Column("status", Text, nullable=False),
    Column("subject", Text),
    Column("text", Text),
    Column("last_error", Text),
    Column("suppressed_reason", Text),  # why a delivery was not sent (status suppressed), e.g. consent withdrawn
    Column("outcome", JSONB),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("held_until", DateTime(timezone=True)),
    Column("delivered_at", DateTime(timezone=True)),
    Column("read_at", DateTime(timezone=True)),
    Column("acknowledged_at", DateTime(timezone=True)),
    Column("answered_at", DateTime(timezone=True)),
    # De-duplication: one message per (request, recipient, kind), whatever is redelivered.
    UniqueConstraint("request_id", "recipient", "kind", name="uq_deliveries_once"),
    Index("ix_deliveries_recipient", "recipient", "created_at"),
)

# Answers from agencies that were refused (and told so once), by their event id (an unreadable
# entry, which has none, by a UUID derived from its stream and entry id).
agency_rejections = Table(
    "agency_rejections",
    metadata,
    Column("event_id", UUID(as_uuid=True), primary_key=True),
    Column("agency_code", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

inbox, positions = consumer_tables(metadata)
outbox = outbox_table(metadata)
timers = timers_table(metadata)
