"""The `cdr` table that Asterisk's cdr_adaptive_odbc writes, with a primary key and the call log's indexes.

Revision ID: 2b5e6c0d4a91
Revises: 8e02c0c3067d
Create Date: 2026-11-27

A `cdr` table that Asterisk's own ast-db-manage "cdr" scripts made is adopted: missing columns, the `id`
key and the indexes are added, its rows are kept.
"""
import sqlalchemy as sa
from alembic import op

from pbxweb.realtime.schema import cdr

revision = '2b5e6c0d4a91'
down_revision = '8e02c0c3067d'
branch_labels = None
depends_on = None


def upgrade():
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    if not inspector.has_table("cdr"):
        cdr.create(bind)
        return
    have = {c["name"] for c in inspector.get_columns("cdr")}
    if "id" not in have and bind.dialect.name == "postgresql":
        op.execute("ALTER TABLE cdr ADD COLUMN id BIGSERIAL PRIMARY KEY")
    for column in cdr.columns:
        if column.name not in have and column.name != "id":
            op.add_column("cdr", sa.Column(column.name, column.type, nullable=True))
    indexes = {i["name"] for i in inspector.get_indexes("cdr")}
    for index in cdr.indexes:
        if index.name not in indexes:
            index.create(bind)


def downgrade():
    # Call records are Asterisk's data: never dropped by a downgrade.
    pass
