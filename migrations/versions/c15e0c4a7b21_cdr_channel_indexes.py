"""Indexes of the call records' channels, for the legs an extension took part in (`channel LIKE 'PJSIP/1001-%'`):
the call log's extension filter and every agent's own call log walked the newest legs one by one until a
page had enough of them (30 to 100 ms at 200,000 records).

Revision ID: c15e0c4a7b21
Revises: b17c0d1e2f30
Create Date: 2026-12-01 04:30:00

"""
import sqlalchemy as sa
from alembic import op

from pbxweb.realtime.schema import cdr

revision = 'c15e0c4a7b21'
down_revision = 'b17c0d1e2f30'
branch_labels = None
depends_on = None

NEW = ("ix_cdr_channel", "ix_cdr_dstchannel")


def upgrade():
    bind = op.get_bind()
    have = {i["name"] for i in sa.inspect(bind).get_indexes("cdr")}
    for index in cdr.indexes:
        if index.name in NEW and index.name not in have:
            index.create(bind)


def downgrade():
    for name in NEW:
        op.drop_index(name, table_name="cdr")
