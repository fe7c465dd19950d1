"""The only code that writes Asterisk's tables.

It reads the models' tables with Core SQL on the connection it is handed (so it runs inside the caller's
transaction: the flush hook's, or `pbx sync`'s), maps them with ``mapping``, and reconciles the result with
what the tables hold.
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

import sqlalchemy as sa

from ..models import Did, Extension, ExtensionGroup, GroupMember, Trunk
from ..validation import ASTERISK_UNSAFE, ValidationError, asterisk_safe, generate_pin
from . import mapping, ring_order
from .diff import TableChanges, diff_rows
from .schema import ROW_KEYS, SYNCED_TABLES, TABLES

ext_t = Extension.__table__
group_t = ExtensionGroup.__table__
member_t = GroupMember.__table__
did_t = Did.__table__
trunk_t = Trunk.__table__


@dataclass(frozen=True)
class Owner:
    """A model object whose realtime rows are recomputed together. `key` is what names its rows in
    Asterisk's tables: an extension's number, a trunk's name, a group's id, a DID's number."""

    kind: str
    key: str | int


def _scope(owner: Owner, settings: mapping.RealtimeSettings) -> dict[str, sa.ColumnElement]:
    """The rows an owner owns, per table."""
    t = TABLES
    if owner.kind == "extension":
        scope = {name: t[name].c.id == owner.key for name in ("ps_endpoints", "ps_auths", "ps_aors")}
        scope["voicemail"] = _mailbox_clause(owner.key, settings)
        return scope
    if owner.kind == "trunk":
        scope = {
            name: t[name].c.id == owner.key
            for name in ("ps_endpoints", "ps_auths", "ps_aors", "ps_registrations")
        }
        scope["ps_endpoint_id_ips"] = t["ps_endpoint_id_ips"].c.endpoint == owner.key
        return scope
    if owner.kind == "group":
        queue = f"extgroup_{owner.key}"
        return {
            "asterisk_queues": t["asterisk_queues"].c.name == queue,
            "asterisk_queue_members": t["asterisk_queue_members"].c.queue_name == queue,
        }
    if owner.kind == "did":
        return {"dids": t["dids"].c.number == owner.key}
    raise ValueError(owner.kind)


def _mailbox_clause(number: str, settings: mapping.RealtimeSettings):
    t = TABLES["voicemail"]
    return sa.and_(t.c.mailbox == number, t.c.context == settings.voicemail_context)


# --- reading the models -------------------------------------------------------------------------------


def _members(conn, group_ids=None) -> dict[int, list]:
    query = (
        sa.select(
            member_t.c.id,
            member_t.c.group_id,
            member_t.c.penalty,
            member_t.c.paused,
            ext_t.c.number,
            ext_t.c.name,
            ext_t.c.is_active,
        )
        .join(ext_t, ext_t.c.id == member_t.c.extension_id)
        .order_by(member_t.c.group_id, member_t.c.position, member_t.c.id)
    )
    if group_ids is not None:
        query = query.where(member_t.c.group_id.in_(group_ids))
    by_group = defaultdict(list)
    for row in conn.execute(query):
        by_group[row.group_id].append(row)
    return by_group


def _did_destination_query():
    ext_dest = ext_t.alias("ext_dest")
    group_dest = group_t.alias("group_dest")
    is_ext = did_t.c.destination_type == "extension"
    is_group = did_t.c.destination_type == "group"
    return sa.select(
        did_t,
        sa.case((is_ext, ext_dest.c.number), (is_group, sa.cast(group_dest.c.id, sa.String))).label(
            "destination"
        ),
        sa.case((is_ext, ext_dest.c.is_active), else_=group_dest.c.is_active).label("destination_active"),
    ).select_from(
        did_t.outerjoin(ext_dest, sa.and_(is_ext, ext_dest.c.id == did_t.c.destination_id)).outerjoin(
            group_dest, sa.and_(is_group, group_dest.c.id == did_t.c.destination_id)
        )
    )


