"""Asterisk's queue log in PostgreSQL (extconfig `queue_log`): the source of who answered a queue call, how
long the caller waited and who gave up. An existing `queue_log` table (ast-db-manage's) is adopted.

Revision ID: c4f1a2b3d5e6
Revises: 7a4e0c1b2d55
Create Date: 2026-12-01 01:40:00

"""
from alembic import op
import sqlalchemy as sa

from pbxweb.realtime.schema import queue_log


revision = 'c4f1a2b3d5e6'
down_revision = '7a4e0c1b2d55'
branch_labels = None
depends_on = None


def upgrade():
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    if not inspector.has_table("queue_log"):
        queue_log.create(bind)
        return
    have = {c["name"] for c in inspector.get_columns("queue_log")}
    for column in queue_log.columns:
        if column.name not in have and column.name != "id":
            op.add_column("queue_log", sa.Column(column.name, column.type, nullable=True))
    indexes = {i["name"] for i in inspector.get_indexes("queue_log")}
    for index in queue_log.indexes:
        if index.name not in indexes:
            index.create(bind)


def downgrade():
    # Asterisk's record of calls: never dropped by a downgrade.
    pass
