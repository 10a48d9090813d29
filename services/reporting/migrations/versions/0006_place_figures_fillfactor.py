"""place_figures pages kept 70% free (fillfactor 30), so that adding to a figure is a HOT update

Revision ID: 0006_place_figures_fillfactor
Revises: 0005_child_visit_days
Create Date: 2026-12-04 23:00:00

Every row of place_figures is a current count, added to by each batch that moves it (a census batch of
200 registrations moves about 2,300 of them). On full pages each update's new version went to another page
and into the primary key again: 3.7 WAL records a row (bench consumers, 50 batches). With room on its page
the new version stays there (heap-only tuple; the old one is pruned when the page is next read, vacuum or
not): 2.3 WAL records a row, the statement about half as long. The table is bounded (places x labels),
so the space is affordable; monthly_figures keeps the default: its past months are no longer written.
CLUSTER rewrites the rows already there at the new fillfactor (in key order), under a short exclusive lock.
"""
from alembic import op

revision = '0006_place_figures_fillfactor'
down_revision = '0005_child_visit_days'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE place_figures SET (fillfactor = 30)")
    op.execute("CLUSTER place_figures USING pk_place_figures")


def downgrade() -> None:
    op.execute("ALTER TABLE place_figures RESET (fillfactor)")
    op.execute("CLUSTER place_figures USING pk_place_figures")
