"""Tables of referrals (转介) and the dropout flow, in the visits service's database."""

from sqlalchemy import ARRAY, BigInteger, Boolean, Column, Date, DateTime, ForeignKey, Index, Integer, Table, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB, UUID

from services.visits.adapters.orm import metadata

referrals = Table(
    "referrals",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("child_id", UUID(as_uuid=True), nullable=False),
    Column("policy", Text, nullable=False),
    Column("county", Text, nullable=False),
    Column("village_code", Text, nullable=False),
    Column("school_id", Text),
    Column("stage", Text, nullable=False),
    Column("trigger", Text, nullable=False),
    Column("opened_on", Date, nullable=False),
    Column("due_at", DateTime(timezone=True)),
    Column("refusals", Integer, nullable=False, server_default="0"),
    Column("helper_ids", ARRAY(UUID(as_uuid=True)), nullable=False, server_default="{}"),
    Column("outcome", Text),
    Column("closed_on", Date),
    Column("version", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # One open case per child and policy: a second trigger joins the open one.
    Index("uq_referrals_open", "child_id", "policy", unique=True, postgresql_where=text("stage <> 'closed'")),
    Index("ix_referrals_village_code", "village_code", postgresql_ops={"village_code": "text_pattern_ops"}),
)

# The case's timeline: every step, in order (who, what, when), for the written report and the office.
referral_timeline = Table(
    "referral_timeline",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("referral_id", UUID(as_uuid=True), ForeignKey("referrals.id"), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("step", Text, nullable=False),
    Column("actor", Text, nullable=False),
    Column("detail", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Index("ix_referral_timeline_referral_id", "referral_id", "id"),
)

# Messages asked of notifications for a case: an agency's acknowledgement or outcome comes back by request_id.
referral_requests = Table(
    "referral_requests",
    metadata,
    Column("request_id", UUID(as_uuid=True), primary_key=True),
    Column("referral_id", UUID(as_uuid=True), ForeignKey("referrals.id"), nullable=False),
    Column("agency", Text),
    Column("purpose", Text, nullable=False),  # report | inform | reminder | escalation | notice
    Column("stage", Text),  # the stage the message was sent for (null: asked before 0010)
)

# 未能送达: a case's message that notifications could not deliver on any channel (notifications.delivery.failed
# with no fallback), once per delivery. Outstanding while the case is open in the stage the message was for.
referral_undelivered = Table(
    "referral_undelivered",
    metadata,
    Column("delivery_id", UUID(as_uuid=True), primary_key=True),
    Column("request_id", UUID(as_uuid=True), ForeignKey("referral_requests.request_id"), nullable=False),
    Column("referral_id", UUID(as_uuid=True), ForeignKey("referrals.id"), nullable=False),
    Column("purpose", Text, nullable=False),
    Column("agency", Text),  # the agency kind (null: the family's notice)
    Column("stage", Text, nullable=False),
    Column("cause", Text, nullable=False),  # no_channel | refused | retries_exhausted
    Column("channel", Text),
    Column("reason", Text, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_referral_undelivered_referral_id", "referral_id"),
)

# 披露记录: which facts went to which agency, when, for which case. Append-only.
referral_disclosures = Table(
    "referral_disclosures",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("referral_id", UUID(as_uuid=True), ForeignKey("referrals.id"), nullable=False),
    Column("agency", Text, nullable=False),
    Column("fields", ARRAY(Text), nullable=False),
    Column("purpose", Text, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_referral_disclosures_referral_id", "referral_id"),
)

# 书面报告: the written report as delivered (printable HTML).
referral_reports = Table(
    "referral_reports",
    metadata,
    Column("referral_id", UUID(as_uuid=True), ForeignKey("referrals.id"), primary_key=True),
    Column("html", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# 劝返走访: the persuasion visits of a case (the visit record itself is in records).
referral_attempts = Table(
    "referral_attempts",
    metadata,
    Column("record_id", UUID(as_uuid=True), primary_key=True),
    Column("referral_id", UUID(as_uuid=True), ForeignKey("referrals.id"), nullable=False),
    Column("visited_on", Date, nullable=False),
    Column("outcome", Text, nullable=False),
    Column("cause", Text),
    Column("guardian_view", Text),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_referral_attempts_referral_id", "referral_id"),
)

# Absences from the registry's events: what the dropout threshold counts.
child_absences = Table(
    "child_absences",
    metadata,
    Column("absence_id", UUID(as_uuid=True), primary_key=True),
    Column("child_id", UUID(as_uuid=True), nullable=False),
    Column("from_date", Date, nullable=False),
    Column("to_date", Date, nullable=False),
    Column("school_days", Integer, nullable=False),
    Column("excused", Boolean, nullable=False),
    Index("ix_child_absences_child_id", "child_id", "from_date"),
)

# A county's calendar: holidays, and weekend days that are working days (调休).
county_calendar = Table(
    "county_calendar",
    metadata,
    Column("county", Text, primary_key=True),
    Column("day", Date, primary_key=True),
    Column("working", Boolean, nullable=False),
)

# A county's own values over the default referral policies.
referral_policy_overrides = Table(
    "referral_policy_overrides",
    metadata,
    Column("county", Text, primary_key=True),
    Column("policy", Text, primary_key=True),
    Column("settings", JSONB, nullable=False),
)
