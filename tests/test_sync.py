"""The same-transaction rule, and `pbx sync`: idempotent, repairs drift, lists or prunes rows no model owns."""

import pytest
import sqlalchemy as sa

from pbxweb.models import Extension


def test_a_failure_after_the_insert_leaves_neither_the_extension_nor_its_rows(app, db, realtime_counts):
    def fail_after_flush(session, context):
        raise RuntimeError("disk full")

    db.session.add(Extension(number="1001", name="John", sip_password="x" * 20, context="from-internal",
                             codecs="ulaw", voicemail=False, max_contacts=1, is_active=True))
    db.session.flush()  # the realtime rows are written now, in the open transaction
    assert realtime_counts()["ps_endpoints"] == 0  # not visible outside the transaction
    sa.event.listen(db.session, "after_flush", fail_after_flush)
    try:
        with pytest.raises(RuntimeError):
            db.session.add(Extension(number="1002", name="Mary", sip_password="y" * 20, context="from-internal",
                                     codecs="ulaw", voicemail=False, max_contacts=1, is_active=True))
            db.session.commit()
    finally:
        sa.event.remove(db.session, "after_flush", fail_after_flush)
    db.session.rollback()
    assert db.session.query(Extension).count() == 0
    assert all(n == 0 for n in realtime_counts().values())


def test_rows_are_visible_to_asterisk_only_after_commit(app, db, realtime_counts):
    extensions_before = realtime_counts()["ps_endpoints"]
    db.session.add(Extension(number="1001", name="John", sip_password="x" * 20, context="from-internal",
                             codecs="ulaw", voicemail=False, max_contacts=1, is_active=True))
    db.session.flush()
    with db.engine.connect() as other:  # Asterisk's own connection
        assert other.exec_driver_sql("SELECT count(*) FROM ps_endpoints").scalar() == extensions_before
    db.session.commit()
    with db.engine.connect() as other:
        assert other.exec_driver_sql("SELECT count(*) FROM ps_endpoints").scalar() == 1


def test_bulk_updates_that_would_skip_the_sync_are_refused(app, db):
    with pytest.raises(RuntimeError, match="bypasses the realtime sync"):
        db.session.execute(sa.update(Extension).values(name="x"))


@pytest.fixture
def populated(api):
    for n in range(1001, 1004):
        api.post("/api/extensions", json={"number": str(n), "name": f"User {n}"})
    group = api.post("/api/groups", json={"name": "Sales"}).get_json()
    api.put(f"/api/groups/{group['id']}/members", json={"members": [{"number": "1001"}, {"number": "1002"}]})
    api.post("/api/dids", json={"number": "0612345678", "destination_type": "group", "destination": group["id"]})
    api.post("/api/trunks", json={"name": "provider", "host": "192.0.2.1", "username": "u1", "password": "Secret-pass-1", "register": True})


def snapshot(db):
    from pbxweb.realtime.schema import SYNCED_TABLES, TABLES

    # A mailbox's serial key and the PIN made for a row nobody gave one are Asterisk's and random.
    unwritten = {"voicemail": {"uniqueid", "password"}}

    def columns(t):
        return [c for c in TABLES[t].columns if c.name not in unwritten.get(t, ())]

    with db.engine.connect() as conn:
        return {t: sorted(map(tuple, conn.execute(sa.select(*columns(t))).all()), key=repr) for t in SYNCED_TABLES}


def test_sync_from_empty_tables_rebuilds_exactly_what_the_hooks_wrote(populated, db, runner):
    written = snapshot(db)
    with db.engine.begin() as conn:
        for table in written:
            conn.exec_driver_sql(f"DELETE FROM {table}")
    result = runner.invoke(args=["pbx", "sync"])
    assert result.exit_code == 0, result.output
    assert snapshot(db) == written
    assert "ps_endpoints" in result.output


def test_a_second_sync_changes_nothing(populated, db, runner):
    runner.invoke(args=["pbx", "sync"])
    before = snapshot(db)
    result = runner.invoke(args=["pbx", "sync"])
    lines = [l.split() for l in result.output.splitlines() if l.startswith(("ps_", "asterisk_", "dids"))]
    assert lines and all(cols[1:4] == ["0", "0", "0"] for cols in lines)
    assert snapshot(db) == before


def test_sync_repairs_drift_but_keeps_options_set_by_hand(populated, db, runner, rows):
    with db.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE ps_endpoints SET context = 'wrong', language = 'de' WHERE id = '1001'")
        conn.exec_driver_sql("DELETE FROM ps_auths WHERE id = '1002'")
    runner.invoke(args=["pbx", "sync"])
    endpoint = rows("ps_endpoints", id="1001")[0]
    assert endpoint["context"] == "from-internal" and endpoint["language"] == "de"
    assert len(rows("ps_auths", id="1002")) == 1


def test_dry_run_reports_and_writes_nothing(populated, db, runner):
    with db.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM ps_aors")
    before = snapshot(db)
    result = runner.invoke(args=["pbx", "sync", "--dry-run"])
    assert result.exit_code == 0
    assert [l.split()[1] for l in result.output.splitlines() if l.startswith("ps_aors")] == ["4"]
    assert snapshot(db) == before


def test_rows_added_by_hand_are_listed_not_deleted_unless_pruned(populated, db, runner, rows):
    with db.engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO ps_endpoints (id, context) VALUES ('handmade', 'x')")
        conn.exec_driver_sql(
            "INSERT INTO asterisk_queue_members (queue_name, interface, uniqueid) VALUES ('legacy', 'PJSIP/9', 99999)"
        )
    result = runner.invoke(args=["pbx", "sync"])
    assert "ps_endpoints: handmade" in result.output and "asterisk_queue_members: legacy, PJSIP/9" in result.output
    assert len(rows("ps_endpoints", id="handmade")) == 1
    result = runner.invoke(args=["pbx", "sync", "--prune"])
    assert result.exit_code == 0
    assert rows("ps_endpoints", id="handmade") == [] and rows("asterisk_queue_members", queue_name="legacy") == []
    assert len(rows("ps_endpoints")) == 4


