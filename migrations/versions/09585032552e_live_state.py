"""Live state tables that the AMI listener writes: extension status, waiting calls, AMI status.

Revision ID: 09585032552e
Revises: 02ddfe520c4d
Create Date: 2026-11-27 10:56:20.098528

"""
from alembic import op
import sqlalchemy as sa


revision = '09585032552e'
down_revision = '02ddfe520c4d'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('pbx_ami_status',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('connected', sa.Boolean(), nullable=False),
    sa.Column('since', sa.DateTime(timezone=True), nullable=True),
    sa.Column('asterisk_version', sa.String(length=40), nullable=True),
    sa.Column('last_error', sa.String(length=500), nullable=True),
    sa.Column('retry_in', sa.Float(), nullable=True),
    sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('listener', sa.String(length=200), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('pbx_extension_status',
    sa.Column('number', sa.String(length=6), nullable=False),
    sa.Column('registration', sa.String(length=12), nullable=False),
    sa.Column('device_state', sa.String(length=16), nullable=False),
    sa.Column('calls', sa.Integer(), nullable=False),
    sa.Column('contact_uri', sa.String(length=512), nullable=True),
    sa.Column('user_agent', sa.String(length=255), nullable=True),
    sa.Column('roundtrip_usec', sa.Integer(), nullable=True),
    sa.Column('queues', sa.JSON(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('number')
    )
    op.create_table('pbx_waiting_calls',
    sa.Column('uniqueid', sa.String(length=150), nullable=False),
    sa.Column('channel', sa.String(length=200), nullable=False),
    sa.Column('linkedid', sa.String(length=150), nullable=False),
    sa.Column('caller_number', sa.String(length=80), nullable=False),
    sa.Column('caller_name', sa.String(length=80), nullable=False),
    sa.Column('queue', sa.String(length=128), nullable=False),
    sa.Column('group_id', sa.Integer(), nullable=True),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('joined_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('uniqueid')
    )
    with op.batch_alter_table('pbx_waiting_calls', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pbx_waiting_calls_queue'), ['queue'], unique=False)



def downgrade():
    with op.batch_alter_table('pbx_waiting_calls', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pbx_waiting_calls_queue'))

    op.drop_table('pbx_waiting_calls')
    op.drop_table('pbx_extension_status')
    op.drop_table('pbx_ami_status')
