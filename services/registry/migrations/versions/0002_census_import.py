"""census import (摸底排查): jobs with their uploads, row outcomes, natural keys

Revision ID: 0002_census
Revises: 0001
Create Date: 2026-11-23 02:48:17.463539
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0002_census'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('census_imports',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('filename', sa.Text(), nullable=False),
    sa.Column('format', sa.Text(), nullable=False),
    sa.Column('content', sa.LargeBinary(), nullable=False),
    sa.Column('actor', sa.Text(), nullable=False),
    sa.Column('region', sa.Text(), nullable=False),
    sa.Column('status', sa.Text(), nullable=False),
    sa.Column('rows_total', sa.Integer(), nullable=False),
    sa.Column('rows_done', sa.Integer(), server_default='0', nullable=False),
    sa.Column('last_row', sa.Integer(), server_default='0', nullable=False),
    sa.Column('registered', sa.Integer(), server_default='0', nullable=False),
    sa.Column('already_registered', sa.Integer(), server_default='0', nullable=False),
    sa.Column('rejected', sa.Integer(), server_default='0', nullable=False),
    sa.Column('worker', sa.Text(), nullable=True),
    sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_census_imports'))
    )
    op.create_index('ix_census_imports_pending', 'census_imports', ['created_at'], unique=False, postgresql_where=sa.text("status <> 'done'"))
    op.create_table('census_keys',
    sa.Column('key', sa.Text(), nullable=False),
    sa.Column('child_id', sa.UUID(), nullable=False),
    sa.Column('import_id', sa.UUID(), nullable=False),
    sa.Column('row_number', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_census_keys'))
    )
    op.create_table('census_import_rows',
    sa.Column('import_id', sa.UUID(), nullable=False),
    sa.Column('row_number', sa.Integer(), nullable=False),
    sa.Column('outcome', sa.Text(), nullable=False),
    sa.Column('child_id', sa.UUID(), nullable=True),
    sa.Column('errors', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.ForeignKeyConstraint(['import_id'], ['census_imports.id'], name=op.f('fk_census_import_rows_import_id_census_imports'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('import_id', 'row_number', name=op.f('pk_census_import_rows'))
    )


def downgrade() -> None:
    op.drop_table('census_import_rows')
    op.drop_table('census_keys')
    op.drop_index('ix_census_imports_pending', table_name='census_imports', postgresql_where=sa.text("status <> 'done'"))
    op.drop_table('census_imports')
