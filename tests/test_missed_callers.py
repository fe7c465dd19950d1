"""Missed callers to call back: the rules as a plain function of calls (told by the call log's own stories),
then the list, the panel and its buttons on the database, over the test AMI server, and on the real captures."""

import json
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from pbxweb.cdr.service import Leg, QueueEvent, build_call
from pbxweb.missed.service import Mark, missed_callers

T0 = datetime(2026, 11, 30, 9, 0, 0)
TRUNK = "PJSIP/provider-00000010"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _leg(linkedid, start, *, src, channel=TRUNK, dstchannel="PJSIP/1001-00000011", lastapp="Queue",
         lastdata="extgroup_1,t,,,300", disposition="ANSWERED", duration=20, billsec=20, dst="s", name="Caller"):
    return Leg(int(start * 10) + len(linkedid), linkedid, at(start), at(start + duration), src, dst, f'"{name}" <{src}>',
               channel, dstchannel, lastapp, lastdata, disposition, duration, billsec)


def _ev(linkedid, seconds, event, group=1, agent="NONE", *data):
    return QueueEvent(at(seconds), linkedid, f"extgroup_{group}", agent, event, *(list(data) + [""] * 4)[:4])


def missed(linkedid, start, number="0612345678", *, group=1, wait=12, ending="ABANDON", name="Caller",
           channel=TRUNK):
    """An outside caller who entered a group and left it unanswered after `wait` seconds."""
    legs = [_leg(linkedid, start, src=number, channel=channel, lastdata=f"extgroup_{group},t,,,300",
                 duration=wait, billsec=wait, name=name)]
    events = [_ev(linkedid, start, "ENTERQUEUE", group, "NONE", "", number, "1"),
              _ev(linkedid, start + wait, ending, group, "NONE", "1", "1", str(wait))]
    return build_call(linkedid, legs, events=events)


def answered(linkedid, start, number="0612345678", *, group=1):
    """An outside caller a member of the group answered."""
    legs = [_leg(linkedid, start, src=number, lastdata=f"extgroup_{group},t,,,300", duration=40, billsec=40)]
    events = [_ev(linkedid, start, "ENTERQUEUE", group, "NONE", "", number, "1"),
              _ev(linkedid, start + 5, "CONNECT", group, "1001 Agent", "5", "17.1", "5"),
              _ev(linkedid, start + 40, "COMPLETECALLER", group, "1001 Agent", "5", "35", "1")]
    return build_call(linkedid, legs, events=events, names={})


def dialled_out(linkedid, start, number="0612345678", *, answered=True):
    """A phone (or click-to-call) dialling the number through the outside line (prefix 0, as the dialplan): one
    leg, as the lab's captures show both. A click-to-call's billsec counts from the user's phone answering, so
    one the other side never answered has seconds too: only its disposition says so."""
    legs = [_leg(linkedid, start, src="1001", dst="0" + number, channel="PJSIP/1001-00000020",
                 dstchannel="PJSIP/provider-00000021", lastapp="Dial", lastdata=f"PJSIP/{number}@provider,60",
                 disposition="ANSWERED" if answered else "NO ANSWER", billsec=15 if answered else 6)]
    return build_call(linkedid, legs)


def rows(calls, marks=()):
    return [(r.group, r.number, r.tries) for r in missed_callers(calls, marks)]


def test_an_outside_caller_who_hung_up_waiting_is_listed_for_the_group():
    (row,) = missed_callers([missed("1.1", 0, wait=12)])
    assert (row.group, row.number, row.name, row.tries, row.wait_total, row.outcome) == (1, "0612345678", "Caller", 1, 12, "abandoned")
    assert row.last_call == "1.1" and row.dialable


def test_an_abandoned_caller_who_later_got_through_is_gone():
    assert rows([missed("1.1", 0), answered("1.2", 600)]) == []


def test_a_caller_answered_in_another_group_later_is_gone_too():
    assert rows([missed("1.1", 0, group=1), answered("1.2", 600, group=2)]) == []


def test_an_answered_call_back_clears_the_caller():
    assert rows([missed("1.1", 0), dialled_out("1.2", 600)]) == []


