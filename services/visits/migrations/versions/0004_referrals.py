"""referrals (转介) and the dropout flow (劝返复学): cases, timelines, requests, disclosures, written reports,
persuasion attempts, absences, county calendars, county policy overrides

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 21:27:44.739961
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('child_absences',
    sa.Column('absence_id', sa.UUID(), nullable=False),
    sa.Column('child_id', sa.UUID(), nullable=False),
    sa.Column('from_date', sa.Date(), nullable=False),
    sa.Column('to_date', sa.Date(), nullable=False),
    sa.Column('school_days', sa.Integer(), nullable=False),
    sa.Column('excused', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('absence_id', name=op.f('pk_child_absences'))
    )
    op.create_index('ix_child_absences_child_id', 'child_absences', ['child_id', 'from_date'], unique=False)
    op.create_table('county_calendar',
    sa.Column('county', sa.Text(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('working', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('county', 'day', name=op.f('pk_county_calendar'))
    )
    op.create_table('referral_policy_overrides',
    sa.Column('county', sa.Text(), nullable=False),
    sa.Column('policy', sa.Text(), nullable=False),
    sa.Column('settings', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.PrimaryKeyConstraint('county', 'policy', name=op.f('pk_referral_policy_overrides'))
    )
    op.create_table('referrals',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('child_id', sa.UUID(), nullable=False),
    sa.Column('policy', sa.Text(), nullable=False),
    sa.Column('county', sa.Text(), nullable=False),
    sa.Column('village_code', sa.Text(), nullable=False),
    sa.Column('school_id', sa.Text(), nullable=True),
    sa.Column('stage', sa.Text(), nullable=False),
    sa.Column('trigger', sa.Text(), nullable=False),
    sa.Column('opened_on', sa.Date(), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('refusals', sa.Integer(), server_default='0', nullable=False),
    sa.Column('helper_ids', sa.ARRAY(sa.UUID()), server_default='{}', nullable=False),
    sa.Column('outcome', sa.Text(), nullable=True),
    sa.Column('closed_on', sa.Date(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_referrals'))
    )
    op.create_index('ix_referrals_village_code', 'referrals', ['village_code'], unique=False, postgresql_ops={'village_code': 'text_pattern_ops'})
    op.create_index('uq_referrals_open', 'referrals', ['child_id', 'policy'], unique=True, postgresql_where=sa.text("stage <> 'closed'"))
    op.create_table('referral_attempts',
    sa.Column('record_id', sa.UUID(), nullable=False),
    sa.Column('referral_id', sa.UUID(), nullable=False),
    sa.Column('visited_on', sa.Date(), nullable=False),
    sa.Column('outcome', sa.Text(), nullable=False),
    sa.Column('cause', sa.Text(), nullable=True),
    sa.Column('guardian_view', sa.Text(), nullable=True),
    sa.Column('recorded_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['referral_id'], ['referrals.id'], name=op.f('fk_referral_attempts_referral_id_referrals')),
    sa.PrimaryKeyConstraint('record_id', name=op.f('pk_referral_attempts'))
    )
    op.create_index('ix_referral_attempts_referral_id', 'referral_attempts', ['referral_id'], unique=False)
    op.create_table('referral_disclosures',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('referral_id', sa.UUID(), nullable=False),
    sa.Column('agency', sa.Text(), nullable=False),
    sa.Column('fields', sa.ARRAY(sa.Text()), nullable=False),
    sa.Column('purpose', sa.Text(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['referral_id'], ['referrals.id'], name=op.f('fk_referral_disclosures_referral_id_referrals')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_referral_disclosures'))
    )
    op.create_index('ix_referral_disclosures_referral_id', 'referral_disclosures', ['referral_id'], unique=False)
    op.create_table('referral_reports',
    sa.Column('referral_id', sa.UUID(), nullable=False),
    sa.Column('html', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['referral_id'], ['referrals.id'], name=op.f('fk_referral_reports_referral_id_referrals')),
    sa.PrimaryKeyConstraint('referral_id', name=op.f('pk_referral_reports'))
    )
    op.create_table('referral_requests',
    sa.Column('request_id', sa.UUID(), nullable=False),
    sa.Column('referral_id', sa.UUID(), nullable=False),
    sa.Column('agency', sa.Text(), nullable=True),
    sa.Column('purpose', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['referral_id'], ['referrals.id'], name=op.f('fk_referral_requests_referral_id_referrals')),
    sa.PrimaryKeyConstraint('request_id', name=op.f('pk_referral_requests'))
    )
    op.create_table('referral_timeline',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('referral_id', sa.UUID(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('step', sa.Text(), nullable=False),
    sa.Column('actor', sa.Text(), nullable=False),
    sa.Column('detail', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.ForeignKeyConstraint(['referral_id'], ['referrals.id'], name=op.f('fk_referral_timeline_referral_id_referrals')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_referral_timeline'))
    )
    op.create_index('ix_referral_timeline_referral_id', 'referral_timeline', ['referral_id', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_referral_timeline_referral_id', table_name='referral_timeline')
    op.drop_table('referral_timeline')
    op.drop_table('referral_requests')
    op.drop_table('referral_reports')
    op.drop_index('ix_referral_disclosures_referral_id', table_name='referral_disclosures')
    op.drop_table('referral_disclosures')
    op.drop_index('ix_referral_attempts_referral_id', table_name='referral_attempts')
    op.drop_table('referral_attempts')
    op.drop_index('uq_referrals_open', table_name='referrals', postgresql_where=sa.text("stage <> 'closed'"))
    op.drop_index('ix_referrals_village_code', table_name='referrals', postgresql_ops={'village_code': 'text_pattern_ops'})
    op.drop_table('referrals')
    op.drop_table('referral_policy_overrides')
    op.drop_table('county_calendar')
    op.drop_index('ix_child_absences_child_id', table_name='child_absences')
    op.drop_table('child_absences')
