"""The admin pages: an audit log of every change, and a session version per user (a password reset or a
deactivation signs the user out everywhere); when the listener last saw a call record; pick-up claims
and rate-limit events.

Revision ID: 7a4e0c1b2d55
Revises: 5c1d7e2f9a30
Create Date: 2026-11-27 17:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '7a4e0c1b2d55'
down_revision = '5c1d7e2f9a30'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('pbx_audit',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.Column('action', sa.String(length=10), nullable=False),
    sa.Column('object_type', sa.String(length=20), nullable=False),
    sa.Column('object_key', sa.String(length=100), nullable=False),
    sa.Column('changes', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_pbx_audit_at', 'pbx_audit', ['at'])
    op.create_index('ix_pbx_audit_object', 'pbx_audit', ['object_type', 'at'])
    op.create_index('ix_pbx_audit_actor', 'pbx_audit', ['actor'])
    with op.batch_alter_table('pbx_users') as batch:
        batch.add_column(sa.Column('session_version', sa.Integer(), nullable=False, server_default='0'))
        batch.add_column(sa.Column('created_at', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('pbx_ami_status') as batch:
        batch.add_column(sa.Column('last_cdr_at', sa.DateTime(timezone=True), nullable=True))
    op.create_table('pbx_pickup_claims',
    sa.Column('uniqueid', sa.String(length=150), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['pbx_users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('uniqueid')
    )
    op.create_table('pbx_rate_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=100), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_pbx_rate_events_key_at', 'pbx_rate_events', ['key', 'at'])


def downgrade():
    op.drop_table('pbx_rate_events')
    op.drop_table('pbx_pickup_claims')
    with op.batch_alter_table('pbx_ami_status') as batch:
        batch.drop_column('last_cdr_at')
    with op.batch_alter_table('pbx_users') as batch:
        batch.drop_column('created_at')
        batch.drop_column('session_version')
    op.drop_table('pbx_audit')
