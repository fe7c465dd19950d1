"""Trigram indexes of the extensions' numbers and names, for searches (the extensions list, the dashboard,
the API, the pickers: `number ILIKE '%456%' OR name ILIKE '%456%'`). Without them each search read all
20,000 extensions (7 ms on a quiet server, 16 to 25 ms under load, the database's dearest statement);
with them one of three characters or more reads the few that match (0.5 ms). On PostgreSQL only, and only
where the server has pg_trgm (Debian's postgresql package does): without it searches read every row, as
before.

Revision ID: d20a1b2c3e40
Revises: c15e0c4a7b21
Create Date: 2026-12-01 06:50:00

"""
import logging

import sqlalchemy as sa
from alembic import op

revision = 'd20a1b2c3e40'
down_revision = 'c15e0c4a7b21'
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")
INDEXES = {"ix_pbx_extensions_number_trgm": "number", "ix_pbx_extensions_name_trgm": "name"}


def upgrade():
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    if bind.execute(sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")).first() is None:
        log.warning("pg_trgm is not installed on this PostgreSQL server: extension searches read every row")
        return
    # A trusted extension: the database's owner may create it. Another user may not, or a DBA may have put it
    # in a schema off the search path; then searches read every row, and the migration goes on.
    try:
        with bind.begin_nested():
            bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
            for name, column in INDEXES.items():
                op.create_index(name, "pbx_extensions", [column], postgresql_using="gin",
                                postgresql_ops={column: "gin_trgm_ops"}, if_not_exists=True)
    except sa.exc.DBAPIError as error:
        log.warning("no trigram indexes (%s): extension searches read every row", error.orig)


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    for name in INDEXES:
        op.drop_index(name, table_name="pbx_extensions", if_exists=True)