def desired_rows(conn, settings: mapping.RealtimeSettings, owners: Iterable[Owner] | None = None):
    """Every row the models say Asterisk should have; with `owners`, only theirs."""
    wanted = defaultdict(list)
    keys = defaultdict(list)
    for owner in owners or ():
        keys[owner.kind].append(owner.key)
    everything = owners is None

    def add(rows_by_table):
        for table, rows in rows_by_table.items():
            wanted[table].extend(rows)

    if everything or keys["extension"]:
        query = sa.select(ext_t)
        if not everything:
            query = query.where(ext_t.c.number.in_(keys["extension"]))
        for ext in conn.execute(query):
            add(mapping.extension_rows(ext, settings))
    if everything or keys["trunk"]:
        query = sa.select(trunk_t)
        if not everything:
            query = query.where(trunk_t.c.name.in_(keys["trunk"]))
        for row in conn.execute(query):
            add(mapping.trunk_rows(row, settings))
    if everything or keys["group"]:
        query = sa.select(group_t)
        group_ids = None if everything else keys["group"]
        if not everything:
            query = query.where(group_t.c.id.in_(group_ids))
        members = _members(conn, group_ids)
        for group in conn.execute(query):
            add(mapping.group_rows(group, members.get(group.id, []), settings))
    if everything:
        add(mapping.marker_rows())
    if everything or keys["did"]:
        query = _did_destination_query()
        if not everything:
            query = query.where(did_t.c.number.in_(keys["did"]))
        for did in conn.execute(query):
            add(mapping.did_rows(did, did.destination, bool(did.destination_active)))
    return wanted


# --- reconciling --------------------------------------------------------------------------------------


def _existing(conn, table: str, desired: list[dict], where=None) -> list[dict]:
    t = TABLES[table]
    columns = set(ROW_KEYS[table]).union(*desired)
    names = sorted(columns)
    query = sa.select(*(t.c[c] for c in names))
    if where is not None:
        query = query.where(where)
    # zip over plain tuples: a tenth of the cost of a mapping per row when a full sync reads 30,000 rows.
    return [dict(zip(names, row)) for row in conn.execute(query).tuples()]


def _key_clause(table: str, key: tuple):
    t = TABLES[table]
    return sa.and_(*(t.c[c] == v for c, v in zip(ROW_KEYS[table], key, strict=True)))


def _column_widths(table: str) -> dict[str, int]:
    return {c.name: c.type.length for c in TABLES[table].columns if isinstance(c.type, sa.String) and c.type.length}


WIDTHS = {table: _column_widths(table) for table in ROW_KEYS}


def check_values(table: str, rows: Iterable[dict]) -> None:
    """The last word before Asterisk reads a value: nothing it would split (`;`), decode (`^XX`) or that a
    person cannot see, and nothing wider than its column. Services refuse such input first, naming their
    field; this catches whatever reached a row some other way, naming the column, before the database sees it."""
    rows = list(rows)
    if not rows:
        return
    widths = WIDTHS[table]
    for column in set().union(*rows):
        texts = [value for row in rows if (value := row.get(column)).__class__ is str]
        if not texts:
            continue
        # One scan per column (a full sync writes 30,000 rows): the values joined by a space, which can
        # neither hide nor make an unsafe sequence; only a hit looks at them one by one.
        if ASTERISK_UNSAFE.search(" ".join(texts)):
            for value in texts:
                if problem := asterisk_safe(value):
                    raise ValidationError({f"{table}.{column}": problem})
        width = widths.get(column)
        if width and max(map(len, texts)) > width:
            raise ValidationError({f"{table}.{column}": f"must be at most {width} characters"})


def _with_pins(rows: list[dict]) -> list[dict]:
    """A mailbox is never without a PIN (the column is NOT NULL, and an empty one would open it to anyone), and
    the models hold none (mapping.voicemail_row): a new row gets one made up here and shown to nobody. The
    extension service then gives the PIN it shows, in the same transaction (`set_voicemail_pin`); a row that
    `pbx sync` makes again keeps this one until its owner's PIN is reset."""
    return [{**row, "password": generate_pin()} for row in rows]


