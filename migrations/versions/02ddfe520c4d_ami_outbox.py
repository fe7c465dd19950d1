"""The AMI outbox: follow-up actions a committed change still needs (outbound registration rebuilds,
sorcery cache expiry), kept until Asterisk has them.

Revision ID: 02ddfe520c4d
Revises: 2b5e6c0d4a91
Create Date: 2026-11-27 10:49:47.800466

"""
from alembic import op
import sqlalchemy as sa


revision = '02ddfe520c4d'
down_revision = '2b5e6c0d4a91'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('pbx_ami_outbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('fields', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.String(length=500), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )


def downgrade():
    op.drop_table('pbx_ami_outbox')
