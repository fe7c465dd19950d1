"""The queue-member row that keeps app_queue writing a pause's reason (mapping.REASON_PAUSED_MARKER): there
from the first start of Asterisk on this database, before any group has members.

Revision ID: a17b2c3d4e50
Revises: e14a0c0e7001
Create Date: 2026-12-01 03:00:00

"""
from alembic import op
import sqlalchemy as sa

from pbxweb.realtime.mapping import REASON_PAUSED_MARKER
from pbxweb.realtime.schema import TABLES


revision = 'a17b2c3d4e50'
down_revision = 'e14a0c0e7001'
branch_labels = None
depends_on = None

members = TABLES["asterisk_queue_members"]
marker = sa.and_(members.c.queue_name == REASON_PAUSED_MARKER["queue_name"],
                 members.c.interface == REASON_PAUSED_MARKER["interface"])


def upgrade():
    bind = op.get_bind()
    if bind.execute(sa.select(sa.literal(1)).where(marker)).first() is None:
        bind.execute(sa.insert(members).values(REASON_PAUSED_MARKER))


def downgrade():
    op.get_bind().execute(sa.delete(members).where(marker))
