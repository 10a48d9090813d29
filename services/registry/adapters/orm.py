"""The registry's tables."""

from sqlalchemy import ARRAY, Column, Date, DateTime, ForeignKey, Index, Integer, LargeBinary, Table, Text, func, text
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

# Census import (摸底排查): the upload and its job, each row's outcome, the natural keys.

census_imports = Table(
    "census_imports",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("filename", Text, nullable=False),
    Column("format", Text, nullable=False),  # xlsx | csv
    Column("content", LargeBinary, nullable=False),  # the upload itself: a restart loses nothing
    Column("actor", Text, nullable=False),
    Column("region", Text, nullable=False),  # the uploader's scope: rows outside it are refused
    Column("status", Text, nullable=False),  # queued | running | done
    Column("rows_total", Integer, nullable=False),
    Column("rows_done", Integer, nullable=False, server_default="0"),
    # Spreadsheet row number of the last row committed: where a resumed job goes on.
    Column("last_row", Integer, nullable=False, server_default="0"),
    Column("registered", Integer, nullable=False, server_default="0"),
    Column("already_registered", Integer, nullable=False, server_default="0"),
    Column("rejected", Integer, nullable=False, server_default="0"),
    # The lease: which worker processes the job, until when (a worker that died lets it lapse).
    Column("worker", Text),
    Column("lease_until", DateTime(timezone=True)),
    Column("error", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("finished_at", DateTime(timezone=True)),
    Index("ix_census_imports_pending", "created_at", postgresql_where=text("status <> 'done'")),
)

census_import_rows = Table(
    "census_import_rows",
    metadata,
    Column("import_id", UUID(as_uuid=True), ForeignKey("census_imports.id", ondelete="CASCADE"), primary_key=True),
    Column("row_number", Integer, primary_key=True),
    Column("outcome", Text, nullable=False),  # registered | already_registered | rejected
    Column("child_id", UUID(as_uuid=True)),
    Column("errors", JSONB),
)

# One child per natural key (keyed hash of name, birth date, village, ID number): a roster imported twice registers nobody twice.
census_keys = Table(
    "census_keys",
    metadata,
    Column("key", Text, primary_key=True),
    Column("child_id", UUID(as_uuid=True), nullable=False),
    Column("import_id", UUID(as_uuid=True), nullable=False),
    Column("row_number", Integer, nullable=False),
)
