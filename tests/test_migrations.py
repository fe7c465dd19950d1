"""The migrations build everything on PostgreSQL and SQLite, and adopt a database that Asterisk's own
ast-db-manage created first. The schema is held against the real Asterisk's captured schema."""

import csv

import sqlalchemy as sa
from flask_migrate import upgrade

from pbxweb import create_app
from pbxweb.realtime.schema import SCHEMA_DIR, TABLE_NAMES, TABLES

from .conftest import ASTERISK_FACTS, app_config

CAPTURED = ASTERISK_FACTS


def read_csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def migrate(url):
    app = create_app(app_config(url))
    with app.app_context():
        upgrade()
    return sa.create_engine(url)


def plan_of(engine, table: str, query: str) -> str:
    """PostgreSQL's plan for `query` once `table` is vacuumed and analysed, as autovacuum leaves a table after
    many inserts (a GIN index's pending entries merged, the planner's figures read)."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text(f"VACUUM ANALYZE {table}"))
        return "\n".join(conn.execute(sa.text(f"EXPLAIN {query}")).scalars())


def test_our_copy_of_asterisks_schema_is_the_captured_one():
    captured = {(r["table"], r["column"]): r for r in read_csv(CAPTURED / "realtime-columns.csv")}
    ours = read_csv(SCHEMA_DIR / "columns.csv")
    assert ours and all(captured[(r["table"], r["column"])] == r for r in ours)
    for table in {r["table"] for r in ours}:
        assert {c for t, c in captured if t == table} == {r["column"] for r in ours if r["table"] == table}
    assert read_csv(SCHEMA_DIR / "cdr_columns.csv") == read_csv(CAPTURED / "cdr-columns.csv")
    captured_enums = {(r["type"], r["value"]) for r in read_csv(CAPTURED / "enums.csv")}
    assert {(r["type"], r["value"]) for r in read_csv(SCHEMA_DIR / "enums.csv")} <= captured_enums


def test_upgrade_builds_every_realtime_column_with_asterisks_types_on_postgresql(make_db):
    engine = migrate(make_db("pbx_fresh"))
    with engine.connect() as conn:
        found = {
            (r.table_name, r.column_name): (r.data_type, r.udt_name, r.character_maximum_length or
                                            (r.numeric_precision, r.numeric_scale))
            for r in conn.execute(sa.text(
                "SELECT table_name, column_name, data_type, udt_name, character_maximum_length, "
                "numeric_precision, numeric_scale "
                "FROM information_schema.columns WHERE table_schema = 'public'"))
        }
    for row in read_csv(SCHEMA_DIR / "columns.csv"):
        table = TABLE_NAMES.get(row["table"], row["table"])
        data_type, udt, length = found[(table, row["column"])]
        expected = row["data_type"]
        if expected.startswith("character varying"):
            assert (data_type, f"character varying({length})") == ("character varying", expected), (table, row["column"])
        elif data_type == "numeric":  # voicemail.volgain numeric(5,2)
            assert f"numeric({length[0]},{length[1]})" == expected, (table, row["column"])
        elif data_type == "USER-DEFINED":
            assert udt == expected, (table, row["column"])
        else:
            assert data_type == expected, (table, row["column"])
    engine.dispose()


def test_upgrade_works_on_sqlite(tmp_path):
    engine = migrate(f"sqlite:///{tmp_path / 'pbx.sqlite'}")
    inspector = sa.inspect(engine)
    assert set(TABLES) <= set(inspector.get_table_names())
    assert "pbx_extensions" in inspector.get_table_names()


def build_like_ast_db_manage(url):
    """Asterisk's tables, enum types and constraints, created the way its alembic scripts leave them."""
    enums = {}
    for r in read_csv(CAPTURED / "enums.csv"):
        enums.setdefault(r["type"], []).append(r["value"])
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for name, values in enums.items():
            conn.execute(sa.text(f"CREATE TYPE {name} AS ENUM ({', '.join(repr(v) for v in values)})"))
        tables = {}
        for r in read_csv(CAPTURED / "realtime-columns.csv"):
            if r["data_type"] == "data_type" or r["table"] == "table":
                continue
            null = "" if r["nullable"] == "YES" else " NOT NULL"
            default = f" DEFAULT {r['default']}" if r["default"] else ""
            tables.setdefault(r["table"], []).append(f'"{r["column"]}" {r["data_type"]}{null}{default}')
        for table, columns in tables.items():
            for column in columns:
                if "nextval('" in column:
                    conn.execute(sa.text(f"CREATE SEQUENCE IF NOT EXISTS {column.split(chr(39))[1]}"))
            conn.execute(sa.text(f'CREATE TABLE "{table}" ({", ".join(columns)})'))
        for r in read_csv(CAPTURED / "realtime-indexes.csv"):
            conn.execute(sa.text(r[list(r)[2]]))
        conn.execute(sa.text("INSERT INTO ps_endpoints (id, context) VALUES ('legacy', 'from-internal')"))
        cdr_columns = [f'"{r["column"]}" {r["data_type"]}' for r in read_csv(CAPTURED / "cdr-columns.csv")]
        conn.execute(sa.text(f"CREATE TABLE cdr ({', '.join(cdr_columns)})"))
        conn.execute(sa.text("INSERT INTO cdr (src, dst, \"end\") VALUES ('1001', '1002', '2026-11-27 09:40:03')"))
    return engine


