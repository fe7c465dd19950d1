"""The call log, read from `cdr` rows written exactly as cdr_adaptive_odbc writes them (quoted identifiers,
UTC): calls grouped by linkedid, each filter, paging while records arrive, the agent rule, export, stats."""

import base64
import csv
import io
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from pbxweb.auth.service import create_token, create_user

from .conftest import Api

NOW = datetime.utcnow().replace(microsecond=0) - timedelta(minutes=5)
COLUMNS = ("accountcode", "src", "dst", "dcontext", "clid", "channel", "dstchannel", "lastapp", "lastdata", "start",
           "answer", "end", "duration", "billsec", "disposition", "amaflags", "userfield", "uniqueid", "linkedid",
           "peeraccount", "sequence")
INSERT = sa.text(f"INSERT INTO cdr ({', '.join(chr(34) + c + chr(34) for c in COLUMNS)}) "
                 f"VALUES ({', '.join(':' + c for c in COLUMNS)})")


def leg(conn, linkedid, *, at, src="1001", dst="1002", channel=None, dstchannel=None, lastapp="Dial", lastdata="",
        disposition="ANSWERED", duration=10, billsec=8, uniqueid=None, clid=None, sequence=1):
    """One record as cdr_adaptive_odbc inserts it: every column named, quoted, times in UTC."""
    start = NOW + timedelta(seconds=at)
    conn.execute(INSERT, {
        "accountcode": "", "src": src, "dst": dst, "dcontext": "from-internal", "clid": clid or f'"Caller {src}" <{src}>',
        "channel": channel or f"PJSIP/{src}-000000{sequence:02x}", "dstchannel": dstchannel if dstchannel is not None else f"PJSIP/{dst}-000000{sequence + 1:02x}",
        "lastapp": lastapp, "lastdata": lastdata or f"PJSIP/{dst},25", "start": start,
        "answer": start + timedelta(seconds=duration - billsec) if billsec else None, "end": start + timedelta(seconds=duration),
        "duration": duration, "billsec": billsec, "disposition": disposition, "amaflags": "DOCUMENTATION", "userfield": "",
        "uniqueid": uniqueid or linkedid, "linkedid": linkedid, "peeraccount": "", "sequence": sequence,
    })


@pytest.fixture
def calls(db, two_groups):
    """An internal call, a queue call answered by 1002 (1001's leg rang unanswered), an inbound call missed,
    an outbound call, a busy one — oldest first."""
    sales = two_groups["sales"]
    with db.engine.begin() as conn:
        leg(conn, "100.1", at=-3000, src="1001", dst="1003", duration=65, billsec=60)
        leg(conn, "100.2", at=-2000, src="0612345678", dst="s", channel="PJSIP/provider-00000010",
            dstchannel="PJSIP/1002-00000011", lastapp="Queue", lastdata=f"extgroup_{sales},t,,,60", duration=40, billsec=30,
            clid='"Smith, John ""JJ""" <0612345678>', sequence=2)
        leg(conn, "100.2", at=-2000, src="0612345678", dst="s", channel="PJSIP/provider-00000010",
            dstchannel="PJSIP/1001-00000012", lastapp="Queue", lastdata=f"extgroup_{sales},t,,,60",
            disposition="NO ANSWER", duration=5, billsec=0, sequence=3)
        leg(conn, "100.3", at=-1000, src="0698765432", dst="1003", channel="PJSIP/provider-00000020",
            disposition="NO ANSWER", duration=25, billsec=0, clid='"=HYPERLINK(""x"")" <0698765432>', sequence=4)
        leg(conn, "100.4", at=-500, src="1002", dst="0201234567", lastdata="PJSIP/201234567@provider,60",
            dstchannel="PJSIP/provider-00000030", duration=130, billsec=120, sequence=5)
        leg(conn, "100.5", at=-100, src="1003", dst="1001", disposition="BUSY", duration=2, billsec=0, sequence=6)
    return two_groups


