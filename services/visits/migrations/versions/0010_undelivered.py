"""undelivered referral messages (未能送达): a case's message that notifications could not deliver on any
channel (notifications.delivery.failed with no fallback, e.g. a county whose agencies are not in its
directory) is kept once per delivery, and the case shows it while it waits in the stage the message was
for; a request remembers that stage

Revision ID: 0010
Revises: 0009
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("referral_requests", sa.Column("stage", sa.Text()))
    op.create_table(
        "referral_undelivered",
        sa.Column("delivery_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("request_id", UUID(as_uuid=True), sa.ForeignKey("referral_requests.request_id"), nullable=False),
        sa.Column("referral_id", UUID(as_uuid=True), sa.ForeignKey("referrals.id"), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("agency", sa.Text()),
        sa.Column("stage", sa.Text(), nullable=False),
        sa.Column("cause", sa.Text(), nullable=False),
        sa.Column("channel", sa.Text()),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index("ix_referral_undelivered_referral_id", "referral_undelivered", ["referral_id"])


def downgrade() -> None:
    op.drop_table("referral_undelivered")
    op.drop_column("referral_requests", "stage")