def test_sync_groups_touches_only_the_queue_tables(populated, db, runner, rows):
    with db.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM asterisk_queue_members")
        conn.exec_driver_sql("DELETE FROM ps_aors")
    result = runner.invoke(args=["pbx", "sync-groups"])
    assert result.exit_code == 0
    assert len(rows("asterisk_queue_members")) == 2
    assert rows("ps_aors") == []


def test_a_large_sync_streams_rows_that_match_the_hooks_byte_for_byte(app, db, runner):
    # Hundreds of rows in one bulk write, with the characters an array literal has to quote.
    db.session.add_all(
        Extension(number=str(2000 + i), name=f"O'Neil, \\Jr {i}", sip_password=f'Pw"{i:016d},x', context="from-internal",
                  codecs="ulaw", voicemail=i % 2 == 0, max_contacts=1, is_active=True)
        for i in range(250)
    )
    db.session.commit()
    written = snapshot(db)
    with db.engine.begin() as conn:
        for table in written:
            conn.exec_driver_sql(f"DELETE FROM {table}")
    assert runner.invoke(args=["pbx", "sync"]).exit_code == 0
    assert snapshot(db) == written


@pytest.fixture
def statements(db):
    """The SQL statements sent while the block runs."""
    seen: list[str] = []

    def record(conn, cursor, statement, *args):
        seen.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", record)
    yield seen
    sa.event.remove(db.engine, "before_cursor_execute", record)


def test_a_sync_with_nothing_changed_since_the_last_answers_without_reading_the_tables(runner, api, rows, statements):
    for number in ("1001", "1002"):
        api.post("/api/extensions", json={"number": number, "name": f"User {number}"})
    first = runner.invoke(args=["pbx", "sync"])
    statements.clear()
    second = runner.invoke(args=["pbx", "sync"])
    assert second.exit_code == 0 and second.output == first.output
    assert "ps_endpoints                     0         0         0          2" in second.output
    assert not [s for s in statements if "FROM ps_endpoints" in s or "FROM pbx_extensions" in s]


@pytest.mark.parametrize("change", [
    "UPDATE ps_aors SET max_contacts = 5 WHERE id = '1001'",
    "DELETE FROM ps_auths WHERE id = '1001'",
    "UPDATE pbx_extensions SET name = 'Changed In SQL' WHERE number = '1001'",
])
def test_any_write_after_a_sync_makes_the_next_sync_read_everything(runner, api, rows, db, change):
    api.post("/api/extensions", json={"number": "1001", "name": "User 1001"})
    runner.invoke(args=["pbx", "sync"])
    with db.engine.begin() as conn:
        conn.exec_driver_sql(change)
    result = runner.invoke(args=["pbx", "sync"])
    assert result.exit_code == 0
    extension = api.get("/api/extensions/1001").get_json()
    assert rows("ps_aors")[0]["max_contacts"] == 1
    assert rows("ps_auths")[0]["password"]
    assert rows("ps_endpoints")[0]["callerid"] == f'"{extension["name"]}" <1001>'


def test_a_changed_setting_makes_the_next_sync_rewrite_the_rows(runner, api, app, rows):
    api.post("/api/extensions", json={"number": "1001", "name": "User 1001"})
    runner.invoke(args=["pbx", "sync"])
    app.config["PBX_SIP_TRANSPORT"] = "transport-tcp"
    runner.invoke(args=["pbx", "sync"])
    assert rows("ps_endpoints")[0]["transport"] == "transport-tcp"


def test_prune_after_a_sync_that_kept_unowned_rows_deletes_them(runner, api, db, rows):
    api.post("/api/extensions", json={"number": "1001", "name": "User 1001"})
    with db.engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO ps_aors (id, max_contacts) VALUES ('9999', 1)")
    kept = runner.invoke(args=["pbx", "sync"])
    assert "ps_aors: 9999" in kept.output
    again = runner.invoke(args=["pbx", "sync"])
    assert "ps_aors: 9999" in again.output  # the record remembers what it kept
    runner.invoke(args=["pbx", "sync", "--prune"])
    assert [r["id"] for r in rows("ps_aors")] == ["1001"]


def marker_reason(db):
    with db.engine.connect() as conn:
        return conn.exec_driver_sql("SELECT reason_paused FROM asterisk_queue_members "
                                    "WHERE queue_name = 'mini-pbx-marker'").scalars().all()


def test_sync_puts_back_the_marker_that_keeps_asterisk_writing_pause_reasons(populated, db, runner):
    assert marker_reason(db) == ["marker"]  # the migrations wrote it
    with db.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM asterisk_queue_members WHERE queue_name = 'mini-pbx-marker'")
    assert runner.invoke(args=["pbx", "sync"]).exit_code == 0
    assert marker_reason(db) == ["marker"]


def test_sync_leaves_the_pause_reason_asterisk_wrote_into_a_member_row(populated, db, runner, rows):
    with db.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE asterisk_queue_members SET paused = 1, reason_paused = 'Lunch' "
                             "WHERE interface = 'PJSIP/1001'")
    result = runner.invoke(args=["pbx", "sync"])
    assert result.exit_code == 0
    member = rows("asterisk_queue_members", interface="PJSIP/1001")[0]
    assert (member["paused"], member["reason_paused"]) == (1, "Lunch")
