"""The registry's tables."""

from sqlalchemy import ARRAY, Boolean, Column, Date, DateTime, ForeignKey, Index, Integer, LargeBinary, Table, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB, UUID

from shared.db import new_metadata
from shared.messaging import consumer_tables
from shared.outbox import outbox_table
from shared.timers import timers_table

metadata = new_metadata()

children = Table(
    "children",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("name", Text, nullable=False),
    Column("gender", Text, nullable=False),
    Column("birth_date", Date, nullable=False),
    # Resident ID number: a keyed hash (lookup, duplicates), a masked form, and the number sealed (AES-GCM).
    Column("id_number_hash", Text),
    Column("id_number_masked", Text),
    Column("id_number_sealed", Text),
    # 知情同意: given | withdrawn (null: not yet recorded), and since when.
    Column("consent", Text),
    Column("consent_on", Date),
    # 去标识化: the day a closed archive's personal data was removed after the retention period.
    Column("deidentified_on", Date),
    Column("hukou_status", Text, nullable=False),
    Column("village_code", Text, nullable=False),
    Column("school_id", Text),
    Column("class_name", Text),
    Column("left_behind_type", Text, nullable=False),
    Column("father", JSONB, nullable=False),
    Column("mother", JSONB, nullable=False),
    Column("guardian", JSONB),
    Column("risk_categories", ARRAY(Text), nullable=False, server_default="{}"),
    # The name as searched and compared for duplicates: full-width folded (NFKC), spaces removed.
    Column("name_key", Text, nullable=False),
    Column("enrolment_status", Text),
    # 无人监护: why the child has no valid guardian now, and since when (null: guarded).
    Column("unguarded_cause", Text),
    Column("unguarded_since", Date),
    # 结档: a closed archive is read-only; a merged one points to the archive that survived.
    Column("archive_status", Text, nullable=False, server_default="open"),
    Column("closed_reason", Text),
    Column("closed_on", Date),
    Column("merged_into", UUID(as_uuid=True)),
    Column("version", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_children_village_code", "village_code", postgresql_ops={"village_code": "text_pattern_ops"}),
    Index("ix_children_school_id", "school_id"),
    # One open archive per ID number; closed ones keep theirs (a reopened duplicate is refused).
    Index("uq_children_open_id_number", "id_number_hash", unique=True, postgresql_where=text("archive_status = 'open'")),
    Index("ix_children_name_key_trgm", "name_key", postgresql_using="gin", postgresql_ops={"name_key": "gin_trgm_ops"}),
    Index("ix_children_duplicate_key", "birth_date", "name_key"),
)

# 委托监护责任确认书: the entrusted-guardianship agreements of a child, one in force at a time.
agreements = Table(
    "agreements",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("child_id", UUID(as_uuid=True), ForeignKey("children.id"), nullable=False),
    Column("guardian_name", Text, nullable=False),
    Column("guardian_relationship", Text, nullable=False),
    Column("signed_on", Date, nullable=False),
    Column("valid_until", Date, nullable=False),
    Column("status", Text, nullable=False),  # in_force | expired | revoked
    Column("ended_on", Date),
    Column("actor", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("uq_agreements_in_force", "child_id", unique=True, postgresql_where=text("status = 'in_force'")),
    Index("ix_agreements_child_id", "child_id"),
)

# 缺课记录
absences = Table(
    "absences",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("child_id", UUID(as_uuid=True), ForeignKey("children.id"), nullable=False),
    Column("school_id", Text),
    Column("from_date", Date, nullable=False),
    Column("to_date", Date, nullable=False),
    Column("school_days", Integer, nullable=False),
    Column("excused", Boolean, nullable=False),
    Column("reason_code", Text),
    Column("actor", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_absences_child_id", "child_id", "from_date"),
)

# 成长记录: dated notes on thought, study, life and family education.
growth_notes = Table(
    "growth_notes",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("child_id", UUID(as_uuid=True), ForeignKey("children.id"), nullable=False),
    Column("noted_on", Date, nullable=False),
    Column("topic", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("actor", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_growth_notes_child_id", "child_id", "noted_on"),
)

timers = timers_table(metadata)

# The registry follows the dropout cases of visits (the enrolment status follows the case).
inbox, positions = consumer_tables(metadata)

outbox = outbox_table(metadata)

# Census import (摸底排查): the upload and its job, each row's outcome, the natural keys.

census_imports = Table(
    "census_imports",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("filename", Text, nullable=False),
    Column("format", Text, nullable=False),  # xlsx | csv
    # The upload itself, sealed (AES-GCM, IdVault.seal_roster): a restart loses nothing, a copy of
    # the database shows no name or ID number. ``content_key``: the key that sealed it (NULL: stored
    # in clear before migration 0007; `shouhu registry rotate-keys` seals those).
    Column("content", LargeBinary, nullable=False),
    Column("content_key", Text),
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
    # The rows with something to report (an import's progress and report.xlsx), found without walking the
    # import's registered rows: a clerk's page polls the progress of a 250,000-row roster every second.
    Index("ix_census_import_rows_problems", "import_id", "row_number", postgresql_where=text("outcome <> 'registered'")),
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
