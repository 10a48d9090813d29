"""The reporting service's tables: facts without names, and rollups kept up to date by events."""

from sqlalchemy import ARRAY, BigInteger, Boolean, Column, Date, DateTime, Index, Integer, Table, Text, false, func
from sqlalchemy.dialects.postgresql import UUID

from shared.db import new_metadata
from shared.messaging import consumer_tables

metadata = new_metadata()

# Per child, only what figures need: place, school, type, guardianship, enrolment. No name, phone or ID number.
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
    Column("school_id", Text),
    Column("father_status", Text),
    Column("mother_status", Text),
    Column("guardian_relationship", Text),
    Column("enrolment_status", Text),
    Column("out_since", Date),  # 辍学 since (registered dropout not yet returned)
    Column("unguarded_since", Date),  # 无人监护 since
    Column("agreement_until", Date),  # the agreement in force is valid until
    Index("ix_child_facts_village_code", "village_code", postgresql_ops={"village_code": "text_pattern_ops"}),
)

# Counts of children per place and label (domain.figures.labels): every level and every school.
place_figures = Table(
    "place_figures",
    metadata,
    Column("place", Text, primary_key=True),
    Column("figure", Text, primary_key=True),
    Column("value", BigInteger, nullable=False),
)

# What happened per place and month (registrations, visits, agreements signed, person-times...).
monthly_figures = Table(
    "monthly_figures",
    metadata,
    Column("place", Text, primary_key=True),
    Column("month", Date, primary_key=True),
    Column("figure", Text, primary_key=True),
    Column("value", BigInteger, nullable=False),
)

# Visit records as far as figures need them, so that a correction moves its counts.
visit_records = Table(
    "visit_records",
    metadata,
    Column("record_id", UUID(as_uuid=True), primary_key=True),
    Column("child_id", UUID(as_uuid=True), nullable=False),
    Column("helper_id", UUID(as_uuid=True), nullable=False),
    Column("kind", Text, nullable=False),
    Column("visited_on", Date, nullable=False),
    Column("region_code", Text, nullable=False),
    Index("ix_visit_records_child_day", "child_id", "visited_on"),  # a child's last contact
)

# Per child: last contact (for 30+ days without contact), contacts and missed windows.
child_contacts = Table(
    "child_visits",
    metadata,
    Column("child_id", UUID(as_uuid=True), primary_key=True),
    Column("last_contact_on", Date),
    Column("contacts", Integer, nullable=False, server_default="0"),
    Column("missed_windows", Integer, nullable=False, server_default="0"),
)

# Pairings (结对) in force: which children have a helper.
pairings = Table(
    "pairings",
    metadata,
    Column("pairing_id", UUID(as_uuid=True), primary_key=True),
    Column("child_id", UUID(as_uuid=True), nullable=False, index=True),
    Column("helper_id", UUID(as_uuid=True), nullable=False),
    Column("helper_role", Text, nullable=False),
    Column("active", Boolean, nullable=False),
)

# Per helper and month: contacts made and windows missed (走访考核).
helper_months = Table(
    "helper_months",
    metadata,
    Column("helper_id", UUID(as_uuid=True), primary_key=True),
    Column("month", Date, primary_key=True),
    Column("contacts", Integer, nullable=False, server_default="0"),
    Column("missed_windows", Integer, nullable=False, server_default="0"),
)

# Reference data (参考数据): all children living in a place, the denominator of the left-behind share.
child_population = Table(
    "child_population",
    metadata,
    Column("place", Text, primary_key=True),
    Column("children", Integer, nullable=False),
    Column("source", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

inbox, positions = consumer_tables(metadata)

# What `shouhu reporting rebuild` empties before replaying the streams (reference data stays).
PROJECTIONS = (child_facts, place_figures, monthly_figures, visit_records, child_contacts, pairings, helper_months,
               inbox, positions)