def ids(response) -> list[str]:
    assert response.status_code == 200, response.get_json()
    return [c["linkedid"] for c in response.get_json()["calls"]]


def test_a_call_is_one_row_with_its_legs_newest_first(api, calls):
    body = api.get("/api/cdr").get_json()
    assert [c["linkedid"] for c in body["calls"]] == ["100.5", "100.4", "100.3", "100.2", "100.1"]
    queue_call = body["calls"][3]
    assert len(queue_call["legs"]) == 2 and queue_call["disposition"] == "ANSWERED"
    assert queue_call["answered_by"] == "1002" and queue_call["groups"] == [calls["sales"]]
    assert queue_call["start"].endswith("+00:00") and body["next_cursor"] is None


@pytest.mark.parametrize("query,expected", [
    ("number=06", ["100.3", "100.2"]),
    ("number=0201", ["100.4"]),
    ("extension=1003", ["100.5", "100.3", "100.1"]),
    ("extension=1001", ["100.5", "100.2", "100.1"]),
    ("group={sales}", ["100.2"]),
    ("direction=inbound", ["100.3", "100.2"]),
    ("direction=outbound", ["100.4"]),
    ("direction=internal", ["100.5", "100.1"]),
    ("disposition=ANSWERED", ["100.4", "100.2", "100.1"]),
    ("disposition=NO ANSWER", ["100.3"]),
    ("disposition=busy", ["100.5"]),
    ("min_duration=60", ["100.4", "100.1"]),
    ("range=today&direction=inbound&min_duration=30", ["100.2"]),
    ("from=2000-01-01&to=2000-01-02", []),
])
def test_each_filter(api, calls, query, expected):
    assert ids(api.get("/api/cdr?" + query.format(sales=calls["sales"]))) == expected


@pytest.mark.parametrize("query,field", [("from=27-11-2026", "from"), ("to=tomorrow", "to"), ("cursor=nope", "cursor"),
                                         ("direction=sideways", "direction"), ("limit=501", "limit"),
                                         ("from=2026-11-27&to=2026-11-01", "to"), ("number=12a", "number")])
def test_a_bad_filter_is_a_400_naming_it(api, calls, query, field):
    response = api.get("/api/cdr?" + query)
    assert response.status_code == 400 and field in response.get_json()["errors"]


def test_paging_while_records_arrive_has_no_duplicates_and_no_gaps(api, calls, db):
    first = api.get("/api/cdr?limit=2").get_json()
    assert [c["linkedid"] for c in first["calls"]] == ["100.5", "100.4"]
    with db.engine.begin() as conn:  # two new calls arrive while the reader looks at page 1
        leg(conn, "200.1", at=10, src="1001", dst="1002", sequence=7)
        leg(conn, "200.2", at=20, src="1002", dst="1003", sequence=8)
    second = api.get(f"/api/cdr?limit=2&cursor={first['next_cursor']}").get_json()
    third = api.get(f"/api/cdr?limit=2&cursor={second['next_cursor']}").get_json()
    seen = [c["linkedid"] for page in (first, second, third) for c in page["calls"]]
    assert seen == ["100.5", "100.4", "100.3", "100.2", "100.1"] and third["next_cursor"] is None
    assert ids(api.get("/api/cdr?limit=2"))[:2] == ["200.2", "200.1"]


def test_a_call_whose_legs_straddle_a_page_is_shown_once(api, db, two_groups):
    with db.engine.begin() as conn:
        leg(conn, "300.1", at=-100, src="1001", dst="1002", sequence=1)
        leg(conn, "300.2", at=-90, src="1003", dst="1002", sequence=2)
        leg(conn, "300.1", at=-80, src="1001", dst="1003", uniqueid="300.9", sequence=3)  # a transfer, later
    first = api.get("/api/cdr?limit=1").get_json()
    rest = api.get(f"/api/cdr?limit=5&cursor={first['next_cursor']}").get_json()
    assert [c["linkedid"] for c in first["calls"] + rest["calls"]] == ["300.1", "300.2"]
    assert len(first["calls"][0]["legs"]) == 2


