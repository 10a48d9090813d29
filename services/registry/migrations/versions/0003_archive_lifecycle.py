"""the complete archive: lifecycle (close, reopen, merge), enrolment, 无人监护 flag, search key;
guardianship agreements, absences, growth notes, timers

Revision ID: 0003_archive
Revises: 0002_census
Create Date: 2026-12-01 21:40:00
"""
from alembic import op
import sqlalchemy as sa

revision = '0003_archive'
down_revision = '0002_census'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # pg_trgm is a trusted extension: the database's owner may create it.
    op.execute('CREATE EXTENSION IF NOT EXISTS pg_trgm')
    op.add_column('children', sa.Column('name_key', sa.Text(), nullable=True))
    # The same normalisation as the code's (NFKC, no white space), for archives written before it.
    op.execute(r"UPDATE children SET name_key = regexp_replace(normalize(name, NFKC), '\s', '', 'g')")
    op.alter_column('children', 'name_key', nullable=False)
    op.add_column('children', sa.Column('enrolment_status', sa.Text(), nullable=True))
    op.add_column('children', sa.Column('unguarded_cause', sa.Text(), nullable=True))
    op.add_column('children', sa.Column('unguarded_since', sa.Date(), nullable=True))
    op.add_column('children', sa.Column('archive_status', sa.Text(), server_default='open', nullable=False))
    op.add_column('children', sa.Column('closed_reason', sa.Text(), nullable=True))
    op.add_column('children', sa.Column('closed_on', sa.Date(), nullable=True))
    op.add_column('children', sa.Column('merged_into', sa.UUID(), nullable=True))
    op.drop_index('ix_children_id_number_hash', table_name='children')
    op.create_index('uq_children_open_id_number', 'children', ['id_number_hash'], unique=True,
                    postgresql_where=sa.text("archive_status = 'open'"))
    op.create_index('ix_children_name_key_trgm', 'children', ['name_key'], postgresql_using='gin',
                    postgresql_ops={'name_key': 'gin_trgm_ops'})
    op.create_index('ix_children_duplicate_key', 'children', ['birth_date', 'name_key'])
    op.create_table('agreements',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('child_id', sa.UUID(), nullable=False),
    sa.Column('guardian_name', sa.Text(), nullable=False),
    sa.Column('guardian_relationship', sa.Text(), nullable=False),
    sa.Column('signed_on', sa.Date(), nullable=False),
    sa.Column('valid_until', sa.Date(), nullable=False),
    sa.Column('status', sa.Text(), nullable=False),
    sa.Column('ended_on', sa.Date(), nullable=True),
    sa.Column('actor', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['child_id'], ['children.id'], name=op.f('fk_agreements_child_id_children')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_agreements'))
    )
    op.create_index('uq_agreements_in_force', 'agreements', ['child_id'], unique=True,
                    postgresql_where=sa.text("status = 'in_force'"))
    op.create_index('ix_agreements_child_id', 'agreements', ['child_id'])
    op.create_table('absences',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('child_id', sa.UUID(), nullable=False),
    sa.Column('school_id', sa.Text(), nullable=True),
    sa.Column('from_date', sa.Date(), nullable=False),
    sa.Column('to_date', sa.Date(), nullable=False),
    sa.Column('school_days', sa.Integer(), nullable=False),
    sa.Column('excused', sa.Boolean(), nullable=False),
    sa.Column('reason_code', sa.Text(), nullable=True),
    sa.Column('actor', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['child_id'], ['children.id'], name=op.f('fk_absences_child_id_children')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_absences'))
    )
    op.create_index('ix_absences_child_id', 'absences', ['child_id', 'from_date'])
    op.create_table('growth_notes',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('child_id', sa.UUID(), nullable=False),
    sa.Column('noted_on', sa.Date(), nullable=False),
    sa.Column('topic', sa.Text(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('actor', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['child_id'], ['children.id'], name=op.f('fk_growth_notes_child_id_children')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_growth_notes'))
    )
    op.create_index('ix_growth_notes_child_id', 'growth_notes', ['child_id', 'noted_on'])
    op.create_table('timers',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('kind', sa.Text(), nullable=False),
    sa.Column('key', sa.Text(), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('payload', sa.dialects.postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('fired_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_timers'))
    )
    op.create_index('ix_timers_due', 'timers', ['due_at'], postgresql_where=sa.text('fired_at IS NULL'))
    op.create_index('uq_timers_kind_key', 'timers', ['kind', 'key'], unique=True)


def downgrade() -> None:
    op.drop_table('timers')
    op.drop_table('growth_notes')
    op.drop_table('absences')
    op.drop_table('agreements')
    op.drop_index('ix_children_duplicate_key', table_name='children')
    op.drop_index('ix_children_name_key_trgm', table_name='children')
    op.drop_index('uq_children_open_id_number', table_name='children')
    op.create_index('ix_children_id_number_hash', 'children', ['id_number_hash'])
    for column in ('merged_into', 'closed_on', 'closed_reason', 'archive_status', 'unguarded_since',
                   'unguarded_cause', 'enrolment_status', 'name_key'):
        op.drop_column('children', column)
