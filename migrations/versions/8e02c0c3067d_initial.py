"""Initial schema: Asterisk's realtime tables (created, or adopted where ast-db-manage made them) and ours.

Revision ID: 8e02c0c3067d
Revises:
Create Date: 2026-11-27

Asterisk's tables come from pbxweb.realtime.schema, which holds Asterisk's own column list as data (a
snapshot of its schema head e89e30cee53f): a later Asterisk column arrives in a later migration.
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from pbxweb.realtime.schema import TABLES, enum_values

revision = '8e02c0c3067d'
down_revision = None
branch_labels = None
depends_on = None


def _adopt_enums(bind):
    """Create Asterisk's enum types, or adopt them as ast-db-manage left them (adding any value an older
    schema revision lacks)."""
    existing = {
        row.typname: set(row.labels)
        for row in bind.execute(sa.text(
            "SELECT t.typname, array_agg(e.enumlabel) AS labels FROM pg_type t "
            "JOIN pg_enum e ON e.enumtypid = t.oid GROUP BY t.typname"
        ))
    }
    for name, values in enum_values().items():
        if name not in existing:
            postgresql.ENUM(*values, name=name).create(bind)
            continue
        for value in values:
            if value not in existing[name]:
                op.execute(f"ALTER TYPE {name} ADD VALUE IF NOT EXISTS '{value}'")


# The tables this revision brings; later revisions add theirs (the `cdr` table is 2b5e6c0d4a91's).
REALTIME_TABLES = (
    "ps_endpoints", "ps_auths", "ps_aors", "ps_contacts", "ps_domain_aliases", "ps_endpoint_id_ips",
    "ps_transports", "ps_registrations", "asterisk_queues", "asterisk_queue_members", "dids",
)


def _adopt_asterisk_tables(bind):
    inspector = sa.inspect(bind)
    for name in REALTIME_TABLES:
        table = TABLES[name]
        if not inspector.has_table(name):
            table.create(bind)
            continue
        have = {c["name"] for c in inspector.get_columns(name)}
        for column in table.columns:
            if column.name not in have:
                op.add_column(name, sa.Column(column.name, column.type, nullable=True))


def upgrade():
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        _adopt_enums(bind)
    _adopt_asterisk_tables(bind)

    op.create_table('pbx_extensions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=6), nullable=False),
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=True),
    sa.Column('sip_password', sa.String(length=80), nullable=False),
    sa.Column('context', sa.String(length=40), nullable=False),
    sa.Column('codecs', sa.String(length=200), nullable=False),
    sa.Column('voicemail', sa.Boolean(), nullable=False),
    sa.Column('max_contacts', sa.Integer(), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('number')
    )

    op.create_table('pbx_groups',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('ring_strategy', sa.String(length=20), nullable=False),
    sa.Column('ring_timeout', sa.Integer(), nullable=False),
    sa.Column('musicclass', sa.String(length=80), nullable=False),
    sa.Column('max_wait', sa.Integer(), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )

    op.create_table('pbx_trunks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.Column('host', sa.String(length=253), nullable=False),
    sa.Column('port', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=40), nullable=True),
    sa.Column('password', sa.String(length=80), nullable=True),
    sa.Column('transport', sa.String(length=40), nullable=False),
    sa.Column('register', sa.Boolean(), nullable=False),
    sa.Column('match', sa.String(length=400), nullable=False),
    sa.Column('context', sa.String(length=40), nullable=False),
    sa.Column('codecs', sa.String(length=200), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )

    op.create_table('pbx_dids',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=32), nullable=False),
    sa.Column('destination_type', sa.String(length=20), nullable=False),
    sa.Column('destination_id', sa.Integer(), nullable=False),
    sa.Column('description', sa.String(length=200), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('number')
    )

    op.create_table('pbx_group_members',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.Column('extension_id', sa.Integer(), nullable=False),
    sa.Column('penalty', sa.Integer(), nullable=False),
    sa.Column('paused', sa.Boolean(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['extension_id'], ['pbx_extensions.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['group_id'], ['pbx_groups.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('group_id', 'extension_id')
    )
    with op.batch_alter_table('pbx_group_members', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pbx_group_members_extension_id'), ['extension_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_pbx_group_members_group_id'), ['group_id'], unique=False)


    op.create_table('pbx_users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=80), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('extension_id', sa.Integer(), nullable=True),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['extension_id'], ['pbx_extensions.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('username')
    )

    op.create_table('pbx_api_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['pbx_users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_hash')
    )
    with op.batch_alter_table('pbx_api_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pbx_api_tokens_user_id'), ['user_id'], unique=False)

    with op.batch_alter_table('pbx_dids', schema=None) as batch_op:
        batch_op.create_index('ix_pbx_dids_destination', ['destination_type', 'destination_id'], unique=False)


def downgrade():
    # Asterisk's tables and types are left in place: they may hold rows Asterisk itself wrote (ps_contacts)
    # or have been there before Mini-PBX.
    for name in ('pbx_api_tokens', 'pbx_users', 'pbx_group_members', 'pbx_dids', 'pbx_trunks', 'pbx_groups',
                 'pbx_extensions'):
        op.drop_table(name)
