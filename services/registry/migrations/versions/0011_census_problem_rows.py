"""census import rows: an index of the rows with something to report (issue 10)

An import's progress (GET /api/v1/imports/{id}) and its report.xlsx read the rows that were not
registered. Through the primary key they walked every row of the import and read each from the
heap to see its outcome: 67 ms and 1,557 pages for a 100,000-row import, each time a clerk's page
(or the bench) polls, growing with the import. The partial index holds only the rows to report.

Revision ID: 0011_census_problem_rows
Revises: 0010_outbox_vacuum
"""
from alembic import op
import sqlalchemy as sa

revision = '0011_census_problem_rows'
down_revision = '0010_outbox_vacuum'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_census_import_rows_problems', 'census_import_rows', ['import_id', 'row_number'], unique=False,
                    postgresql_where=sa.text("outcome <> 'registered'"))


def downgrade() -> None:
    op.drop_index('ix_census_import_rows_problems', table_name='census_import_rows',
                  postgresql_where=sa.text("outcome <> 'registered'"))
