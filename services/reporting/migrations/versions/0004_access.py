"""access (issue 9): row-level security on the facts and figures by place; the append-only audit log

Revision ID: 0004_access
Revises: 0003_rollups
Create Date: 2026-12-20 10:00:00

Figures are aggregates, but of a place: a township sees its own places' figures, not its neighbour's.
"""
from alembic import op

from shared.security.rls import downgrade_access, upgrade_access

revision = '0004_access'
down_revision = '0003_rollups'
branch_labels = None
depends_on = None

PROTECTED = [("child_facts", "village_code"), ("place_figures", "place"), ("monthly_figures", "place"),
             ("visit_records", "region_code")]


def upgrade() -> None:
    upgrade_access(op, PROTECTED)


def downgrade() -> None:
    downgrade_access(op, PROTECTED)