def write_changes(conn, changes: TableChanges, delete_extras: bool) -> None:
    t = TABLES[changes.table]
    if changes.table == "voicemail":
        changes.inserts = _with_pins(changes.inserts)
    check_values(changes.table, changes.inserts)
    check_values(changes.table, (values for _, values in changes.updates))
    if delete_extras and changes.extras:
        if len(ROW_KEYS[changes.table]) == 1:
            column = t.c[ROW_KEYS[changes.table][0]]
            keys = [k[0] for k in changes.extras]
            for start in range(0, len(keys), 500):
                conn.execute(sa.delete(t).where(column.in_(keys[start : start + 500])))
        else:
            for key in changes.extras:
                conn.execute(sa.delete(t).where(_key_clause(changes.table, key)))
    for key, values in changes.updates:
        conn.execute(sa.update(t).where(_key_clause(changes.table, key)).values(values))
    # One statement per set of columns (extension and trunk endpoints differ).
    by_columns = defaultdict(list)
    for row in changes.inserts:
        by_columns[tuple(row)].append(row)
    for columns, rows in by_columns.items():
        if conn.dialect.name == "postgresql":
            _insert_unnest(conn, changes.table, columns, rows)
        else:
            conn.execute(sa.insert(t), rows)


def _insert_unnest(conn, table: str, columns: tuple[str, ...], rows: list[dict]) -> None:
    """Insert any number of rows with one short statement: each column travels as one array literal, which
    PostgreSQL takes in about as fast as COPY takes CSV (bench/sync.py), where a VALUES list of thousands
    of rows costs it a parse of each. Plain SQL, so it works on every connection: COPY does not on a green
    one (psycogreen's wait callback, in gunicorn's gevent worker), which is why the app never uses it."""
    conn.exec_driver_sql(_unnest_statement(conn.dialect, table, columns),
                         tuple(_array_literal(row[c] for row in rows) for c in columns))


@cache
def _unnest_statement(dialect, table: str, columns: tuple[str, ...]) -> str:
    names = ", ".join(f'"{c}"' for c in columns)
    values = ", ".join(_from_text(dialect, TABLES[table].c[c]) for c in columns)
    arrays = ", ".join("%s::text[]" for _ in columns)
    return f"INSERT INTO {table} ({names}) SELECT {values} FROM unnest({arrays}) AS u({names})"


def _from_text(dialect, column: sa.Column) -> str:
    """An element of a text[] as the column's value: cast to its type (an enum or a number takes no
    implicit cast from text), but a varchar is assigned as is — a cast would cut a value that is too long,
    an assignment refuses it."""
    kind = column.type.dialect_impl(dialect)
    if isinstance(kind, sa.String) and not isinstance(kind, sa.Enum):
        return f'u."{column.name}"'
    return f'u."{column.name}"::{kind.compile(dialect=dialect)}'


def _array_literal(values: Iterable) -> str:
    """A PostgreSQL text[] literal: every element quoted (so its text is taken whole, whatever it holds),
    backslash and double quote escaped; None an unquoted NULL."""
    elements = []
    for value in values:
        if value is None:
            elements.append("NULL")
            continue
        text = ("t" if value else "f") if value.__class__ is bool else str(value)
        if '"' in text or "\\" in text:
            text = text.replace("\\", "\\\\").replace('"', '\\"')
        elements.append('"' + text + '"')
    return "{" + ",".join(elements) + "}"


def reconcile_owners(conn, settings: mapping.RealtimeSettings, owners: set[Owner]) -> dict[str, TableChanges]:
    """Make the rows of these owners what their models say (none, for an owner that is gone). Returns what
    it inserted, updated or deleted, for each table it changed."""
    changed: dict[str, TableChanges] = {}
    if not owners:
        return changed
    wanted = desired_rows(conn, settings, owners)
    scopes = defaultdict(list)
    for owner in owners:
        for table, clause in _scope(owner, settings).items():
            scopes[table].append(clause)
    for table in SYNCED_TABLES:
        if table not in scopes:
            continue
        desired = wanted.get(table, [])
        existing = _existing(conn, table, desired, sa.or_(*scopes[table]))
        changes = diff_rows(table, desired, existing)
        write_changes(conn, changes, delete_extras=True)
        if changes.inserts or changes.updates or changes.extras:
            changed[table] = changes
    return changed