def test_a_call_back_nobody_answered_leaves_the_caller_listed():
    assert rows([missed("1.1", 0), dialled_out("1.2", 600, answered=False)]) == [(1, "0612345678", 1)]


def test_two_tries_are_counted_with_their_waits_added_up_and_the_longest_kept():
    (row,) = missed_callers([missed("1.1", 0, wait=30), missed("1.2", 300, wait=90)])
    assert (row.tries, row.wait_total, row.wait_longest, row.calls, row.last_call) == (2, 120, 90, ["1.2", "1.1"], "1.2")
    assert (row.first, row.last) == (at(0), at(300))


def test_a_try_after_being_reached_counts_alone():
    calls = [missed("1.1", 0), answered("1.2", 100), missed("1.3", 200)]
    (row,) = missed_callers(calls)
    assert (row.tries, row.calls) == (1, ["1.3"])


def test_a_caller_who_timed_out_is_listed():
    (row,) = missed_callers([missed("1.1", 0, ending="EXITWITHTIMEOUT", wait=300)])
    assert row.outcome == "timeout"


def test_a_caller_who_found_nobody_to_take_calls_is_listed():
    (row,) = missed_callers([missed("1.1", 0, ending="EXITEMPTY", wait=3)])
    assert row.outcome == "no agents"


def test_a_caller_who_went_to_voicemail_is_listed():
    call = missed("1.1", 0, ending="EXITWITHTIMEOUT", wait=60)
    call = build_call("1.1", call.legs + [_leg("1.1", 61, src="0612345678", lastapp="VoiceMail", lastdata="1001@default,u",
                                               dstchannel="")], events=[
        _ev("1.1", 0, "ENTERQUEUE", 1, "NONE", "", "0612345678", "1"), _ev("1.1", 60, "EXITWITHTIMEOUT", 1, "NONE", "1", "1", "60")])
    (row,) = missed_callers([call])
    assert row.outcome == "voicemail"


def test_a_caller_redirected_to_another_group_is_missed_where_the_call_ended():
    legs = [_leg("1.1", 0, src="0612345678", duration=30, billsec=30)]
    events = [_ev("1.1", 0, "ENTERQUEUE", 1), _ev("1.1", 5, "ABANDON", 1, "NONE", "1", "1", "5"),
              _ev("1.1", 6, "ENTERQUEUE", 2), _ev("1.1", 30, "ABANDON", 2, "NONE", "1", "1", "24")]
    assert rows([build_call("1.1", legs, events=events)]) == [(2, "0612345678", 1)]


def test_internal_calls_are_never_listed():
    assert rows([missed("1.1", 0, number="1002", channel="PJSIP/1002-00000030")]) == []


def test_a_caller_missed_in_two_groups_is_a_row_in_each_newest_first():
    assert rows([missed("1.1", 0, group=1), missed("1.2", 60, group=2)]) == [(2, "0612345678", 1), (1, "0612345678", 1)]


def test_a_withheld_number_is_listed_but_cannot_be_dialled():
    (row,) = missed_callers([missed("1.1", 0, number="anonymous")])
    assert not row.dialable and row.shown_number == "Withheld number"


def test_done_clears_the_tries_it_saw_but_not_a_newer_one():
    done = Mark(1, "0612345678", "done", "jane", at(100), until=at(0))
    assert rows([missed("1.1", 0)], [done]) == []
    assert rows([missed("1.1", 0), missed("1.2", 200)], [done]) == [(1, "0612345678", 1)]


def test_who_is_calling_back_shows_until_the_caller_tries_again():
    calling = Mark(1, "0612345678", "callback", "jane", at(100), until=at(0))
    (row,) = missed_callers([missed("1.1", 0)], [calling])
    assert row.calling_back == calling
    (row,) = missed_callers([missed("1.1", 0), missed("1.2", 200)], [calling])
    assert row.calling_back is None


# --- on the database ---------------------------------------------------------------------------------------

from .test_cdr import NOW, leg, qlog  # noqa: E402 — the call log's own way of writing records


