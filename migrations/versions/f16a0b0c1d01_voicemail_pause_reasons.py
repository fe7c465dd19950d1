"""Voicemail: Asterisk's realtime `voicemail` table (created, or adopted as ast-db-manage made it) and the
message counts of the live state; the pause reasons admins keep.

Revision ID: f16a0b0c1d01
Revises: d13a0e5e5510
Create Date: 2026-12-01 02:00:00

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from pbxweb.realtime.schema import TABLES, enum_values


revision = 'f16a0b0c1d01'
down_revision = 'd13a0e5e5510'
branch_labels = None
depends_on = None


def _adopt_voicemail(bind):
    voicemail = TABLES["voicemail"]
    inspector = sa.inspect(bind)
    if not inspector.has_table("voicemail"):
        voicemail.create(bind)
        return
    have = {c["name"] for c in inspector.get_columns("voicemail")}
    for column in voicemail.columns:
        if column.name not in have:
            op.add_column("voicemail", sa.Column(column.name, column.type, nullable=True))
    indexes = {i["name"] for i in inspector.get_indexes("voicemail")}
    for index in voicemail.indexes:
        if index.name not in indexes:
            index.create(bind)


def upgrade():
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        postgresql.ENUM(*enum_values()["yes_no_values"], name="yes_no_values").create(bind, checkfirst=True)
    _adopt_voicemail(bind)
    if bind.dialect.name == "postgresql":
        # `pbx sync` reconciles mailboxes too: count writes to them like the other synced tables (5c1d7e2f9a30).
        op.execute("DROP TRIGGER IF EXISTS pbx_count_change ON voicemail")
        op.execute("CREATE TRIGGER pbx_count_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON voicemail "
                   "FOR EACH STATEMENT EXECUTE FUNCTION pbx_count_change()")
    with op.batch_alter_table('pbx_extension_status') as batch_op:
        batch_op.add_column(sa.Column('voicemail_new', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('voicemail_old', sa.Integer(), nullable=True))
    op.create_table('pbx_pause_reasons',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )


def downgrade():
    op.drop_table('pbx_pause_reasons')
    with op.batch_alter_table('pbx_extension_status') as batch_op:
        batch_op.drop_column('voicemail_old')
        batch_op.drop_column('voicemail_new')
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("DROP TRIGGER IF EXISTS pbx_count_change ON voicemail")
    # The mailboxes (and their PINs) stay: Asterisk reads them, and they may predate Mini-PBX.
