"""The AMI client against the test AMI server: actions, lists, timeouts, and every fault we expect."""

import random
import time

import gevent
import pytest

from pbxweb.ami.client import AmiAnswerLost, AmiClient, AmiError, AmiLoginError, Backoff
from pbxweb.ami.protocol import UnsafeField

from .conftest import until
from .pgcluster import free_port



def client_for(server, **kwargs):
    kwargs.setdefault("timeout", 2)
    return AmiClient("127.0.0.1", server.port, server.username, kwargs.pop("secret", server.secret), **kwargs)


@pytest.fixture
def running(ami_server):
    """A client kept connected by run(), recording its events and (re)connects."""
    record = {"events": [], "connects": 0, "disconnects": []}

    def on_connect(client):
        record["connects"] += 1

    def make(**kwargs):
        client = client_for(ami_server, on_event=record["events"].append, on_connect=on_connect,
                            on_disconnect=lambda error, delay: record["disconnects"].append(str(error)),
                            backoff=Backoff(first=0.05, cap=0.2), **kwargs)
        record["client"] = client
        record["greenlet"] = gevent.spawn(client.run)
        assert until(lambda: record["connects"] >= 1)
        return record

    yield make
    if "client" in record:
        record["client"].stop()
        record["greenlet"].join(timeout=3)


def test_an_action_gets_its_own_response(ami_server):
    with client_for(ami_server, events=False) as client:
        assert client.banner == "Asterisk Call Manager/11.0.0"
        response = client.action("CoreSettings")
        assert response.response == "Success" and response["AsteriskVersion"] == "22.10.1"


def test_an_event_list_action_collects_its_events(ami_server):
    with client_for(ami_server, events=False) as client:
        response = client.action("PJSIPShowEndpoints")
    assert [e["ObjectName"] for e in response.events] == ["1001", "1002"]


def test_concurrent_actions_are_matched_by_action_id(ami_server):
    with client_for(ami_server, events=False) as client:
        jobs = [gevent.spawn(client.action, name) for name in ("CoreSettings", "CoreStatus", "Ping") * 5]
        gevent.joinall(jobs, timeout=5)
    assert [j.value.get("AsteriskVersion") is not None for j in jobs[::3]] == [True] * 5
    assert all(j.value.get("Ping") == "Pong" for j in jobs[2::3])


def test_an_action_that_is_never_answered_times_out_without_hanging(ami_server):
    ami_server.silent.add("CoreStatus")
    with client_for(ami_server, events=False, timeout=0.3) as client:
        started = time.monotonic()
        with pytest.raises(AmiError, match="did not answer CoreStatus"):
            client.action("CoreStatus")
        assert time.monotonic() - started < 1.5
        assert client.action("Ping")["Ping"] == "Pong"  # the connection is still usable


def test_an_action_on_its_own_connection_logs_in_once_and_leaves_no_session_open(ami_server):
    from pbxweb.ami import actions

    config = {"AMI_HOST": "127.0.0.1", "AMI_PORT": ami_server.port, "AMI_USERNAME": ami_server.username,
              "AMI_SECRET": ami_server.secret}
    assert actions.send(config, "Ping", {})["Ping"] == "Pong"
    assert ami_server.logins == 1
    assert until(lambda: ami_server.clients == [], timeout=2)


def test_a_reader_left_from_an_earlier_connection_never_fails_the_current_one(ami_server):
    """Events still arriving on an old connection wake its reader; it must not touch the new connection."""
    client = client_for(ami_server, events=False)
    client.open()
    old_reader = client._reader
    client.open()  # as run() does after a drop, while the old connection's reader still runs
    ami_server.push(b"Event: PeerStatus\r\nPeer: PJSIP/1001\r\nPeerStatus: Reachable\r\n\r\n")
    gevent.sleep(0.2)
    try:
        assert client.action("Ping")["Ping"] == "Pong"
        assert not old_reader.dead or old_reader.exception is None
    finally:
        client.close()


def test_an_action_written_and_then_unanswered_is_an_answer_lost_not_a_failure_to_send(ami_server):
    ami_server.silent.add("CoreStatus")
    ami_server.close_on.add("Originate")
    with client_for(ami_server, events=False, timeout=0.3) as client:
        with pytest.raises(AmiAnswerLost, match="did not answer CoreStatus"):
            client.action("CoreStatus")
        with pytest.raises(AmiAnswerLost, match="Originate was sent"):
            client.action("Originate", {"Channel": "PJSIP/1001"})
        with pytest.raises(AmiError) as not_sent:
            client.action("Ping")  # the connection is gone: nothing goes out
    assert not isinstance(not_sent.value, AmiAnswerLost)
    assert [len(ami_server.actions(name)) for name in ("CoreStatus", "Originate", "Ping")] == [1, 1, 0]