def write_missed(conn, linkedid, group, *, at_s, number="0612345678", name="Caller", wait=12):
    leg(conn, linkedid, at=at_s, src=number, dst="s", channel="PJSIP/provider-00000010", dstchannel="PJSIP/1001-00000011",
        lastapp="Queue", lastdata=f"extgroup_{group},t,,,300", duration=wait, billsec=wait, clid=f'"{name}" <{number}>')
    qlog(conn, linkedid, at=at_s, queue=f"extgroup_{group}", event="ENTERQUEUE", data=("", number, "1"))
    qlog(conn, linkedid, at=at_s + wait, queue=f"extgroup_{group}", event="ABANDON", data=("1", "1", str(wait)))


@pytest.fixture
def missed_calls(db, two_groups):
    """0612345678 hung up twice in Sales; 0687654321 once in Support; 0611111111 in Sales, answered later."""
    sales, support = two_groups["sales"], two_groups["support"]
    with db.engine.begin() as conn:
        write_missed(conn, "300.1", sales, at_s=-900, wait=30)
        write_missed(conn, "300.2", sales, at_s=-600, wait=45)
        write_missed(conn, "300.3", support, at_s=-500, number="0687654321", name="Support Caller")
        write_missed(conn, "300.4", sales, at_s=-400, number="0611111111")
        leg(conn, "300.5", at=-200, src="0611111111", dst="s", channel="PJSIP/provider-00000012",
            dstchannel="PJSIP/1002-00000013", lastapp="Queue", lastdata=f"extgroup_{sales},t,,,300", duration=60, billsec=60)
        qlog(conn, "300.5", at=-200, queue=f"extgroup_{sales}", event="ENTERQUEUE", data=("", "0611111111", "1"))
        qlog(conn, "300.5", at=-195, queue=f"extgroup_{sales}", event="CONNECT", agent="1002 Agent 1002", data=("5", "x", "5"))
    return two_groups


def as_agent(client, number):
    from pbxweb.auth.service import create_token, create_user

    from .conftest import Api

    create_user(f"agent{number}", "agent", extension_number=number)
    return Api(client, create_token(f"agent{number}"))


def listed(response) -> list[tuple]:
    assert response.status_code == 200, response.get_json()
    return [(r["number"], r["group"], r["tries"]) for r in response.get_json()["missed_calls"]]


def test_the_api_lists_each_groups_missed_callers_newest_first(api, missed_calls):
    body = api.get("/api/missed-calls").get_json()
    assert [(r["number"], r["group_name"], r["tries"], r["wait_total"], r["wait_longest"]) for r in body["missed_calls"]] == [
        ("0687654321", "Support", 1, 12, 12), ("0612345678", "Sales", 2, 75, 45)]
    assert body["missed_calls"][1]["id"] == "300.2" and body["missed_calls"][1]["calling_back"] is None


def test_an_agent_sees_only_the_missed_callers_of_its_groups(client, missed_calls):
    assert listed(as_agent(client, "1003").get("/api/missed-calls")) == [("0687654321", missed_calls["support"], 1)]
    other = as_agent(client, "1001").get(f"/api/missed-calls?group={missed_calls['support']}")
    assert other.status_code == 404


def test_one_group_is_asked_by_its_id(api, missed_calls):
    assert listed(api.get(f"/api/missed-calls?group={missed_calls['sales']}")) == [("0612345678", missed_calls["sales"], 2)]


def test_a_missed_call_older_than_the_window_is_not_listed(api, app, missed_calls, db):
    with db.engine.begin() as conn:
        write_missed(conn, "301.1", missed_calls["sales"], at_s=-8 * 86400, number="0622222222")
    assert "0622222222" not in [n for n, _, _ in listed(api.get("/api/missed-calls"))]
    app.config["PBX_MISSED_CALL_DAYS"] = 9
    assert "0622222222" in [n for n, _, _ in listed(api.get("/api/missed-calls"))]