def test_an_agent_sees_only_calls_its_own_extension_took_part_in(client, calls):
    create_user("agent1003", "agent", "correct horse battery", "1003")
    agent = Api(client, create_token("agent1003"))
    assert ids(agent.get("/api/cdr")) == ["100.5", "100.3", "100.1"]
    assert ids(agent.get("/api/cdr?extension=1002")) == []  # asking for someone else's gives nothing of theirs


def test_an_agent_without_an_extension_sees_no_calls(client, calls):
    user, _ = create_user("lonely", "agent", "correct horse battery")
    assert ids(Api(client, create_token("lonely")).get("/api/cdr")) == []


def test_the_export_is_streamed_with_the_filter_in_its_name_and_cells_escaped(api, calls):
    response = api.get("/calls/export.csv?range=today&direction=inbound")
    assert response.status_code == 200 and response.is_streamed
    assert 'filename="calls_today_inbound.csv"' in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    by_id = {r["linkedid"]: r for r in rows}
    assert set(by_id) == {"100.2", "100.3"}
    assert by_id["100.2"]["caller_name"] == '"Smith, John ""JJ""" <0612345678>'
    assert by_id["100.3"]["caller_name"].startswith("'") or not by_id["100.3"]["caller_name"].startswith("=")
    assert by_id["100.2"]["groups"] == "Sales" and by_id["100.2"]["talk_s"] == "30"


def test_a_formula_looking_caller_name_is_escaped_in_the_export(api, db, two_groups):
    with db.engine.begin() as conn:
        leg(conn, "400.1", at=-10, src="0611111111", dst="1001", channel="PJSIP/provider-1", clid="=cmd|' /C calc'!A0")
    text = api.get("/calls/export.csv").get_data(as_text=True)
    assert "'=cmd|' /C calc'!A0" in text and ",=cmd" not in text


def test_times_are_shown_in_the_sites_zone(api, app, calls):
    app.config["PBX_TIMEZONE"] = "Pacific/Kiritimati"  # UTC+14: the day is not the same as UTC's
    rows = list(csv.DictReader(io.StringIO(api.get("/calls/export.csv").get_data(as_text=True))))
    first = next(r for r in rows if r["linkedid"] == "100.1")
    assert first["start"] == (NOW - timedelta(seconds=3000) + timedelta(hours=14)).strftime("%Y-%m-%d %H:%M:%S")


def test_a_script_fetches_the_export_with_a_bearer_token_and_a_stranger_cannot(client, api, calls):
    assert api.get("/calls/export.csv").status_code == 200
    assert client.get("/calls/export.csv").status_code == 302
    assert client.get("/calls/export.csv", headers={"Authorization": "Bearer pbx_wrong"}).status_code == 401


def test_statistics_count_answered_and_missed_per_day_hour_and_extension(calls, app):
    from .test_access import signed_in

    user, _ = create_user("boss", "manager", "correct horse battery")
    browser = signed_in(app, user)
    html = browser.get("/calls/stats?range=today").get_data(as_text=True)
    assert "5 calls: 3 answered, 2 missed" in html and "<svg" in html
    days = list(csv.DictReader(io.StringIO(browser.get("/calls/stats/days.csv?range=today").get_data(as_text=True))))
    assert days[0]["calls"] == "5" and days[0]["answered"] == "3" and days[0]["longest_talk_s"] == "120"
    extensions = list(csv.DictReader(io.StringIO(browser.get("/calls/stats/extensions.csv?range=today").get_data(as_text=True))))
    assert {r["extension"]: r["calls"] for r in extensions} == {"1003": "1", "1002": "2"}


