"""The group report (service level) from queue log rows and CDR legs written as Asterisk writes them: one
day of a Sales group with every way a caller's stay can end, and a Support group a caller was sent to."""

import csv
import io
from datetime import datetime, timedelta

import pytest

from pbxweb.auth.service import create_token, create_user
from pbxweb.cdr.report import paused_seconds

from .conftest import Api
from .test_cdr import leg, qlog


def queue_call(conn, linkedid, *, at, queue, rang=("1001", "1002"), seconds=40):
    """The CDR legs of a queue call as the shipped dialplan leaves them: one per member rung, all ANSWERED."""
    for n, number in enumerate(rang):
        leg(conn, linkedid, at=at, src="0612345678", dst="s", channel=f"PJSIP/provider-{linkedid}",
            dstchannel=f"PJSIP/{number}-{n:08x}", lastapp="Queue", lastdata=f"{queue},t,,,60", duration=seconds, billsec=seconds,
            sequence=n + 1)


@pytest.fixture
def day(db, two_groups):
    sales, support = f"extgroup_{two_groups['sales']}", f"extgroup_{two_groups['support']}"
    with db.engine.begin() as conn:
        def stay(callid, at, *events, queue=sales):
            qlog(conn, callid, at=at, queue=queue, event="ENTERQUEUE", data=("", "0612345678", "1"))
            for offset, event, agent, data in events:
                qlog(conn, callid, at=at + offset, queue=queue, event=event, agent=agent, data=data)

        queue_call(conn, "800.1", at=-900, queue=sales)  # answered by 1002 after 7 s; 1001 let it ring
        stay("800.1", -900, (5, "RINGNOANSWER", "Agent 1001", ("5000",)), (7, "CONNECT", "Agent 1002", ("7", "x", "7")),
             (37, "COMPLETECALLER", "Agent 1002", ("7", "30", "1")))
        queue_call(conn, "800.2", at=-800, queue=sales)  # answered by 1001 after 25 s: outside the service level
        stay("800.2", -800, (25, "CONNECT", "Agent 1001", ("25", "x", "25")), (85, "COMPLETEAGENT", "Agent 1001", ("25", "60", "1")))
        queue_call(conn, "800.3", at=-700, queue=sales, seconds=12)  # hung up after 12 s at position 2
        stay("800.3", -700, (12, "ABANDON", "NONE", ("2", "2", "12")))
        queue_call(conn, "800.4", at=-600, queue=sales, seconds=40)  # hung up after 40 s
        stay("800.4", -600, (40, "ABANDON", "NONE", ("1", "1", "40")))
        queue_call(conn, "800.5", at=-500, queue=sales, seconds=60)  # timed out
        stay("800.5", -500, (60, "EXITWITHTIMEOUT", "NONE", ("1", "1", "60")))
        queue_call(conn, "800.6", at=-400, queue=sales, seconds=30)  # redirected to Support after 5 s, 1003 answered
        stay("800.6", -400, (5, "ABANDON", "NONE", ("1", "1", "5")))
        stay("800.6", -394, (3, "CONNECT", "Agent 1003", ("3", "x", "3")), (23, "COMPLETEAGENT", "Agent 1003", ("3", "20", "1")),
             queue=support)
        queue_call(conn, "800.7", at=-300, queue=sales, seconds=9)  # picked up from the dashboard by 1002 at 9 s
        stay("800.7", -300, (4, "RINGNOANSWER", "Agent 1001", ("4000",)))
        leg(conn, "800.7", at=-304, src="1002", dst="s", channel="PJSIP/1002-00000099", dstchannel="", lastapp="Bridge",
            lastdata="PJSIP/provider-800.7", duration=48, billsec=35, uniqueid="800.9", sequence=9)
        for queue, event in ((sales, "PAUSE"), ("NONE", "PAUSEALL"), (support, "PAUSE")):  # 1001 pauses 5 min
            qlog(conn, "NONE", at=-1000, queue=queue, event=event, agent="Agent 1001", data=("lunch",))
        for queue, event in ((sales, "UNPAUSE"), ("NONE", "UNPAUSEALL"), (support, "UNPAUSE")):
            qlog(conn, "NONE", at=-700, queue=queue, event=event, agent="Agent 1001", data=("",))
    return two_groups


def group(body, group_id):
    return next(g for g in body["groups"] if g["group"] == group_id)


def test_a_group_counts_callers_offered_answered_hung_up_and_the_abandon_rate(api, day):
    sales = group(api.get("/api/calls/stats").get_json(), day["sales"])
    assert {k: sales[k] for k in ("name", "offered", "answered", "picked_up", "abandoned", "abandon_rate", "redirected",
                                  "timed_out")} == {
        "name": "Sales", "offered": 7, "answered": 3, "picked_up": 1, "abandoned": 2, "abandon_rate": 28.6,
        "redirected": 1, "timed_out": 1}