def marks(db) -> list[tuple]:
    from pbxweb.models import MissedCallMark, User

    query = sa.select(MissedCallMark.kind, MissedCallMark.number, User.username).join(User).order_by(MissedCallMark.id)
    return [tuple(r) for r in db.session.execute(query)]


@pytest.mark.parametrize("query, field", [("group=abc", "group"), ("group=0", "group")])
def test_a_bad_group_is_a_400_naming_it(api, missed_calls, query, field):
    response = api.get(f"/api/missed-calls?{query}")
    assert response.status_code == 400 and field in response.get_json()["errors"]


@pytest.fixture
def ami(app, ami_server):
    app.config.update(AMI_HOST="127.0.0.1", AMI_PORT=ami_server.port, AMI_USERNAME=ami_server.username,
                      AMI_SECRET=ami_server.secret)
    ami_server.answer_from("queue-pickup-bridge.ami", "originate-1")
    return ami_server


def test_calling_back_dials_the_caller_through_the_outside_line_and_the_row_shows_who(client, missed_calls, ami, db):
    agent = as_agent(client, "1001")
    response = agent.post("/api/missed-calls/300.2/callback")
    assert response.status_code == 202, response.get_json()
    (originate,) = ami.actions("Originate")
    assert (originate["Channel"], originate["Exten"], originate["Context"]) == ("PJSIP/1001", "00612345678", "from-internal")
    (row,) = [r for r in agent.get("/api/missed-calls").get_json()["missed_calls"] if r["number"] == "0612345678"]
    assert row["calling_back"]["by"] == "agent1001" and row["calling_back"]["at"]
    assert marks(db) == [("callback", "0612345678", "agent1001")]


def test_an_older_try_names_the_same_row(client, missed_calls, ami):
    assert as_agent(client, "1001").post("/api/missed-calls/300.1/callback").status_code == 202


def test_a_second_person_calling_back_the_same_caller_is_told_who_already_is(client, missed_calls, ami, db):
    assert as_agent(client, "1001").post("/api/missed-calls/300.2/callback").status_code == 202
    second = as_agent(client, "1002").post("/api/missed-calls/300.2/callback")
    assert second.status_code == 409 and "agent1001" in second.get_json()["errors"]["_"]
    assert len(ami.actions("Originate")) == 1 and marks(db) == [("callback", "0612345678", "agent1001")]


def test_after_the_hold_someone_else_may_call_back_and_the_row_shows_them(client, missed_calls, ami, db):
    from pbxweb.models import MissedCallMark

    assert as_agent(client, "1001").post("/api/missed-calls/300.2/callback").status_code == 202
    db.session.execute(sa.update(MissedCallMark).values(at=MissedCallMark.at - timedelta(minutes=3)))
    db.session.commit()
    second = as_agent(client, "1002")
    assert second.post("/api/missed-calls/300.2/callback").status_code == 202
    (row,) = [r for r in second.get("/api/missed-calls").get_json()["missed_calls"] if r["number"] == "0612345678"]
    assert row["calling_back"]["by"] == "agent1002" and len(ami.actions("Originate")) == 2


def test_call_backs_share_click_to_calls_rate_limit(client, missed_calls, ami):
    agent = as_agent(client, "1001")
    assert [agent.post("/api/calls", json={"number": "1002"}).status_code for _ in range(6)] == [202] * 6
    response = agent.post("/api/missed-calls/300.2/callback")
    assert response.status_code == 429


def test_a_call_back_that_sent_nothing_leaves_no_mark(client, missed_calls, app, db):
    from .pgcluster import free_port

    app.config.update(AMI_HOST="127.0.0.1", AMI_PORT=free_port(), AMI_USERNAME="x", AMI_SECRET="y")  # nobody listens
    response = as_agent(client, "1001").post("/api/missed-calls/300.2/callback")
    assert response.status_code == 503 and marks(db) == []


def test_a_withheld_caller_cannot_be_called_back(api, db, two_groups):
    with db.engine.begin() as conn:
        write_missed(conn, "302.1", two_groups["sales"], at_s=-100, number="anonymous")
    response = api.post("/api/missed-calls/302.1/callback")
    assert response.status_code == 400 and "number" in response.get_json()["errors"] and marks(db) == []