def detach_queue(conn, queue_name: str) -> None:
    """Delete a queue's row (its members stay): the first step of rebuilding a queue Asterisk has loaded
    (see ami/outbox.py); the group's reconcile puts the row back."""
    t = TABLES["asterisk_queues"]
    conn.execute(sa.delete(t).where(t.c.name == queue_name))


def hunt_group_ids(conn) -> list[int]:
    """The active groups that ring in order (Asterisk's `linear`)."""
    query = sa.select(group_t.c.id).where(group_t.c.ring_strategy == "hunt", group_t.c.is_active).order_by(group_t.c.id)
    return list(conn.execute(query).scalars())


def ring_orders(conn, settings: mapping.RealtimeSettings, group_ids: Iterable[int]) -> dict[str, list[str]]:
    """queue → its members' interfaces in the app's ringing order, for those of these groups that hunt."""
    wanted = desired_rows(conn, settings, {Owner("group", group_id) for group_id in group_ids})
    return ring_order.wanted_ring_orders(wanted["asterisk_queues"], wanted["asterisk_queue_members"])


def take_out_members(conn, queue_name: str, interfaces: list[str]) -> list[dict]:
    """Delete these members' rows of a queue and return them whole, in the order given: put back one by one
    (`put_back_member`), Asterisk appends each to the loaded queue — with the pause it wrote into the row."""
    t = TABLES["asterisk_queue_members"]
    where = sa.and_(t.c.queue_name == queue_name, t.c.interface.in_(interfaces))
    rows = {r["interface"]: dict(r) for r in conn.execute(sa.select(t).where(where)).mappings()}
    conn.execute(sa.delete(t).where(where))
    return [rows[i] for i in interfaces if i in rows]


def put_back_member(conn, row: dict) -> None:
    conn.execute(sa.insert(TABLES["asterisk_queue_members"]).values(row))


def move_rows(conn, settings: mapping.RealtimeSettings, kind: str, old_key: str, new_key: str) -> None:
    """Renaming an extension or trunk moves its rows, so options an admin set on them in SQL go along (and a
    mailbox keeps its PIN)."""
    old_scope = _scope(Owner(kind, old_key), settings)
    for table, clause in old_scope.items():
        if table == "ps_endpoint_id_ips":
            continue  # identify rows are recomputed under their new ids
        key_column = "mailbox" if table == "voicemail" else "id"
        conn.execute(sa.update(TABLES[table]).where(clause).values({key_column: new_key}))


def set_voicemail_pin(conn, settings: mapping.RealtimeSettings, number: str, pin: str) -> bool:
    """Give an extension's mailbox this PIN (Asterisk reads it at the next login to the mailbox); False when
    it has no mailbox row."""
    check_values("voicemail", [{"password": pin}])
    t = TABLES["voicemail"]
    return conn.execute(sa.update(t).where(_mailbox_clause(number, settings)).values(password=pin)).rowcount > 0


def plan_table(conn, table: str, desired: list[dict]) -> TableChanges:
    """What a full sync of one table would change, given every row the models want in it."""
    return diff_rows(table, desired, _existing(conn, table, desired))


def with_credentials(conn, auth_ids: list[str]) -> list[str]:
    """Which of these ps_auths rows hold a password or an MD5 credential Asterisk would accept."""
    if not auth_ids:
        return []
    t = TABLES["ps_auths"]
    holds = sa.or_(sa.func.coalesce(t.c.password, "") != "", sa.func.coalesce(t.c.md5_cred, "") != "")
    return sorted(conn.execute(sa.select(t.c.id).where(t.c.id.in_(auth_ids), holds)).scalars())


def existing_ids(conn, table: str, keys: list[str]) -> list[str]:
    t = TABLES[table]
    return list(conn.execute(sa.select(t.c.id).where(t.c.id.in_(keys))).scalars())


def row_exists(conn, table: str, key: str) -> bool:
    t = TABLES[table]
    return conn.execute(sa.select(sa.literal(1)).where(t.c.id == key).limit(1)).first() is not None
