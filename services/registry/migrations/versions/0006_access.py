"""access (issue 9): row-level security on children and the records of each child by the caller's
scope; the append-only audit log

Revision ID: 0006_access
Revises: 0005_protection
Create Date: 2026-12-20 10:00:00
"""
from alembic import op

from shared.security.rls import downgrade_access, upgrade_access

revision = '0006_access'
down_revision = '0005_protection'
branch_labels = None
depends_on = None

_OF_CHILD = "(SELECT c.village_code FROM children c WHERE c.id = child_id)"
PROTECTED = [("children", "village_code"), ("agreements", _OF_CHILD), ("absences", _OF_CHILD), ("growth_notes", _OF_CHILD)]


def upgrade() -> None:
    upgrade_access(op, PROTECTED)


def downgrade() -> None:
    downgrade_access(op, PROTECTED)
