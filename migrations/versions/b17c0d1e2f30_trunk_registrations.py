"""Trunk registrations: what Asterisk's `Registry` event last said of each outbound registration.

Revision ID: b17c0d1e2f30
Revises: a16b0ca11bac
Create Date: 2026-12-01 04:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'b17c0d1e2f30'
down_revision = 'a16b0ca11bac'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('pbx_trunk_registrations',
    sa.Column('client_uri', sa.String(length=255), nullable=False),
    sa.Column('server_uri', sa.String(length=255), nullable=False),
    sa.Column('status', sa.String(length=40), nullable=False),
    sa.Column('cause', sa.String(length=255), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('client_uri')
    )


def downgrade():
    op.drop_table('pbx_trunk_registrations')
