"""access (issue 9): the append-only audit log

Revision ID: 0003_audit
Revises: 0002
Create Date: 2026-12-20 10:00:00
"""
from alembic import op

from shared.security.audit import create_audit_log, drop_audit_log

revision = '0003_audit'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_audit_log(op)


def downgrade() -> None:
    drop_audit_log(op)