def test_the_call_log_page_lists_calls_and_expands_their_legs(app, calls):
    from .test_access import signed_in

    user, _ = create_user("qa", "qa", "correct horse battery")
    html = signed_in(app, user).get("/calls?range=today").get_data(as_text=True)
    assert html.count('class="call"') == 5 and html.count('class="legs-row" hidden') == 5 and "Sales" in html
    assert 'id="calls-poll"' in html
    assert 'hx-get="/calls/100.2/legs"' in html and "rang 1001" not in html  # legs come when a call opens


def test_a_calls_legs_are_told_in_words_to_those_who_may_see_the_call(app, calls):
    from .test_access import signed_in

    qa, _ = create_user("qa", "qa", "correct horse battery")
    legs = signed_in(app, qa).get("/calls/100.2/legs", headers={"HX-Request": "true"})
    assert legs.status_code == 200
    text = legs.get_data(as_text=True)
    assert "queue Sales → rang 1002, answered" in text and "queue Sales → rang 1001, no answer" in text
    agent, _ = create_user("agent1003", "agent", "correct horse battery", "1003")
    browser = signed_in(app, agent)
    assert browser.get("/calls/100.2/legs").status_code == 404  # 1003 had no part in it
    assert browser.get("/calls/100.1/legs").status_code == 200
    assert signed_in(app, qa).get("/calls/nope/legs").status_code == 404


def test_new_calls_come_on_top_of_the_first_page(app, calls, db):
    from .test_access import signed_in

    user, _ = create_user("qa", "qa", "correct horse battery")
    browser = signed_in(app, user)
    assert 'id="call-' not in browser.get("/calls/newer?after=100.5").get_data(as_text=True)
    with db.engine.begin() as conn:
        leg(conn, "500.1", at=30, src="1001", dst="1002", sequence=9)
    fresh = browser.get("/calls/newer?after=100.5").get_data(as_text=True)
    assert 'id="call-500-1"' in fresh and 'hx-swap-oob="afterbegin:#call-rows"' in fresh
    assert "after=500.1" in fresh  # the next poll starts from the new top


def test_cdr_test_reports_and_marks_its_own_record(runner, db):
    empty = runner.invoke(args=["pbx", "cdr-test"])
    assert empty.exit_code == 1 and "✔ cdr table — 0 record(s)" in empty.output and "✘ Asterisk wrote 0" in empty.output
    created = runner.invoke(args=["pbx", "cdr-test", "--create"])
    assert "Inserted a test record" in created.output and "1 record(s)" in created.output
    assert created.exit_code == 1  # a test record is not Asterisk writing
    with db.engine.begin() as conn:
        leg(conn, "600.1", at=0)
    fed = runner.invoke(args=["pbx", "cdr-test"])
    assert fed.exit_code == 0 and "✔ Asterisk wrote 1 record(s) in the last day" in fed.output
    cleaned = runner.invoke(args=["pbx", "cdr-test", "--delete-test"])
    assert "Deleted 1 test record(s)" in cleaned.output and "1 record(s)" in cleaned.output


def test_the_listener_notes_when_it_last_saw_a_call_record(db):
    from pbxweb.live import store

    with db.engine.begin() as conn:
        store.set_ami_status(conn, last_cdr_at=store.now())
    from pbxweb.cdr.service import health

    assert health(db.session)["last_cdr_event"] is not None


def test_cursors_are_opaque_but_checked(api, calls):
    forged = base64.urlsafe_b64encode(b'["not a time", 1]').decode().rstrip("=")
    assert api.get(f"/api/cdr?cursor={forged}").status_code == 400


# --- the queue log: what happened to a caller in a group ----------------------------------------------------

QUEUE_LOG_INSERT = sa.text('INSERT INTO queue_log ("time", callid, queuename, agent, event, data1, data2, data3, data4, data5) '
                           "VALUES (:time, :callid, :queuename, :agent, :event, :d1, :d2, :d3, :d4, :d5)")