def test_an_unknown_or_reached_call_is_not_found_and_writes_nothing(api, missed_calls, db):
    for linkedid in ("999.9", "300.4", "300.3x"):
        assert api.post(f"/api/missed-calls/{linkedid}/done").status_code == 404
    assert marks(db) == []


def test_an_agent_cannot_act_on_a_caller_of_another_group(client, missed_calls, db):
    assert as_agent(client, "1003").post("/api/missed-calls/300.2/done").status_code == 404 and marks(db) == []


def test_done_clears_the_row_and_keeps_who_and_when(client, missed_calls, db):
    from pbxweb.models import MissedCallMark

    agent = as_agent(client, "1001")
    response = agent.post("/api/missed-calls/300.2/done")
    assert response.status_code == 200 and response.get_json()["done"]["by"] == "agent1001"
    assert "0612345678" not in [n for n, _, _ in listed(agent.get("/api/missed-calls"))]
    mark = db.session.scalars(sa.select(MissedCallMark)).one()
    assert (mark.kind, mark.user.username, mark.until) == ("done", "agent1001", NOW + timedelta(seconds=-600))
    assert mark.at is not None


def test_done_on_an_older_try_leaves_a_newer_one_listed(api, missed_calls):
    assert api.post("/api/missed-calls/300.1/done").status_code == 200
    assert ("0612345678", missed_calls["sales"], 1) in listed(api.get("/api/missed-calls"))


def test_a_caller_who_tries_again_after_done_is_back(api, missed_calls, db):
    api.post("/api/missed-calls/300.2/done")
    with db.engine.begin() as conn:
        write_missed(conn, "300.9", missed_calls["sales"], at_s=-50)
    assert ("0612345678", missed_calls["sales"], 1) in listed(api.get("/api/missed-calls"))


# --- the panel ---------------------------------------------------------------------------------------------


def signed_in_as(app, db, username, role, extension=None):
    from pbxweb.auth.service import create_user
    from pbxweb.models import User

    from .test_access import signed_in

    create_user(username, role, "correct horse battery", extension)
    return signed_in(app, db.session.query(User).filter_by(username=username).one())


def test_the_dashboard_loads_the_missed_callers_panel(app, db, missed_calls):
    page = signed_in_as(app, db, "jane", "manager", "1001").get("/").get_data(as_text=True)
    assert 'id="missed-callers"' in page and 'hx-get="/missed"' in page and "load, every 20s" in page


def test_the_panel_lists_the_callers_and_keeps_a_hostile_name_as_text(app, db, two_groups):
    hostile = '<img src=x onerror=alert(1)>"'
    with db.engine.begin() as conn:
        write_missed(conn, "303.1", two_groups["sales"], at_s=-100, name=hostile)
        write_missed(conn, "303.2", two_groups["sales"], at_s=-90, number="anonymous")
    html = signed_in_as(app, db, "jane", "manager", "1001").get("/missed").get_data(as_text=True)
    assert "<img" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert html.count('class="callback') == 1 and "Call back 0612345678" in html and html.count(">Done<") == 2
    assert "Withheld number" in html and "anonymous" not in html
    assert "every 20s" in html and "(2)" in html


def test_the_panel_shows_the_newest_fifty_and_counts_the_rest(app, db, two_groups):
    with db.engine.begin() as conn:
        for index in range(52):
            write_missed(conn, f"304.{index}", two_groups["sales"], at_s=-1000 + index, number=f"06100000{index:02d}")
    html = signed_in_as(app, db, "jane", "manager").get("/missed").get_data(as_text=True)
    assert html.count('<li class="missed') == 50 and "(52)" in html and "and 2 more" in html
    assert "0610000051" in html and "0610000000" not in html


def test_the_panel_shows_no_call_back_button_to_someone_without_a_phone(app, db, missed_calls):
    html = signed_in_as(app, db, "jane", "manager").get("/missed").get_data(as_text=True)
    assert 'class="callback' not in html and ">Done<" in html


