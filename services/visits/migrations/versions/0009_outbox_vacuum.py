"""the outbox vacuumed at 10,000 dead rows whatever its size, and without pauses (issue 10)

Every event's row is written once and updated once (published_at), so the outbox is mostly dead rows,
and the relay's next-batch query walks their index entries until a vacuum removes them: in a census of a
million rows the registry's outbox held 935,500 dead rows and that query took 55 ms (0.5 ms after a
VACUUM). Autovacuum's default waits for 20% of the table to be dead (260,000 rows of a 1.3 million-row
outbox) and then pauses as it goes. (The machine that run was on has autovacuum off altogether, in its
conf.d/90-ci.conf: these settings act where autovacuum runs, as in every deployment.)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 21:10:00
"""
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE outbox SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 10000, "
               "autovacuum_vacuum_cost_delay = 0)")


def downgrade() -> None:
    op.execute("ALTER TABLE outbox RESET (autovacuum_vacuum_scale_factor, autovacuum_vacuum_threshold, "
               "autovacuum_vacuum_cost_delay)")
