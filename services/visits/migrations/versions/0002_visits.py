"""visits: helpers, pairings, rules and terms per county, visit records with corrections and
concerns, group activities, overdue windows, and the timers table (timers are data).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 02:33:03.062082
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('activities',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('kind', sa.Text(), nullable=False),
    sa.Column('held_on', sa.Date(), nullable=False),
    sa.Column('place', sa.Text(), nullable=False),
    sa.Column('organiser', sa.Text(), nullable=False),
    sa.Column('region_code', sa.Text(), nullable=False),
    sa.Column('guardians', sa.Integer(), nullable=False),
    sa.Column('recorded_by', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_activities'))
    )
    op.create_index('ix_activities_region_code', 'activities', ['region_code'], unique=False, postgresql_ops={'region_code': 'text_pattern_ops'})
    op.create_table('county_terms',
    sa.Column('county_code', sa.Text(), nullable=False),
    sa.Column('starts_on', sa.Date(), nullable=False),
    sa.Column('ends_on', sa.Date(), nullable=False),
    sa.CheckConstraint('ends_on > starts_on', name=op.f('ck_county_terms_term_dates')),
    sa.PrimaryKeyConstraint('county_code', 'starts_on', name=op.f('pk_county_terms'))
    )
    op.create_table('helpers',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('role', sa.Text(), nullable=False),
    sa.Column('organisation', sa.Text(), nullable=False),
    sa.Column('region_code', sa.Text(), nullable=False),
    sa.Column('phone', sa.Text(), nullable=True),
    sa.Column('school_id', sa.Text(), nullable=True),
    sa.Column('class_name', sa.Text(), nullable=True),
    sa.Column('account', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_helpers')),
    sa.UniqueConstraint('account', name=op.f('uq_helpers_account'))
    )
    op.create_index('ix_helpers_region_code', 'helpers', ['region_code'], unique=False, postgresql_ops={'region_code': 'text_pattern_ops'})
    op.create_index('ix_helpers_school_class', 'helpers', ['school_id', 'class_name'], unique=False, postgresql_where=sa.text("role = 'class_teacher'"))
    op.create_table('overdue_windows',
    sa.Column('child_id', sa.UUID(), nullable=False),
    sa.Column('rule_code', sa.Text(), nullable=False),
    sa.Column('window_key', sa.Text(), nullable=False),
    sa.Column('required', sa.Integer(), nullable=False),
    sa.Column('done', sa.Integer(), nullable=False),
    sa.Column('detected_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('child_id', 'rule_code', 'window_key', name=op.f('pk_overdue_windows'))
    )
    op.create_table('timers',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('kind', sa.Text(), nullable=False),
    sa.Column('key', sa.Text(), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('payload', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('fired_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_timers'))
    )
    op.create_index('ix_timers_due', 'timers', ['due_at'], unique=False, postgresql_where=sa.text('fired_at IS NULL'))
    op.create_index('uq_timers_kind_key', 'timers', ['kind', 'key'], unique=True)
    op.create_table('visit_rules',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('county_code', sa.Text(), nullable=False),
    sa.Column('code', sa.Text(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('effective_from', sa.Date(), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('roles', sa.ARRAY(sa.Text()), nullable=False),
    sa.Column('kinds', sa.ARRAY(sa.Text()), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('window', sa.Text(), nullable=False),
    sa.Column('group_name', sa.Text(), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('changed_by', sa.Text(), nullable=False),
    sa.Column('changed_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_visit_rules')),
    sa.UniqueConstraint('county_code', 'code', 'version', name=op.f('uq_visit_rules_county_code'))
    )
    op.create_table('activity_children',
    sa.Column('activity_id', sa.UUID(), nullable=False),
    sa.Column('child_id', sa.UUID(), nullable=False),
    sa.ForeignKeyConstraint(['activity_id'], ['activities.id'], name=op.f('fk_activity_children_activity_id_activities')),
    sa.ForeignKeyConstraint(['child_id'], ['children.child_id'], name=op.f('fk_activity_children_child_id_children')),
    sa.PrimaryKeyConstraint('activity_id', 'child_id', name=op.f('pk_activity_children'))
    )
    op.create_index('ix_activity_children_child_id', 'activity_children', ['child_id'], unique=False)
    op.create_table('pairings',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('helper_id', sa.UUID(), nullable=False),
    sa.Column('child_id', sa.UUID(), nullable=False),
    sa.Column('started_on', sa.Date(), nullable=False),
    sa.Column('ended_on', sa.Date(), nullable=True),
    sa.Column('end_reason', sa.Text(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_by', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['child_id'], ['children.child_id'], name=op.f('fk_pairings_child_id_children')),
    sa.ForeignKeyConstraint(['helper_id'], ['helpers.id'], name=op.f('fk_pairings_helper_id_helpers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pairings'))
    )
    op.create_index('ix_pairings_child_id', 'pairings', ['child_id'], unique=False)
    op.create_index('ix_pairings_helper_id', 'pairings', ['helper_id'], unique=False)
    op.create_index('uq_pairings_active', 'pairings', ['helper_id', 'child_id'], unique=True, postgresql_where=sa.text('ended_on IS NULL'))
    op.create_table('visit_records',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('child_id', sa.UUID(), nullable=False),
    sa.Column('helper_id', sa.UUID(), nullable=False),
    sa.Column('helper_role', sa.Text(), nullable=False),
    sa.Column('kind', sa.Text(), nullable=False),
    sa.Column('visited_on', sa.Date(), nullable=False),
    sa.Column('observations', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('village_code', sa.Text(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('recorded_by', sa.Text(), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['child_id'], ['children.child_id'], name=op.f('fk_visit_records_child_id_children')),
    sa.ForeignKeyConstraint(['helper_id'], ['helpers.id'], name=op.f('fk_visit_records_helper_id_helpers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_visit_records'))
    )
    op.create_index('ix_visit_records_child_day', 'visit_records', ['child_id', 'visited_on'], unique=False)
    op.create_index('ix_visit_records_helper_day', 'visit_records', ['helper_id', 'visited_on'], unique=False)
    op.create_table('concerns',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('record_id', sa.UUID(), nullable=False),
    sa.Column('child_id', sa.UUID(), nullable=False),
    sa.Column('kind', sa.Text(), nullable=False),
    sa.Column('severity', sa.Text(), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('raised_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['record_id'], ['visit_records.id'], name=op.f('fk_concerns_record_id_visit_records')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_concerns'))
    )
    op.create_index(op.f('ix_concerns_child_id'), 'concerns', ['child_id'], unique=False)
    op.create_index(op.f('ix_concerns_record_id'), 'concerns', ['record_id'], unique=False)
    op.create_table('record_corrections',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('record_id', sa.UUID(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('before', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('after', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('changed_by', sa.Text(), nullable=False),
    sa.Column('changed_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['record_id'], ['visit_records.id'], name=op.f('fk_record_corrections_record_id_visit_records')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_record_corrections'))
    )
    op.create_index(op.f('ix_record_corrections_record_id'), 'record_corrections', ['record_id'], unique=False)
    op.add_column('children', sa.Column('closed_on', sa.Date(), nullable=True))
    op.add_column('children', sa.Column('merged_into', sa.UUID(), nullable=True))
    op.create_index('ix_children_school_class', 'children', ['school_id', 'class_name'], unique=False)
    op.create_index('ix_children_village_code', 'children', ['village_code'], unique=False, postgresql_ops={'village_code': 'text_pattern_ops'})


def downgrade() -> None:
    op.drop_index('ix_children_village_code', table_name='children', postgresql_ops={'village_code': 'text_pattern_ops'})
    op.drop_index('ix_children_school_class', table_name='children')
    op.drop_column('children', 'merged_into')
    op.drop_column('children', 'closed_on')
    op.drop_index(op.f('ix_record_corrections_record_id'), table_name='record_corrections')
    op.drop_table('record_corrections')
    op.drop_index(op.f('ix_concerns_record_id'), table_name='concerns')
    op.drop_index(op.f('ix_concerns_child_id'), table_name='concerns')
    op.drop_table('concerns')
    op.drop_index('ix_visit_records_helper_day', table_name='visit_records')
    op.drop_index('ix_visit_records_child_day', table_name='visit_records')
    op.drop_table('visit_records')
    op.drop_index('uq_pairings_active', table_name='pairings', postgresql_where=sa.text('ended_on IS NULL'))
    op.drop_index('ix_pairings_helper_id', table_name='pairings')
    op.drop_index('ix_pairings_child_id', table_name='pairings')
    op.drop_table('pairings')
    op.drop_index('ix_activity_children_child_id', table_name='activity_children')
    op.drop_table('activity_children')
    op.drop_table('visit_rules')
    op.drop_index('uq_timers_kind_key', table_name='timers')
    op.drop_index('ix_timers_due', table_name='timers', postgresql_where=sa.text('fired_at IS NULL'))
    op.drop_table('timers')
    op.drop_table('overdue_windows')
    op.drop_index('ix_helpers_school_class', table_name='helpers', postgresql_where=sa.text("role = 'class_teacher'"))
    op.drop_index('ix_helpers_region_code', table_name='helpers', postgresql_ops={'region_code': 'text_pattern_ops'})
    op.drop_table('helpers')
    op.drop_table('county_terms')
    op.drop_index('ix_activities_region_code', table_name='activities', postgresql_ops={'region_code': 'text_pattern_ops'})
    op.drop_table('activities')