def test_upgrade_adopts_a_database_built_by_ast_db_manage(make_db):
    url = make_db("pbx_adopt")
    engine = build_like_ast_db_manage(url)
    with engine.connect() as conn:
        types_before = conn.execute(sa.text("SELECT count(*) FROM pg_type WHERE typtype = 'e'")).scalar()
    migrate(url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM pg_type WHERE typtype = 'e'")).scalar() == types_before
        assert conn.execute(sa.text("SELECT id FROM ps_endpoints")).scalars().all() == ["legacy"]
        # The call records Asterisk had written are kept, and gain the key and indexes of the call log.
        assert conn.execute(sa.text("SELECT id, src FROM cdr")).one() == (1, "1001")
        assert {"ix_cdr_start", "ix_cdr_linkedid"} <= {i["name"] for i in sa.inspect(conn).get_indexes("cdr")}
        # Asterisk's own dialplan table `extensions` and its queues tables stay as they were, beside ours.
        tables = set(sa.inspect(conn).get_table_names())
    assert {"extensions", "queues", "queue_members", "asterisk_queues", "asterisk_queue_members", "pbx_extensions"} <= tables
    app = create_app(app_config(url))
    client = app.test_client()
    with app.app_context():
        from .conftest import token_for

        headers = {"Authorization": f"Bearer {token_for('admin')}"}
    response = client.post("/api/extensions", json={"number": "1001", "name": "John Doe"}, headers=headers)
    assert response.status_code == 201
    with engine.connect() as conn:
        assert sorted(conn.execute(sa.text("SELECT id FROM ps_endpoints")).scalars()) == ["1001", "legacy"]
    engine.dispose()


def test_the_legs_of_one_extension_are_found_by_index_on_postgresql(make_db):
    """The call log's extension filter (and an agent's own call log) matches `PJSIP/1001-%` on either channel."""
    engine = migrate(make_db("pbx_channels"))
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO cdr (src, dst, channel, dstchannel, start, linkedid, uniqueid) "
            "SELECT (1000 + g % 500)::text, (1000 + g % 499)::text, 'PJSIP/' || (1000 + g % 500) || '-' || g, "
            "'PJSIP/' || (1000 + g % 499) || '-' || g, now() - g * interval '1 minute', g::text, g::text "
            "FROM generate_series(1, 50000) g"))
    plan = plan_of(engine, "cdr", "SELECT id FROM cdr WHERE src = '1050' OR dst = '1050' OR channel LIKE 'PJSIP/1050-%' "
                                  "OR dstchannel LIKE 'PJSIP/1050-%' ORDER BY start DESC LIMIT 400")
    assert "ix_cdr_channel" in plan and "ix_cdr_dstchannel" in plan, plan


def test_an_extension_search_of_three_characters_reads_by_index_on_postgresql(make_db):
    """The extensions list, the dashboard and the API search `number ILIKE '%456%' OR name ILIKE '%456%'`."""
    engine = migrate(make_db("pbx_search"))
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO pbx_extensions (number, name, sip_password, context, codecs, voicemail, max_contacts, is_active, created_at) "
            "SELECT (1000 + g)::text, 'User ' || (1000 + g), 'Pw' || g || 'xYzxYzxYzxYzxYz', 'from-internal', 'ulaw', false, 1, true, now() "
            "FROM generate_series(1, 20000) g"))
    plan = plan_of(engine, "pbx_extensions", "SELECT id FROM pbx_extensions WHERE number ILIKE '%456%' "
                                             "OR name ILIKE '%456%' ORDER BY number LIMIT 51")
    assert "ix_pbx_extensions_number_trgm" in plan and "ix_pbx_extensions_name_trgm" in plan, plan
