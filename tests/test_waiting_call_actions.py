"""Picking up and redirecting a waiting caller over AMI (test AMI server answering as Asterisk did)."""

import pytest

from pbxweb.live import store
from pbxweb.live.state import LiveState, WaitingCall

from .conftest import Api
from .pgcluster import free_port


@pytest.fixture
def waiting(db, app, ami_server, two_groups):
    """A caller waiting in each of the two groups, and AMI pointing at the test server."""
    app.config.update(AMI_HOST="127.0.0.1", AMI_PORT=ami_server.port, AMI_USERNAME=ami_server.username,
                      AMI_SECRET=ami_server.secret)
    sales, support = two_groups["sales"], two_groups["support"]
    state = LiveState()
    state.waiting["1.8"] = WaitingCall("1.8", "PJSIP/1001-00000008", "1.8", "0612345678", 'Bad "Name" <x>',
                                       f"extgroup_{sales}", 1, 1_795_772_385.0)
    state.waiting["2.1"] = WaitingCall("2.1", "PJSIP/trunk-00000009", "2.1", "0687654321", "Other",
                                       f"extgroup_{support}", 1, 1_795_772_385.0)
    with db.engine.begin() as conn:
        store.replace_all(conn, state)
    return ami_server


def agent(client, number):
    from pbxweb.auth.service import create_token, create_user

    create_user(f"agent{number}", "agent", extension_number=number)
    return Api(client, create_token(f"agent{number}"))


def test_a_redirect_sends_the_stored_channel_to_the_internal_dialplan(api, waiting):
    waiting.answer_from("queue-redirect.ami", "redirect-2")
    response = api.post("/api/waiting-calls/1.8/redirect", json={"destination": "9000"})
    assert response.status_code == 202 and response.get_json()["message"] == "Redirect successful"
    (sent,) = waiting.actions("Redirect")
    assert (sent["Channel"], sent["Context"], sent["Exten"], sent["Priority"]) == ("PJSIP/1001-00000008", "from-internal", "9000", "1")


def test_redirecting_a_caller_who_already_left_is_a_conflict(api, waiting):
    waiting.answer_from("errors.ami", "redirect-1")  # Channel does not exist
    response = api.post("/api/waiting-calls/1.8/redirect", json={"destination": "9000"})
    assert response.status_code == 409 and "no longer waiting" in response.get_json()["errors"]["_"]


@pytest.mark.parametrize("destination", ["9000\r\nAction: Hangup", "", "12a", None, "1" * 21])
def test_a_bad_destination_is_refused_and_nothing_is_sent(api, waiting, destination):
    response = api.post("/api/waiting-calls/1.8/redirect", json={"destination": destination})
    assert response.status_code == 400 and "destination" in response.get_json()["errors"]
    assert waiting.actions("Redirect") == [] and waiting.actions("Hangup") == []


def test_a_pickup_rings_the_extension_and_bridges_the_caller(api, waiting):
    waiting.answer_from("queue-pickup-bridge.ami", "originate-1")
    response = api.post("/api/waiting-calls/1.8/pickup", json={"extension": "1002"})
    assert response.status_code == 202 and response.get_json()["message"] == "Originate successfully queued"
    (sent,) = waiting.actions("Originate")
    assert (sent["Channel"], sent["Application"], sent["Data"]) == ("PJSIP/1002", "Bridge", "PJSIP/1001-00000008")
    # The caller's name keeps the callerid string intact: no quotes or angle brackets from it.
    assert sent["CallerID"] == '"Bad Name x" <0612345678>'


def test_an_agent_picks_up_on_their_own_extension(client, waiting):
    waiting.answer_from("queue-pickup-bridge.ami", "originate-1")
    response = agent(client, "1001").post("/api/waiting-calls/1.8/pickup", json={})
    assert response.status_code == 202
    assert waiting.actions("Originate")[0]["Channel"] == "PJSIP/1001"


def test_an_agent_may_not_pick_up_for_another_extension(client, waiting):
    response = agent(client, "1001").post("/api/waiting-calls/1.8/pickup", json={"extension": "1002"})
    assert response.status_code == 403 and waiting.actions("Originate") == []


def test_an_agent_cannot_touch_a_caller_of_another_group(client, waiting):
    response = agent(client, "1001").post("/api/waiting-calls/2.1/pickup", json={})
    assert response.status_code == 404 and waiting.actions("Originate") == []


@pytest.mark.parametrize("uniqueid", ["1.8", "2.1"])
def test_an_agent_may_not_redirect_a_caller_even_of_its_own_group(client, waiting, uniqueid):
    response = agent(client, "1001").post(f"/api/waiting-calls/{uniqueid}/redirect", json={"destination": "1001"})
    assert response.status_code == 403 and waiting.actions("Redirect") == []


def test_a_pickup_for_an_unknown_extension_is_refused(api, waiting):
    response = api.post("/api/waiting-calls/1.8/pickup", json={"extension": "4999"})
    assert response.status_code == 400 and "extension" in response.get_json()["errors"]


def test_an_unknown_waiting_call_is_not_found(api, waiting):
    assert api.post("/api/waiting-calls/9.9/redirect", json={"destination": "1001"}).status_code == 404


def test_with_asterisk_unreachable_the_answer_says_so(api, app, waiting):
    app.config["AMI_PORT"] = free_port()
    response = api.post("/api/waiting-calls/1.8/redirect", json={"destination": "9000"})
    assert response.status_code == 503 and "not reachable" in response.get_json()["errors"]["_"]
