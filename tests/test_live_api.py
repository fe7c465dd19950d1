"""The read API over the live state, and the fan-out of changes to subscribers."""

from datetime import datetime, timedelta, timezone

import gevent
import pytest
import sqlalchemy as sa

from pbxweb.live import hub, store
from pbxweb.live.state import LiveState, WaitingCall, apply_event
from pbxweb.ami.protocol import Message

from .conftest import Api, token_for


@pytest.fixture
def site(db, two_groups):
    """A caller waiting in each of the two groups; 1001 registered; AMI live."""
    sales, support = two_groups["sales"], two_groups["support"]
    state = LiveState()
    joined = datetime.now(timezone.utc).timestamp() - 42
    for uniqueid, group in (("1.1", sales), ("1.2", support)):
        state.waiting[uniqueid] = WaitingCall(uniqueid, f"PJSIP/trunk-{uniqueid}", uniqueid, "0612345678",
                                              "Caller", f"extgroup_{group}", 1, joined)
    apply_event(state, Message([("Event", "ContactStatus"), ("URI", "sip:1001@10.0.0.5:5060"),
                                ("ContactStatus", "Reachable"), ("AOR", "1001")]))
    with db.engine.begin() as conn:
        store.replace_all(conn, state)
        store.set_ami_status(conn, connected=True, since=store.now(), asterisk_version="22.10.1")
    return two_groups


def agent_api(client, db, number):
    from pbxweb.auth.service import create_token, create_user

    create_user(f"agent{number}", "agent", extension_number=number)
    return Api(client, create_token(f"agent{number}"))


def test_waiting_calls_show_who_waits_where_and_for_how_long(api, site):
    body = api.get("/api/waiting-calls").get_json()
    assert body["stale"] is False
    calls = {c["uniqueid"]: c for c in body["waiting_calls"]}
    assert calls["1.1"]["group_name"] == "Sales" and calls["1.1"]["group_id"] == site["sales"]
    assert calls["1.1"]["caller_number"] == "0612345678" and calls["1.1"]["position"] == 1
    assert 41 <= calls["1.1"]["seconds_waiting"] <= 60


def test_extension_status_lists_every_extension_offline_unless_asterisk_said_otherwise(api, site):
    statuses = {e["number"]: e for e in api.get("/api/extensions/status").get_json()["extensions"]}
    assert statuses["1001"]["registration"] == "registered" and statuses["1001"]["contact_uri"] == "sip:1001@10.0.0.5:5060"
    assert statuses["1002"]["registration"] == "offline"


def test_an_agent_sees_only_the_groups_of_its_own_extension(client, db, site):
    agent = agent_api(client, db, "1003")
    calls = agent.get("/api/waiting-calls").get_json()["waiting_calls"]
    assert [c["group_name"] for c in calls] == ["Support"]
    assert [e["number"] for e in agent.get("/api/extensions/status").get_json()["extensions"]] == ["1003"]


def test_an_agent_without_an_extension_sees_nothing(client, db, site):
    token = token_for("agent", "lonely")
    lonely = Api(client, token)
    assert lonely.get("/api/waiting-calls").get_json()["waiting_calls"] == []


def test_an_agent_may_read_live_state_but_not_configuration(client, db, site):
    agent = agent_api(client, db, "1001")
    assert agent.get("/api/waiting-calls").status_code == 200
    assert agent.get("/api/extensions").status_code == 403


def test_a_listener_that_stopped_beating_makes_the_state_stale(api, site, db):
    with db.engine.begin() as conn:
        conn.execute(sa.text("UPDATE pbx_ami_status SET heartbeat_at = :t"),
                     {"t": datetime.now(timezone.utc) - timedelta(minutes=5)})
    body = api.get("/api/ami").get_json()
    assert body["connected"] is False and body["stale"] is True
    assert api.get("/api/extensions/status").get_json()["stale"] is True


def test_without_any_listener_the_api_says_so(api):
    body = api.get("/api/ami").get_json()
    assert body == {**body, "connected": False, "stale": True}
    assert "no listener" in body["last_error"]


def test_the_hub_gives_each_subscriber_every_message():
    local = hub.Hub(maxsize=4)
    first, second = local.subscribe(), local.subscribe()
    local.publish({"waiting": ["1.1"]})
    assert first.get_nowait() == second.get_nowait() == {"waiting": ["1.1"]}
    local.unsubscribe(second)
    local.publish({"cdr": 1})
    assert first.get_nowait() == {"cdr": 1} and second.empty()


def test_a_subscriber_that_falls_behind_is_told_to_reload_everything():
    local = hub.Hub(maxsize=2)
    queue = local.subscribe()
    for n in range(5):
        local.publish({"cdr": n})
    assert [queue.get_nowait() for _ in range(queue.qsize())][-1] == {"replace": True}


@pytest.fixture
def notified(db):
    """This process LISTENing as a web worker does: the queue its hub hands each message to, once listening."""
    stop = gevent.event.Event()
    listening = gevent.spawn(hub.listen_forever, db.engine, stop)
    queue = hub.hub.subscribe()
    gevent.sleep(0.3)
    yield queue
    hub.hub.unsubscribe(queue)
    stop.set()
    listening.join(timeout=3)


def test_a_committed_change_reaches_every_process_through_notify_and_a_rollback_none(db, notified):
    with hub.announcing(db.engine) as (conn, announce):
        announce({"waiting": ["9.9"]})
    with pytest.raises(RuntimeError):
        with hub.announcing(db.engine) as (conn, announce):
            announce({"waiting": ["rolled back"]})
            raise RuntimeError
    assert notified.get(timeout=3) == {"waiting": ["9.9"]}
    gevent.sleep(0.3)
    assert notified.empty()


def test_changes_that_arrive_together_reach_each_dashboard_as_one_message(db, notified):
    with hub.announcing(db.engine) as (conn, announce):
        announce({"extensions": ["1002"], "waiting": [], "cdr": 0})
        announce({"extensions": ["1001", "1002"], "waiting": ["9.9"], "cdr": 1})
        announce({"counts": True})
        announce({"ami": False})
    assert notified.get(timeout=3) == {"extensions": ["1001", "1002"], "waiting": ["9.9"], "cdr": 1, "counts": True,
                                       "ami": False}
    gevent.sleep(0.3)
    assert notified.empty()


def test_a_burst_of_changes_too_long_for_one_notify_arrives_whole(db, notified):
    numbers = [str(100000 + i) for i in range(5000)]  # about 50 KB of JSON; PostgreSQL takes under 8 KB
    with hub.announcing(db.engine) as (conn, announce):
        announce({"extensions": numbers, "waiting": ["1.1"], "cdr": 1})
    received = [notified.get(timeout=3)]
    while sum(len(m["extensions"]) for m in received) < len(numbers):
        received.append(notified.get(timeout=3))
    assert [n for m in received for n in m["extensions"]] == numbers
    assert [m.get("waiting") for m in received if "waiting" in m] == [["1.1"]]


def test_the_listen_connection_never_returns_to_the_pool_in_autocommit(db):
    """LISTEN needs autocommit; a pooled connection left in it would run a request's writes without a
    transaction, and its row locks would not hold."""
    stop = gevent.event.Event()
    listening = gevent.spawn(hub.listen_forever, db.engine, stop)
    gevent.sleep(0.3)
    stop.set()
    listening.join(timeout=3)
    held = [db.engine.raw_connection() for _ in range(db.engine.pool.checkedin() + 1)]
    try:
        assert not any(c.driver_connection.autocommit for c in held)
    finally:
        for connection in held:
            connection.close()
