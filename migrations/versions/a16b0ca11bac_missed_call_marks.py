"""Missed callers: who is calling one back, and who marked one done (kept, with when).

Revision ID: a16b0ca11bac
Revises: a17b2c3d4e50
Create Date: 2026-12-01 03:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'a16b0ca11bac'
down_revision = 'a17b2c3d4e50'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('pbx_missed_call_marks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=80), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('until', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['group_id'], ['pbx_groups.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['pbx_users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_pbx_missed_call_marks_group_until', 'pbx_missed_call_marks', ['group_id', 'until'])


def downgrade():
    op.drop_index('ix_pbx_missed_call_marks_group_until', table_name='pbx_missed_call_marks')
    op.drop_table('pbx_missed_call_marks')