def qlog(conn, callid, *, at, queue, event, agent="NONE", data=()):
    """One queue log row as Asterisk writes it (time in UTC, the event's fields split into data1..data5)."""
    fields = (list(data) + [""] * 5)[:5]
    conn.execute(QUEUE_LOG_INSERT, {"time": NOW + timedelta(seconds=at), "callid": callid, "queuename": queue,
                                    "agent": agent, "event": event, **{f"d{i}": v for i, v in enumerate(fields, 1)}})


@pytest.fixture
def abandoned(db, calls):
    """The queue call 100.2 as the queue log saw it: nobody answered, the caller hung up after 12 s at
    position 2 — though both its CDR legs say ANSWERED."""
    queue = f"extgroup_{calls['sales']}"
    with db.engine.begin() as conn:
        qlog(conn, "100.2", at=-2000, queue=queue, event="ENTERQUEUE", data=("", "0612345678", "2"))
        qlog(conn, "100.2", at=-1995, queue=queue, event="RINGNOANSWER", agent="Agent 1001", data=("5000",))
        qlog(conn, "100.2", at=-1988, queue=queue, event="ABANDON", data=("2", "2", "12"))
    return calls


def call_of(api, linkedid, query=""):
    return next(c for c in api.get("/api/cdr" + query).get_json()["calls"] if c["linkedid"] == linkedid)


def test_the_api_tells_a_queue_call_from_the_queue_log(api, abandoned):
    told = call_of(api, "100.2")
    assert {k: told[k] for k in ("outcome", "answered_by", "wait", "talk", "groups", "position", "source")} == {
        "outcome": "abandoned", "answered_by": None, "wait": 12, "talk": None, "groups": [abandoned["sales"]],
        "position": 2, "source": "queue_log"}
    assert told["disposition"] == "ANSWERED"  # CDR's, kept for old readers


def test_a_call_the_queue_log_does_not_know_keeps_the_cdr_reading(api, calls):
    told = call_of(api, "100.2")
    assert (told["source"], told["outcome"], told["answered_by"], told["wait"], told["talk"]) == ("cdr", "answered", "1002", 10, 30)
    assert [(c["linkedid"], c["outcome"]) for c in api.get("/api/cdr").get_json()["calls"] if c["linkedid"] != "100.2"] == [
        ("100.5", "busy"), ("100.4", "answered"), ("100.3", "no answer"), ("100.1", "answered")]


def test_the_queue_log_of_a_page_is_read_in_one_query(api, abandoned, db):
    statements = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", count)
    try:
        api.get("/api/cdr")
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", count)
    assert sum("FROM queue_log" in s for s in statements) == 1


def test_the_outcome_filter_takes_the_story(api, abandoned):
    assert ids(api.get("/api/cdr?outcome=abandoned")) == ["100.2"]
    assert ids(api.get("/api/cdr?outcome=answered")) == ["100.4", "100.1"]
    assert ids(api.get("/api/cdr?disposition=ANSWERED")) == ["100.4", "100.2", "100.1"]  # CDR's, as before
    response = api.get("/api/cdr?outcome=maybe")
    assert response.status_code == 400 and "outcome" in response.get_json()["errors"]


def test_the_page_says_what_happened_and_never_answered_for_a_caller_nobody_answered(app, abandoned):
    from .test_access import signed_in

    user, _ = create_user("qa", "qa", "correct horse battery")
    html = signed_in(app, user).get("/calls?range=today").get_data(as_text=True)
    row = html.split('id="call-100-2"')[1].split("</tr>")[0]
    assert "Hung up after 12 s waiting (position 2)" in row and "answered" not in row.lower()
    assert "from CDR only" not in row


