"""a child's visit records by day: the handler of each new record recomputes the child's last contact
from its records, which without this index scanned every record (70 ms a record at 8.6 million records,
bench/reporting.py)

Revision ID: 0005_child_visit_days
Revises: 0004_access
Create Date: 2026-12-02 09:00:00
"""
from alembic import op

revision = '0005_child_visit_days'
down_revision = '0004_access'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_visit_records_child_day", "visit_records", ["child_id", "visited_on"])


def downgrade() -> None:
    op.drop_index("ix_visit_records_child_day", table_name="visit_records")
