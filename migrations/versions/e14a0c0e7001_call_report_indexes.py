"""Indexes for the call log's stories and the group report: queue log events of one kind over a period
(ABANDON, PAUSE); the legs of pick-ups from the dashboard (`lastapp` Bridge) over a period; and, on
PostgreSQL, the legs and the queue log rows of every call in byte order of its id, so that an export reads
both as two streams it merges as they come, with no sort (SQLite compares bytes by itself).

Revision ID: e14a0c0e7001
Revises: f16a0b0c1d01
Create Date: 2026-12-01 02:00:00

"""
import sqlalchemy as sa
from alembic import op

from pbxweb.realtime.schema import cdr, queue_log

revision = 'e14a0c0e7001'
down_revision = 'f16a0b0c1d01'
branch_labels = None
depends_on = None

NEW = {"queue_log": ("ix_queue_log_event_time",), "cdr": ("ix_cdr_pickups",)}
BYTEWISE = {"ix_cdr_linkedid_bytewise": 'cdr (linkedid COLLATE "C", start, id)',
            "ix_queue_log_callid_bytewise": 'queue_log (callid COLLATE "C", "time", id)'}


def upgrade():
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    for table in (queue_log, cdr):
        have = {i["name"] for i in inspector.get_indexes(table.name)}
        for index in table.indexes:
            if index.name in NEW[table.name] and index.name not in have:
                index.create(bind)
    if bind.dialect.name == "postgresql":
        for name, on in BYTEWISE.items():
            op.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {on}")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        for name in BYTEWISE:
            op.execute(f"DROP INDEX IF EXISTS {name}")
    op.drop_index("ix_cdr_pickups", table_name="cdr")
    op.drop_index("ix_queue_log_event_time", table_name="queue_log")
