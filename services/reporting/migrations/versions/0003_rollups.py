"""rollups: figures per place and label and per month, visits, pairings, helpers, population reference

Revision ID: 0003_rollups
Revises: 0002_closed
Create Date: 2026-12-10 09:00:00

region_counts becomes the "children" figure of place_figures. The new facts (school, guardian,
enrolment...) of children registered before this revision are unknown here: run
`shouhu reporting rebuild` once after upgrading.
"""
from alembic import op
import sqlalchemy as sa

revision = '0003_rollups'
down_revision = '0002_closed'
branch_labels = None
depends_on = None

_FACTS = ("school_id", "father_status", "mother_status", "guardian_relationship", "enrolment_status")
_DATES = ("out_since", "unguarded_since", "agreement_until")


def upgrade() -> None:
    for name in _FACTS:
        op.add_column('child_facts', sa.Column(name, sa.Text()))
    for name in _DATES:
        op.add_column('child_facts', sa.Column(name, sa.Date()))
    op.create_index('ix_child_facts_village_code', 'child_facts', ['village_code'],
                    postgresql_ops={'village_code': 'text_pattern_ops'})
    op.create_table('place_figures',
        sa.Column('place', sa.Text(), nullable=False),
        sa.Column('figure', sa.Text(), nullable=False),
        sa.Column('value', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('place', 'figure', name=op.f('pk_place_figures')))
    op.execute("INSERT INTO place_figures (place, figure, value) SELECT region_code, 'children', children FROM region_counts")
    op.drop_table('region_counts')
    op.create_table('monthly_figures',
        sa.Column('place', sa.Text(), nullable=False),
        sa.Column('month', sa.Date(), nullable=False),
        sa.Column('figure', sa.Text(), nullable=False),
        sa.Column('value', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('place', 'month', 'figure', name=op.f('pk_monthly_figures')))
    op.create_table('visit_records',
        sa.Column('record_id', sa.UUID(), nullable=False),
        sa.Column('child_id', sa.UUID(), nullable=False),
        sa.Column('helper_id', sa.UUID(), nullable=False),
        sa.Column('kind', sa.Text(), nullable=False),
        sa.Column('visited_on', sa.Date(), nullable=False),
        sa.Column('region_code', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('record_id', name=op.f('pk_visit_records')))
    op.create_table('child_visits',
        sa.Column('child_id', sa.UUID(), nullable=False),
        sa.Column('last_contact_on', sa.Date()),
        sa.Column('contacts', sa.Integer(), server_default='0', nullable=False),
        sa.Column('missed_windows', sa.Integer(), server_default='0', nullable=False),
        sa.PrimaryKeyConstraint('child_id', name=op.f('pk_child_visits')))
    op.create_table('pairings',
        sa.Column('pairing_id', sa.UUID(), nullable=False),
        sa.Column('child_id', sa.UUID(), nullable=False),
        sa.Column('helper_id', sa.UUID(), nullable=False),
        sa.Column('helper_role', sa.Text(), nullable=False),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint('pairing_id', name=op.f('pk_pairings')))
    op.create_index(op.f('ix_pairings_child_id'), 'pairings', ['child_id'])
    op.create_table('helper_months',
        sa.Column('helper_id', sa.UUID(), nullable=False),
        sa.Column('month', sa.Date(), nullable=False),
        sa.Column('contacts', sa.Integer(), server_default='0', nullable=False),
        sa.Column('missed_windows', sa.Integer(), server_default='0', nullable=False),
        sa.PrimaryKeyConstraint('helper_id', 'month', name=op.f('pk_helper_months')))
    op.create_table('child_population',
        sa.Column('place', sa.Text(), nullable=False),
        sa.Column('children', sa.Integer(), nullable=False),
        sa.Column('source', sa.Text(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.PrimaryKeyConstraint('place', name=op.f('pk_child_population')))


def downgrade() -> None:
    for name in ('child_population', 'helper_months', 'pairings', 'child_visits', 'visit_records', 'monthly_figures'):
        op.drop_table(name)
    op.create_table('region_counts',
        sa.Column('region_code', sa.Text(), nullable=False),
        sa.Column('children', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('region_code', name=op.f('pk_region_counts')))
    op.execute("INSERT INTO region_counts SELECT place, value FROM place_figures "
               "WHERE figure = 'children' AND place ~ '^[0-9]+$'")
    op.drop_table('place_figures')
    op.drop_index('ix_child_facts_village_code', 'child_facts')
    for name in (*_FACTS, *_DATES):
        op.drop_column('child_facts', name)