def test_service_level_is_counted_as_asterisk_counts_it(api, day):
    """SL: members' answers within 20 s of 2 (7 s yes, 25 s no); SL2 adds the callers Asterisk counts as
    abandoned — 3 ABANDONs (the redirect among them) and the timeout —, 2 within 20 s (12 s, 5 s):
    (1 + 2) / (2 + 4). The pick-up is in neither."""
    body = api.get("/api/calls/stats").get_json()
    sales = group(body, day["sales"])
    assert body["service_level_seconds"] == 20
    assert (sales["service_level"], sales["service_level_2"]) == (50.0, 50.0)
    assert sales["asterisk"] == {"answered": 2, "answered_within": 1, "abandoned": 4, "abandoned_within": 2}


def test_the_service_level_threshold_is_the_sites_setting(api, app, day):
    app.config["PBX_SERVICE_LEVEL_SECONDS"] = 30
    sales = group(api.get("/api/calls/stats").get_json(), day["sales"])
    assert (sales["service_level"], sales["service_level_2"]) == (100.0, 66.7)


def test_waits_and_talk_of_a_group(api, day):
    body = api.get("/api/calls/stats").get_json()
    sales, support = group(body, day["sales"]), group(body, day["support"])
    # 7, 25, 12, 40, 60, 5 and the pick-up's 9: every caller's wait until answered or gone; talk 30, 60 and
    # the pick-up's 35
    assert (sales["wait_average"], sales["wait_longest"], sales["talk_average"]) == (23, 60, 42)
    assert {k: support[k] for k in ("offered", "answered", "service_level", "wait_average", "talk_average")} == {
        "offered": 1, "answered": 1, "service_level": 100.0, "wait_average": 3, "talk_average": 20}


def test_agents_answered_talk_rings_let_pass_and_time_paused(api, day):
    agents = {a["agent"]: a for a in api.get("/api/calls/stats").get_json()["agents"]}
    assert agents["1001"] == {"agent": "1001", "answered": 1, "talk": 60, "rang_unanswered": 2, "paused": 300}
    assert agents["1002"] == {"agent": "1002", "answered": 2, "talk": 30 + 35, "rang_unanswered": 0, "paused": 0}
    assert agents["1003"]["answered"] == 1 and agents["1003"]["talk"] == 20


def test_the_report_agrees_with_the_call_log(api, day):
    calls = [c for c in api.get("/api/cdr").get_json()["calls"] if day["sales"] in c["groups"]]
    sales = group(api.get("/api/calls/stats").get_json(), day["sales"])
    outcomes = [c["steps"][0]["outcome"] for c in calls]
    assert len(calls) == sales["offered"]
    assert (outcomes.count("answered"), outcomes.count("abandoned"), outcomes.count("redirected"), outcomes.count("timeout")) == (
        sales["answered"], sales["abandoned"], sales["redirected"], sales["timed_out"])


def test_an_agent_sees_its_own_groups_and_itself(client, day):
    create_user("agent1003", "agent", "correct horse battery", "1003")
    body = Api(client, create_token("agent1003")).get("/api/calls/stats").get_json()
    assert [g["group"] for g in body["groups"]] == [day["support"]]
    assert [a["agent"] for a in body["agents"]] == ["1003"]


@pytest.mark.parametrize("query,field", [("from=yesterday", "from"), ("to=2026-13-01", "to"),
                                         ("from=2026-11-27&to=2026-11-01", "to")])
def test_a_bad_period_is_a_400_naming_it(api, day, query, field):
    response = api.get("/api/calls/stats?" + query)
    assert response.status_code == 400 and field in response.get_json()["errors"]


def test_the_stats_page_shows_the_group_report_and_its_csv_is_spreadsheet_safe(app, api, day):
    from .test_access import signed_in

    api.patch(f"/api/groups/{day['sales']}", json={"name": "=HYPERLINK(\"x\")"})
    user, _ = create_user("boss", "manager", "correct horse battery")
    browser = signed_in(app, user)
    html = browser.get("/calls/stats").get_data(as_text=True)
    assert "50.0 %" in html and "=HYPERLINK(&#34;x&#34;)" in html
    rows = list(csv.DictReader(io.StringIO(browser.get("/calls/stats/groups.csv").get_data(as_text=True))))
    sales = next(r for r in rows if r["offered"] == "7")
    assert sales["group"] == "'=HYPERLINK(\"x\")" and sales["service_level_pct"] == "50.0" and sales["within_s"] == "20"
    agents = list(csv.DictReader(io.StringIO(browser.get("/calls/stats/agents.csv").get_data(as_text=True))))
    assert {r["agent"]: r["paused_s"] for r in agents}["1001"] == "300"


T = datetime(2026, 11, 30, 9, 0)


def at(minutes):
    return T + timedelta(minutes=minutes)


def test_an_agent_paused_in_two_queues_at_once_is_paused_once():
    rows = [("1001", "q1", "PAUSE", at(0)), ("1001", "q2", "PAUSE", at(1)), ("1001", "q1", "UNPAUSE", at(10)),
            ("1001", "q2", "UNPAUSE", at(12))]
    assert paused_seconds(rows, at(-60), at(60)) == {"1001": 12 * 60}


def test_a_pause_from_before_the_period_counts_from_its_start_and_one_never_lifted_to_its_end():
    rows = [("1001", "q1", "UNPAUSE", at(5)), ("1002", "q1", "PAUSE", at(50))]
    assert paused_seconds(rows, at(0), at(60)) == {"1001": 5 * 60, "1002": 10 * 60}
