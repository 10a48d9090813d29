"""access (issue 9): row-level security on children, visit records and referrals by the caller's
scope; the append-only audit log

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-20 10:00:00
"""
from alembic import op

from shared.security.rls import downgrade_access, upgrade_access

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

PROTECTED = [("children", "village_code"), ("visit_records", "village_code"), ("referrals", "village_code")]


def upgrade() -> None:
    upgrade_access(op, PROTECTED)


def downgrade() -> None:
    downgrade_access(op, PROTECTED)