def test_the_page_marks_a_group_call_read_from_cdr_alone(app, calls):
    from .test_access import signed_in

    user, _ = create_user("qa", "qa", "correct horse battery")
    html = signed_in(app, user).get("/calls?range=today").get_data(as_text=True)
    assert html.split('id="call-100-2"')[1].split("</tr>")[0].count("from CDR only") == 1
    assert html.split('id="call-100-1"')[1].split("</tr>")[0].count("from CDR only") == 0  # no group: nothing to miss


def test_a_hostile_caller_number_stays_data_in_the_call_button(app, db, two_groups):
    import html as html_lib
    import json
    import re

    from pbxweb.models import User

    from .test_access import signed_in

    hostile = '1"}, "extension": "<b>'
    with db.engine.begin() as conn:
        leg(conn, "700.1", at=-10, src=hostile, dst="1001", channel="PJSIP/provider-1")
    create_user("caller", "manager", "correct horse battery", "1001")
    page = signed_in(app, db.session.query(User).filter_by(username="caller").one()).get("/calls").get_data(as_text=True)
    values = re.search(r"hx-vals='([^']*)'", page).group(1)
    assert json.loads(html_lib.unescape(values)) == {"number": hostile} and "<b>" not in page


def test_the_export_says_the_outcome_wait_and_talk(api, abandoned):
    rows = {r["linkedid"]: r for r in csv.DictReader(io.StringIO(api.get("/calls/export.csv").get_data(as_text=True)))}
    assert {k: rows["100.2"][k] for k in ("outcome", "answered_by", "wait_s", "talk_s", "position", "source")} == {
        "outcome": "abandoned", "answered_by": "", "wait_s": "12", "talk_s": "", "position": "2", "source": "queue_log"}
    assert rows["100.4"]["outcome"] == "answered" and rows["100.4"]["source"] == "cdr"
    assert "disposition" not in rows["100.2"]


def test_statistics_count_a_caller_nobody_answered_as_missed(app, abandoned):
    from .test_access import signed_in

    user, _ = create_user("boss", "manager", "correct horse battery")
    html = signed_in(app, user).get("/calls/stats?range=today").get_data(as_text=True)
    assert "5 calls: 2 answered, 3 missed" in html


def test_a_calls_legs_are_said_in_words_and_a_queue_leg_answered_only_by_the_phone_that_took_the_call():
    from types import SimpleNamespace as Row

    from pbxweb.cdr.service import Call, describe_leg, leg_talk

    def queue_leg(phone, disposition="ANSWERED", billsec=30):
        return Row(lastapp="Queue", lastdata="extgroup_3,t,,,300", dstchannel=f"PJSIP/{phone}-0000001",
                   channel="PJSIP/provider-0000001", disposition=disposition, billsec=billsec)

    groups = {3: "Support"}
    call = Call(linkedid="1.1", legs=[], answered_by="2002")
    assert describe_leg(queue_leg("2003"), call, groups) == "queue Support → rang 2003, no answer"
    assert describe_leg(queue_leg("2002"), call, groups) == "queue Support → rang 2002, answered"
    assert (leg_talk(queue_leg("2003"), call), leg_talk(queue_leg("2002"), call)) == (None, 30)
    picked = Call(linkedid="1.2", legs=[], answered_by="2002", picked_up=True)
    assert describe_leg(queue_leg("2002"), picked, groups).endswith("no answer")
    bridge = Row(lastapp="Bridge", lastdata="PJSIP/provider-0000001", channel="PJSIP/2002-0000009", dstchannel="",
                 disposition="ANSWERED", billsec=9)
    assert describe_leg(bridge, picked, groups) == "picked up from the dashboard by 2002, answered"
    out = Row(lastapp="Dial", lastdata="PJSIP/0555123@provider,60", channel="PJSIP/2001-1", dstchannel="PJSIP/provider-2",
              disposition="ANSWERED", billsec=4)
    assert describe_leg(out, Call(linkedid="1.3", legs=[]), groups) == "out through provider to 0555123, answered"
    busy = Row(lastapp="Dial", lastdata="PJSIP/2004,25", channel="PJSIP/2001-1", dstchannel="PJSIP/2004-3",
               disposition="BUSY", billsec=0)
    assert describe_leg(busy, Call(linkedid="1.4", legs=[]), groups) == "rang 2004, busy"