def test_bad_credentials_are_a_clear_error(ami_server):
    with pytest.raises(AmiLoginError, match="Authentication failed"):
        client_for(ami_server, secret="wrong").open()


def test_bad_credentials_back_off_instead_of_storming(ami_server):
    disconnects = []
    client = client_for(ami_server, secret="wrong", backoff=Backoff(first=0.2, cap=5),
                        on_disconnect=lambda error, delay: disconnects.append((str(error), delay)))
    runner = gevent.spawn(client.run)
    gevent.sleep(1.5)
    client.stop()
    runner.join(timeout=3)
    assert 2 <= ami_server.logins <= 4
    assert all("Authentication failed" in error for error, _ in disconnects)
    delays = [delay for _, delay in disconnects]
    assert delays == sorted(delays) or max(delays) <= 0.8


def test_backoff_starts_within_a_second_and_caps_at_thirty():
    backoff = Backoff(rng=random.Random(1))
    delays = [backoff.next() for _ in range(12)]
    assert delays[0] <= 1.0 and max(delays) <= 30.0 and delays[-1] >= 15.0
    backoff.reset()
    assert backoff.next() <= 1.0


def test_no_server_is_a_clear_error():
    with pytest.raises(AmiError, match="cannot connect to AMI"):
        AmiClient("127.0.0.1", free_port(), "u", "s", timeout=1).open()


def test_events_reach_the_listener_in_order(ami_server, running):
    record = running()
    sent = ami_server.push_capture("call-basic.ami")
    expected = [raw.split(b"\r\n", 1)[0].decode().removeprefix("Event: ") for raw in sent]
    expected = [name for name in expected if name != "FullyBooted"]
    received = lambda: [e.event for e in record["events"] if e.event != "FullyBooted"]
    assert until(lambda: len(received()) >= len(expected))
    assert received() == expected


def test_a_server_that_closes_after_login_is_retried(ami_server, running):
    record = running()
    ami_server.close_after_login = True
    ami_server.drop()
    assert until(lambda: len(record["disconnects"]) >= 3)
    ami_server.close_after_login = False
    connects = record["connects"]
    assert until(lambda: record["connects"] > connects)


def test_a_connection_dropped_mid_message_reconnects_and_drops_the_half(ami_server, running):
    record = running()
    half = b"Event: Newchannel\r\nChannel: PJSIP/1001-0000000f\r\nUniq"
    ami_server.push(half)
    gevent.sleep(0.05)
    ami_server.drop()
    assert until(lambda: record["connects"] >= 2)
    assert not any(e.get("Channel") == "PJSIP/1001-0000000f" for e in record["events"])
    ami_server.push(b"Event: Newchannel\r\nChannel: PJSIP/1001-00000010\r\nUniqueid: 1.2\r\n\r\n")
    assert until(lambda: any(e.get("Channel") == "PJSIP/1001-00000010" for e in record["events"]))


def test_garbage_bytes_do_not_break_the_stream(ami_server, running):
    record = running()
    ami_server.push(b"\x00\xff\xfe garbage without a colon\r\n\xc3\r\n\r\n",
                    b"Event: PeerStatus\r\nPeer: PJSIP/1001\r\nPeerStatus: Reachable\r\n\r\n")
    assert until(lambda: any(e.event == "PeerStatus" for e in record["events"]))
    assert record["client"].action("Ping")["Ping"] == "Pong"


def test_a_one_megabyte_event_arrives_whole(ami_server, running):
    record = running()
    big = "x" * (1024 * 1024)
    ami_server.push(f"Event: UserEvent\r\nUserEvent: big\r\nData: {big}\r\n\r\n".encode())
    assert until(lambda: any(e.get("UserEvent") == "big" for e in record["events"]))
    assert next(e for e in record["events"] if e.get("UserEvent") == "big")["Data"] == big


def test_a_dead_socket_is_noticed_by_the_keepalive(ami_server, running):
    record = running(ping_interval=0.2)
    ami_server.silent.add("Ping")  # a half-open connection: nothing comes back
    assert until(lambda: any("did not answer Ping" in d for d in record["disconnects"]), timeout=3)
    ami_server.silent.clear()
    assert until(lambda: record["connects"] >= 2)


def test_a_line_break_in_a_field_never_reaches_the_socket(ami_server):
    with client_for(ami_server, events=False) as client:
        with pytest.raises(UnsafeField):
            client.action("Redirect", {"Channel": "PJSIP/1001-1\r\nAction: Hangup", "Context": "from-internal"})
        client.action("Ping")
    assert ami_server.actions("Redirect") == [] and ami_server.actions("Hangup") == []


def test_secrets_are_masked_in_the_trace(ami_server):
    lines = []
    with client_for(ami_server, events=False, trace=lambda d, m: lines.append(f"{d} {m.headers}")):
        pass
    assert any("Login" in l for l in lines)
    assert not any(ami_server.secret in l for l in lines)
