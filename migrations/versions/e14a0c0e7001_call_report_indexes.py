"""Indexes for the group report: queue log events of one kind over a period (ABANDON, PAUSE), and the
legs of pick-ups from the dashboard (`lastapp` Bridge) over a period.

Revision ID: e14a0c0e7001
Revises: c4f1a2b3d5e6
Create Date: 2026-12-01 02:00:00

"""
import sqlalchemy as sa
from alembic import op

from pbxweb.realtime.schema import cdr, queue_log

revision = 'e14a0c0e7001'
down_revision = 'c4f1a2b3d5e6'
branch_labels = None
depends_on = None

NEW = {"queue_log": ("ix_queue_log_event_time",), "cdr": ("ix_cdr_pickups",)}


def upgrade():
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    for table in (queue_log, cdr):
        have = {i["name"] for i in inspector.get_indexes(table.name)}
        for index in table.indexes:
            if index.name in NEW[table.name] and index.name not in have:
                index.create(bind)


def downgrade():
    op.drop_index("ix_cdr_pickups", table_name="cdr")
    op.drop_index("ix_queue_log_event_time", table_name="queue_log")