def export_ids(api, query="") -> set[str]:
    return {r["linkedid"] for r in csv.DictReader(io.StringIO(api.get(f"/calls/export.csv{query}").get_data(as_text=True)))}


def test_a_call_recorded_after_an_export_is_in_the_next_export(api, db, calls):
    assert "600.1" not in export_ids(api, "?range=today")
    with db.engine.begin() as conn:
        leg(conn, "600.1", at=-5, src="0622222222", dst="1001", channel="PJSIP/provider-60")
    assert "600.1" in export_ids(api, "?range=today")


def test_a_group_renamed_after_an_export_is_named_anew_in_the_next_export(api, calls):
    def groups_of_queue_call():
        rows = csv.DictReader(io.StringIO(api.get("/calls/export.csv").get_data(as_text=True)))
        return next(r["groups"] for r in rows if r["linkedid"] == "100.2")

    assert groups_of_queue_call() == "Sales"
    assert api.patch(f"/api/groups/{calls['sales']}", json={"name": "Sales team"}).status_code == 200
    assert groups_of_queue_call() == "Sales team"


def test_an_export_of_unchanged_calls_is_read_from_the_database_once_per_worker(api, calls, monkeypatch):
    from pbxweb.cdr import service

    reads = []
    export_lines = service.export_lines
    monkeypatch.setattr(service, "export_lines", lambda *a, **k: reads.append(1) or export_lines(*a, **k))
    first, second = (api.get("/calls/export.csv?range=today").get_data() for _ in range(2))
    assert first == second and len(reads) == 1
    api.get("/calls/export.csv?range=7days")
    assert len(reads) == 2


def test_the_last_seven_days_read_a_day_at_a_time_add_up_to_the_same_figures(app, db, calls):
    from pbxweb.cdr import kept, service

    with db.engine.begin() as conn:
        for day in (1, 2, 4):
            leg(conn, f"70{day}.1", at=-day * 86400, src="1001", dst="1002", duration=30 + day, billsec=20 + day)
            leg(conn, f"70{day}.2", at=-day * 86400 + 60, src="1002", dst="1003", disposition="NO ANSWER", billsec=0)
    filters = service.parse_filters({"range": "7days"}, None)
    assert len(service.days_of(filters)) == 7
    whole = service.statistics(service.iter_calls(filters), since=filters.start)
    by_day = kept.KeptStatistics().get(filters)
    assert by_day == whole and by_day.total.calls == 6 + 5


def test_an_export_names_the_member_a_queue_log_calls_by_its_bare_name_and_follows_a_rename(api, db, calls):
    """A member row written without the number in front (by hand, or before the mapping led with it): the export
    reads the name among the phones the call rang, and is not kept past a rename."""
    queue = f"extgroup_{calls['sales']}"
    with db.engine.begin() as conn:
        qlog(conn, "100.2", at=-2000, queue=queue, event="ENTERQUEUE", data=("", "0612345678", "1"))
        qlog(conn, "100.2", at=-1990, queue=queue, event="CONNECT", agent="Agent 1002", data=("10", "100.2x", "4"))
        qlog(conn, "100.2", at=-1960, queue=queue, event="COMPLETECALLER", agent="Agent 1002", data=("10", "30", "1"))

    def answered_by():
        rows = csv.DictReader(io.StringIO(api.get("/calls/export.csv").get_data(as_text=True)))
        return next(r["answered_by"] for r in rows if r["linkedid"] == "100.2")

    assert answered_by() == "1002"
    assert api.patch("/api/extensions/1002", json={"name": "Someone Else"}).status_code == 200
    assert answered_by() == ""