def test_the_panels_buttons_answer_with_the_panel_and_who_is_calling_back(app, db, missed_calls, ami):
    browser = signed_in_as(app, db, "jane", "manager", "1001")
    html = browser.post("/missed/300.2/callback", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "Your phone (1001) is ringing" in html and "jane is calling back" in html
    refused = signed_in_as(app, db, "joe", "manager", "1002").post("/missed/300.2/callback")
    assert refused.status_code == 409 and "jane is already calling 0612345678 back" in refused.get_data(as_text=True)
    html = browser.post("/missed/300.2/done").get_data(as_text=True)
    assert "0612345678 marked done." in html and "jane is calling back" not in html


# --- on what a real Asterisk wrote -------------------------------------------------------------------------

from .test_call_captures import CALLS, lab, rows_of  # noqa: E402,F401 — the lab's PBX and every captured call


def test_the_captured_calls_leave_the_abandoned_the_timed_out_and_the_redirected_caller_to_call_back(lab, app):
    app.config["PBX_MISSED_CALL_DAYS"] = 36500  # the captures are as old as they are
    rows = lab.get("/api/missed-calls").get_json()["missed_calls"]
    assert sorted((r["number"], r["group_name"], r["outcome"]) for r in rows) == [
        ("0612340002", "Support", "abandoned"), ("0612340003", "Short", "timeout"), ("0612340005", "Back office", "abandoned")]


def load(db, cdr_rows=(), queue_log_rows=()):
    """Captured rows into the tables beside the other captures, their ids moved past those there (each capture's
    session counted from 1), in the order Asterisk wrote them."""
    from pbxweb.realtime.schema import cdr as cdr_t, queue_log as queue_log_t

    with db.engine.begin() as conn:
        for table, rows in ((cdr_t, cdr_rows), (queue_log_t, queue_log_rows)):
            if rows:
                past = conn.execute(sa.select(sa.func.coalesce(sa.func.max(table.c.id), 0))).scalar_one()
                conn.execute(table.insert(), [{**row, "id": past + int(row["id"])} for row in rows])


def test_a_call_back_from_the_row_clears_the_caller_once_asterisk_wrote_it_answered(lab, app, db):
    """tests/fixtures/asterisk/calls/missed-callback: 0612340006 hung up twice in Support, then the manager of
    2002 clicked Call back twice (Originate to 2002, then Dial out through the trunk): once 2002 hung up while
    the provider rang (its row: NO ANSWER, billsec 1 — timed from 2002 answering), then the provider answered
    (ANSWERED)."""

    app.config["PBX_MISSED_CALL_DAYS"] = 36500  # the capture is as old as it is
    folder = CALLS / "missed-callback"
    notes = json.loads((folder / "call.json").read_text())
    cdr = rows_of(folder / "cdr.csv")
    unanswered, answered = (next(r for r in cdr if r["channel"] == notes["call_backs"][k]) for k in ("unanswered", "answered"))
    load(db, [r for r in cdr if r["linkedid"] in notes["missed"]["calls"]], rows_of(folder / "queue_log.csv"))

    def listed():
        return [(r["group_name"], r["tries"], r["wait_total"], r["outcome"], r["calls"])
                for r in lab.get("/api/missed-calls").get_json()["missed_calls"] if r["number"] == "0612340006"]

    tried = [("Support", 2, notes["missed"]["wait_total"], "abandoned", notes["missed"]["calls"])]
    assert listed() == tried
    load(db, [unanswered])
    assert listed() == tried  # the provider never answered: not reached
    load(db, [answered])
    assert listed() == []


def test_a_captured_caller_who_timed_out_is_listed(lab, app, db):
    app.config["PBX_MISSED_CALL_DAYS"] = 36500
    folder = CALLS / "missed-timeout"
    load(db, rows_of(folder / "cdr.csv"), rows_of(folder / "queue_log.csv"))
    assert [(r["group_name"], r["tries"], r["wait_total"], r["outcome"]) for r in lab.get("/api/missed-calls").get_json()[
        "missed_calls"] if r["number"] == "0612340007"] == [("Short", 1, 5, "timeout")]
