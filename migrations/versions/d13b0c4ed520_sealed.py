"""Sealed data: an import's upload between its preview and its import, and the SIP passwords an import
generated, kept for an hour as ciphertext whose key only the admin holds.

Revision ID: d13b0c4ed520
Revises: c4f1a2b3d5e6
Create Date: 2026-12-01 01:40:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'd13b0c4ed520'
down_revision = 'c4f1a2b3d5e6'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('pbx_sealed',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('purpose', sa.String(length=20), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('ciphertext', sa.LargeBinary(), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['pbx_users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_pbx_sealed_user_id', 'pbx_sealed', ['user_id'])
    op.create_index('ix_pbx_sealed_expires_at', 'pbx_sealed', ['expires_at'])


def downgrade():
    op.drop_table('pbx_sealed')
