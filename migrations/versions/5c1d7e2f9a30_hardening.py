"""Failed sign-ins counted in the database; ps_contacts announces Asterisk's registrations as it writes them;
every write to the tables `pbx sync` reconciles is counted, so a sync can tell that nothing changed.

Revision ID: 5c1d7e2f9a30
Revises: 09585032552e
Create Date: 2026-11-27 16:30:00

"""
from alembic import op
import sqlalchemy as sa


revision = '5c1d7e2f9a30'
down_revision = '09585032552e'
branch_labels = None
depends_on = None

# Asterisk writes ps_contacts on every REGISTER, refresh and expiry; AMI reports a new contact only at its
# first qualify (up to qualify_frequency later, and never with a sorcery cache). This trigger NOTIFYs the
# endpoint at once, so the listener reads the row and shows the registration. Asterisk ignores triggers.
CONTACTS_TRIGGER = """
CREATE OR REPLACE FUNCTION pbx_contacts_notify() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('pbx_contacts', coalesce(OLD.endpoint, split_part(OLD.id, '^3B', 1)));
    ELSE
        PERFORM pg_notify('pbx_contacts', coalesce(NEW.endpoint, split_part(NEW.id, '^3B', 1)));
        IF TG_OP = 'UPDATE' AND OLD.endpoint IS DISTINCT FROM NEW.endpoint AND OLD.endpoint IS NOT NULL THEN
            PERFORM pg_notify('pbx_contacts', OLD.endpoint);
        END IF;
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS pbx_contacts_notify ON ps_contacts;
CREATE TRIGGER pbx_contacts_notify AFTER INSERT OR UPDATE OR DELETE ON ps_contacts
    FOR EACH ROW EXECUTE FUNCTION pbx_contacts_notify();
"""


# Tables whose content decides what `pbx sync` writes: the models and the synced realtime tables. Any statement
# that writes one, from the app, an admin's SQL or Asterisk, takes a number (a sequence: no lock, no
# contention between writers). See pbxweb/realtime/sync.py.
COUNTED_TABLES = (
    "pbx_extensions", "pbx_groups", "pbx_group_members", "pbx_dids", "pbx_trunks",
    "ps_endpoints", "ps_auths", "ps_aors", "ps_registrations", "ps_endpoint_id_ips",
    "asterisk_queues", "asterisk_queue_members", "dids",
)
COUNT_CHANGES = """
CREATE SEQUENCE IF NOT EXISTS pbx_sync_changes;
CREATE OR REPLACE FUNCTION pbx_count_change() RETURNS trigger AS $$
BEGIN
    PERFORM nextval('pbx_sync_changes');
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
"""


def upgrade():
    op.create_table('pbx_login_failures',
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('first_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_table('pbx_sync_state',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('changes', sa.BigInteger(), nullable=False),
    sa.Column('settings', sa.Text(), nullable=False),
    sa.Column('summary', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(CONTACTS_TRIGGER)
        op.execute(COUNT_CHANGES)
        for table in COUNTED_TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS pbx_count_change ON {table}")
            op.execute(f"CREATE TRIGGER pbx_count_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
                       "FOR EACH STATEMENT EXECUTE FUNCTION pbx_count_change()")


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        for table in COUNTED_TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS pbx_count_change ON {table}")
        op.execute("DROP FUNCTION IF EXISTS pbx_count_change()")
        op.execute("DROP SEQUENCE IF EXISTS pbx_sync_changes")
        op.execute("DROP TRIGGER IF EXISTS pbx_contacts_notify ON ps_contacts")
        op.execute("DROP FUNCTION IF EXISTS pbx_contacts_notify()")
    op.drop_table('pbx_sync_state')
    op.drop_table('pbx_login_failures')
