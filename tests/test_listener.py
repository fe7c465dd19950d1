"""The AMI listener end to end: test AMI server → state tables on PostgreSQL → the read API."""


import gevent
import pytest
import sqlalchemy as sa

from pbxweb.ami.listener import Listener

from .ami_server import capture_events
from .conftest import until



@pytest.fixture
def ami_config(app, ami_server):
    app.config.update(AMI_HOST="127.0.0.1", AMI_PORT=ami_server.port, AMI_USERNAME=ami_server.username,
                      AMI_SECRET=ami_server.secret)
    return ami_server


@pytest.fixture
def start_listener(app, ami_config):
    running = []

    def start(**kwargs):
        kwargs.setdefault("flush_interval", 0.01)
        kwargs.setdefault("heartbeat_interval", 0.2)
        kwargs.setdefault("lock_retry", 0.1)
        listener = Listener(app, **kwargs)
        running.append((listener, gevent.spawn(listener.run)))
        return listener

    yield start
    for listener, greenlet in running:
        listener.stop()
        greenlet.join(timeout=5)
        greenlet.kill()


def query(db, sql, **params):
    with db.engine.connect() as conn:
        return conn.execute(sa.text(sql), params).all()


def statuses(db):
    return {r.number: r for r in query(db, "SELECT * FROM pbx_extension_status")}


def waiting(db):
    return query(db, "SELECT * FROM pbx_waiting_calls ORDER BY position")


def connected(db):
    rows = query(db, "SELECT connected FROM pbx_ami_status")
    return bool(rows and rows[0].connected)


def test_after_connecting_the_snapshot_is_stored(db, start_listener):
    start_listener()
    assert until(lambda: connected(db))
    status = statuses(db)
    assert status["1001"].registration == "registered" and status["1001"].user_agent == "sipp-lab-phone-1001"
    assert status["1002"].device_state == "NOT_INUSE"
    assert query(db, "SELECT asterisk_version FROM pbx_ami_status")[0].asterisk_version == "22.10.1"


def test_a_caller_waits_and_leaves_as_the_events_say(db, ami_server, start_listener):
    start_listener()
    assert until(lambda: connected(db))
    ami_server.push_capture("queue-abandon.ami", until="QueueCallerJoin")
    assert until(lambda: len(waiting(db)) == 1)
    call = waiting(db)[0]
    assert (call.caller_number, call.caller_name, call.group_id, call.position) == ("1001", "noanswer 1001", 1, 1)
    ami_server.push_capture("queue-abandon.ami")
    assert until(lambda: waiting(db) == [])


def test_a_bridge_pickup_leaves_no_ghost_end_to_end(db, ami_server, start_listener):
    start_listener()
    assert until(lambda: connected(db))
    ami_server.push_capture("queue-pickup-bridge.ami", until="QueueCallerJoin")
    assert until(lambda: len(waiting(db)) == 1)
    ami_server.push_capture("queue-pickup-bridge.ami", until="BridgeEnter")
    assert until(lambda: waiting(db) == [])


def test_calls_in_progress_are_stored_and_cleared(db, ami_server, start_listener):
    start_listener()
    assert until(lambda: connected(db))
    ami_server.push_capture("call-basic.ami", until="BridgeEnter")
    assert until(lambda: "1001" in statuses(db) and statuses(db)["1001"].calls == 1)
    ami_server.push_capture("call-basic.ami")
    assert until(lambda: statuses(db)["1001"].calls == 0)


def test_a_restarted_asterisk_with_a_different_picture_replaces_the_state(db, ami_server, start_listener):
    ami_server.answer_from("queue-redirect.ami", "queuestatus-1")  # a caller waiting at the first snapshot
    start_listener()
    assert until(lambda: len(waiting(db)) == 1)
    ami_server.push(b"Event: Newchannel\r\nChannel: PJSIP/1003-00000001\r\nUniqueid: 9.1\r\n\r\n")
    assert until(lambda: "1003" in statuses(db))
    logins = ami_server.logins
    ami_server.answer_from("actions.ami", "queuestatus-4")  # after the restart: nobody waits
    ami_server.push_capture("restart.ami")  # Shutdown, then the socket closes
    ami_server.drop()
    assert until(lambda: ami_server.logins > logins)
    assert until(lambda: waiting(db) == [] and "1003" not in statuses(db))
    assert until(lambda: connected(db))


def test_while_ami_is_down_the_status_says_so(db, ami_server, start_listener, api):
    start_listener()
    assert until(lambda: connected(db))
    assert api.get("/api/ami").get_json()["connected"] is True
    ami_server.close_after_login = True
    ami_server.drop()
    assert until(lambda: not connected(db))
    body = api.get("/api/ami").get_json()
    assert body["connected"] is False and body["stale"] is True and body["last_error"]
    assert api.get("/api/waiting-calls").get_json()["stale"] is True


def test_a_pause_in_asterisk_is_followed_by_the_group_member(db, ami_server, start_listener, api):
    for number in ("1001", "1002"):
        api.post("/api/extensions", json={"number": number, "name": f"Agent {number}"})
    group = api.post("/api/groups", json={"name": "Lab"}).get_json()
    assert group["id"] == 1  # the captures' queue is extgroup_1
    api.put("/api/groups/1/members", json={"members": [{"number": "1001"}, {"number": "1002"}]})
    start_listener()
    assert until(lambda: connected(db))
    pause = next(raw for raw in capture_events(ami_server.ami_dir, "actions.ami") if raw.startswith(b"Event: QueueMemberPause"))
    ami_server.push(pause)
    # Read from the database itself: the test's own session would keep the member it loaded first.
    assert until(lambda: [r.paused for r in query(db, "SELECT paused FROM pbx_group_members ORDER BY id")] == [False, True])
    assert statuses(db)["1002"].queues["extgroup_1"] == {"paused": True, "reason": "lab-break", "in_call": False,
                                                          "paused_since": 1795772414.0}


