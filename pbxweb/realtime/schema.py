"""Asterisk's own realtime tables, column for column.

The column list and enum values in ``asterisk_schema/`` are Asterisk's ``ast-db-manage`` "config" schema
(head e89e30cee53f) as it creates them on PostgreSQL, kept as data so that a test can hold them against the
captured schema and so that an admin can set any PJSIP option in SQL. Only these tables' shapes live here;
what we write into them lives in ``mapping.py``.
"""

import csv
import re
from functools import cache
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from ..ext import db

SCHEMA_DIR = Path(__file__).with_name("asterisk_schema")

# Asterisk's configuration maps its `queues`/`queue_members` families to these names (extconfig.conf), so that
# a database first built by ast-db-manage keeps its own queue tables untouched beside ours.
TABLE_NAMES = {"queues": "asterisk_queues", "queue_members": "asterisk_queue_members"}

# One MetaData with the models, so that the migrations and `verify` see a single schema.
metadata = db.metadata


@cache
def enum_values() -> dict[str, tuple[str, ...]]:
    values: dict[str, list[str]] = {}
    with open(SCHEMA_DIR / "enums.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            values.setdefault(row["type"], []).append(row["value"])
    return {name: tuple(v) for name, v in values.items()}


def enum_type(name: str) -> sa.types.TypeEngine:
    """A PostgreSQL enum that is never created implicitly (the migration adopts or creates it once);
    a plain string elsewhere."""
    values = enum_values()[name]
    return sa.String(max(len(v) for v in values)).with_variant(
        postgresql.ENUM(*values, name=name, create_type=False), "postgresql"
    )


def column_type(data_type: str) -> sa.types.TypeEngine:
    if m := re.fullmatch(r"character varying\((\d+)\)", data_type):
        return sa.String(int(m.group(1)))
    if m := re.fullmatch(r"numeric\((\d+),(\d+)\)", data_type):
        return sa.Numeric(int(m.group(1)), int(m.group(2)))
    simple = {
        "integer": sa.Integer(),
        "bigint": sa.BigInteger(),
        "boolean": sa.Boolean(),
        "text": sa.Text(),
        "double precision": sa.Float(),
        "timestamp without time zone": sa.DateTime(),
    }
    if data_type in simple:
        return simple[data_type]
    return enum_type(data_type)


def _columns_by_table() -> dict[str, list[dict]]:
    tables: dict[str, list[dict]] = {}
    with open(SCHEMA_DIR / "columns.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            tables.setdefault(row["table"], []).append(row)
    return tables


def _build() -> dict[str, sa.Table]:
    tables = {}
    for asterisk_name, columns in _columns_by_table().items():
        name = TABLE_NAMES.get(asterisk_name, asterisk_name)
        cols = [
            sa.Column(c["column"], column_type(c["data_type"]), nullable=c["nullable"] == "YES")
            for c in columns
        ]
        extra: list = []
        if asterisk_name.startswith("ps_"):
            # Asterisk's ps_* tables have no primary key, only a unique id and a plain index on it.
            extra = [sa.UniqueConstraint("id", name=f"{name}_id_key"), sa.Index(f"{name}_id", "id")]
        if asterisk_name == "ps_aors":
            extra.append(sa.Index("ps_aors_qualifyfreq_contact", "qualify_frequency", "contact"))
        if asterisk_name == "ps_contacts":
            extra += [
                sa.UniqueConstraint("id", "reg_server", name="ps_contacts_uq"),
                sa.Index("ps_contacts_qualifyfreq_exp", "qualify_frequency", "expiration_time"),
            ]
        if asterisk_name == "queues":
            extra = [sa.PrimaryKeyConstraint("name", name=f"{name}_pkey")]
        if asterisk_name == "voicemail":
            # A serial key Asterisk never reads; mailboxes are looked up by (mailbox, context), not unique.
            extra = [
                sa.PrimaryKeyConstraint("uniqueid", name="voicemail_pkey"),
                sa.Index("voicemail_context", "context"),
                sa.Index("voicemail_mailbox", "mailbox"),
                sa.Index("voicemail_mailbox_context", "mailbox", "context"),
                sa.Index("voicemail_imapuser", "imapuser"),
            ]
        if asterisk_name == "queue_members":
            extra = [
                sa.PrimaryKeyConstraint("queue_name", "interface", name=f"{name}_pkey"),
                sa.UniqueConstraint("uniqueid", name=f"{name}_uniqueid_key"),
            ]
        tables[name] = sa.Table(name, metadata, *cols, *extra)
    return tables


TABLES = _build()

# The dialplan's view of DIDs (func_odbc DID_DESTINATION reads it): written only by pbxweb/realtime.
dids = sa.Table(
    "dids",
    metadata,
    sa.Column("number", sa.String(40), primary_key=True),
    sa.Column("destination_type", sa.String(20), nullable=False),
    # The dial target: an extension's number, or a group's id for extgroup-handler.
    sa.Column("destination", sa.String(40), nullable=False),
    sa.Column("description", sa.String(200)),
    sa.Column("is_active", sa.Boolean, nullable=False),
)
TABLES["dids"] = dids



def _cdr_table() -> sa.Table:
    """Asterisk's CDR table as its ast-db-manage "cdr" schema has it, plus the primary key and the indexes the
    call log needs (Asterisk's own has neither). cdr_adaptive_odbc fills it; the app only reads it. Times are
    UTC (`usegmtime=yes`) in `timestamp without time zone` columns, as Asterisk writes them."""
    with open(SCHEMA_DIR / "cdr_columns.csv", newline="") as fh:
        columns = [sa.Column(r["column"], column_type(r["data_type"]), nullable=True) for r in csv.DictReader(fh)]
    return sa.Table(
        "cdr",
        metadata,
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        *columns,
        sa.Index("ix_cdr_start", "start"),
        sa.Index("ix_cdr_src", "src"),
        sa.Index("ix_cdr_dst", "dst"),
        sa.Index("ix_cdr_linkedid", "linkedid"),
        sa.Index("ix_cdr_uniqueid", "uniqueid"),
        # The few legs of pick-ups from the dashboard (the agent's phone running Bridge), for the group report.
        sa.Index("ix_cdr_pickups", "start", postgresql_where=sa.text("lastapp = 'Bridge'"),
                 sqlite_where=sa.text("lastapp = 'Bridge'")),
        # The legs an extension took part in on either channel (`PJSIP/1001-%`): the call log's extension
        # filter and every agent's own call log. A prefix LIKE reads an index of the pattern opclass whatever
        # the database's collation.
        sa.Index("ix_cdr_channel", "channel", postgresql_ops={"channel": "text_pattern_ops"}),
        sa.Index("ix_cdr_dstchannel", "dstchannel", postgresql_ops={"dstchannel": "text_pattern_ops"}),
    )


cdr = _cdr_table()
TABLES["cdr"] = cdr

# Asterisk's queue log (logger.conf + extconfig `queue_log`): who entered which queue, who answered, who gave
# up and after how long — the record CDR cannot give for a queue call. Shaped as ast-db-manage makes it; with
# data1..data5 present app_queue splits each event's fields itself. `time` is UTC
# (`queue_log_realtime_use_gmt`). Asterisk writes it; the app only reads it.
queue_log = sa.Table(
    "queue_log",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("time", sa.DateTime),
    sa.Column("callid", sa.String(80)),
    sa.Column("queuename", sa.String(256)),
    sa.Column("agent", sa.String(80)),
    sa.Column("event", sa.String(32)),
    *(sa.Column(f"data{n}", sa.String(100)) for n in range(1, 6)),
    sa.Index("ix_queue_log_time", "time"),
    sa.Index("ix_queue_log_callid", "callid"),
    # The group report reads one kind of event over a period (every ABANDON of the week, the pauses).
    sa.Index("ix_queue_log_event_time", "event", "time"),
)
TABLES["queue_log"] = queue_log

# Tables whose rows the app owns and `pbx sync` reconciles. ps_contacts is Asterisk's; ps_transports and
# ps_domain_aliases are created for admins who configure them in SQL, and left alone by sync.
SYNCED_TABLES = (
    "ps_endpoints",
    "ps_auths",
    "ps_aors",
    "ps_registrations",
    "ps_endpoint_id_ips",
    "asterisk_queues",
    "asterisk_queue_members",
    "dids",
    "voicemail",
)

# The columns that identify a row in each synced table.
ROW_KEYS = {
    "ps_endpoints": ("id",),
    "ps_auths": ("id",),
    "ps_aors": ("id",),
    "ps_registrations": ("id",),
    "ps_endpoint_id_ips": ("id",),
    "asterisk_queues": ("name",),
    "asterisk_queue_members": ("queue_name", "interface"),
    "dids": ("number",),
    "voicemail": ("context", "mailbox"),
}