def test_only_one_listener_listens_and_another_takes_over(db, ami_server, start_listener):
    first = start_listener()
    assert until(lambda: connected(db))
    second = start_listener()
    gevent.sleep(0.5)
    assert ami_server.logins == 1
    first.stop()
    assert until(lambda: ami_server.logins == 2, timeout=5)
    assert until(lambda: second.connected and connected(db))


def test_the_listener_recovers_from_a_postgresql_restart(db, ami_server, start_listener, pg_cluster):
    if pg_cluster is None:
        pytest.skip("needs the throwaway cluster")
    start_listener()
    assert until(lambda: connected(db))
    snapshots = len(ami_server.actions("DeviceStateList"))
    ami_server.push_capture("queue-abandon.ami", until="QueueCallerJoin")
    assert until(lambda: len(waiting(db)) == 1)
    pg_cluster.restart()
    ami_server.push_capture("queue-abandon.ami")  # the caller leaves while the database is away
    assert until(lambda: len(ami_server.actions("DeviceStateList")) > snapshots, timeout=15)
    assert until(lambda: waiting(db) == [], timeout=10)
    assert until(lambda: connected(db))


def test_an_unexpected_failure_does_not_kill_the_listener(db, start_listener, monkeypatch):
    import pbxweb.ami.listener as listener_module

    real = listener_module.state_from_snapshot
    failures = []

    def fail_once(**lists):
        if not failures:
            failures.append(1)
            raise KeyError("a field Asterisk did not send")
        return real(**lists)

    monkeypatch.setattr(listener_module, "state_from_snapshot", fail_once)
    start_listener()
    assert until(lambda: connected(db), timeout=10)
    assert failures == [1]


def insert_contact(db, number: str, port: int, **overrides):
    """A REGISTER as Asterisk 22 writes it (tests/fixtures/asterisk/README.md): id `<aor>^3B@<md5>`, `^3B` for
    `;` in the uri, epoch expiry, empty strings and mixed boolean spellings."""
    import time as _time

    row = {
        "id": f"{number}^3B@0f0e0d0c0b0a09080706050403020100", "uri": f"sip:{number}@127.0.0.1:{port}^3Btransport=UDP",
        "expiration_time": int(_time.time()) + 3600, "qualify_frequency": 60, "outbound_proxy": "", "path": "",
        "user_agent": f"sipp-lab-phone-{number}", "qualify_timeout": 3.0, "reg_server": "", "authenticate_qualify": "no",
        "via_addr": "127.0.0.1", "via_port": port, "call_id": f"1-{port}@127.0.0.1", "endpoint": number,
        "prune_on_boot": "yes", "qualify_2xx_only": "false", **overrides,
    }
    columns = ", ".join(row)
    with db.engine.begin() as conn:
        conn.execute(sa.text(f"INSERT INTO ps_contacts ({columns}) VALUES ({', '.join(':' + c for c in row)})"), row)


def test_registration_follows_the_contact_rows_asterisk_writes_with_no_ami_event(db, api, start_listener):
    api.post("/api/extensions", json={"number": "1003", "name": "Row Phone"})
    start_listener()
    assert until(lambda: connected(db))

    def registration():
        body = api.get("/api/extensions/status?q=1003").get_json()["extensions"]
        return body[0]["registration"], body[0]["user_agent"]

    assert registration()[0] == "offline"
    insert_contact(db, "1003", 5073)
    assert until(lambda: registration() == ("registered", "sipp-lab-phone-1003"), timeout=1.0)
    with db.engine.begin() as conn:  # a refresh: the same row, a new expiry and user agent
        conn.execute(sa.text("UPDATE ps_contacts SET expiration_time = expiration_time + 60, user_agent = 'sipp 2' WHERE endpoint = '1003'"))
    assert until(lambda: registration() == ("registered", "sipp 2"), timeout=1.0)
    with db.engine.begin() as conn:  # Expires: 0 deletes it
        conn.execute(sa.text("DELETE FROM ps_contacts WHERE endpoint = '1003'"))
    assert until(lambda: registration()[0] == "offline", timeout=1.0)


def test_each_registration_attempts_outcome_is_stored_for_every_worker_and_kept_over_a_reconnect(db, ami_server, start_listener):
    start_listener()
    assert until(lambda: connected(db))
    ami_server.push_capture("lab-registry-no-response.ami")

    def stored():
        return {r.client_uri: r for r in query(db, "SELECT * FROM pbx_trunk_registrations")}

    assert until(lambda: "sip:lab-silent@127.0.0.4:41161" in stored())
    row = stored()["sip:lab-silent@127.0.0.4:41161"]
    assert (row.status, row.cause, row.server_uri) == ("Rejected", None, "sip:127.0.0.4:41161")
    assert row.at.timestamp() == pytest.approx(1796097306.458080)
    # No snapshot reports an attempt's outcome: a reconnect keeps the last one (the next attempt replaces it).
    logins = ami_server.logins
    ami_server.drop()
    assert until(lambda: ami_server.logins > logins and connected(db))
    assert "sip:lab-silent@127.0.0.4:41161" in stored()
    ami_server.push_capture("lab-registry-registered.ami")
    assert until(lambda: "sip:lab-trunk@127.0.0.3:40627" in stored())
    assert stored()["sip:lab-trunk@127.0.0.3:40627"].status == "Registered"
