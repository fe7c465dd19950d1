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
    response = api.post("/api/waiting-calls/1.8/redirect", json={"destination": "1003"})
    assert response.status_code == 202 and response.get_json()["message"] == "Redirect successful"
    (sent,) = waiting.actions("Redirect")
    assert (sent["Channel"], sent["Context"], sent["Exten"], sent["Priority"]) == ("PJSIP/1001-00000008", "from-internal", "1003", "1")


def test_redirecting_a_caller_who_already_left_is_a_conflict(api, waiting):
    waiting.answer_from("errors.ami", "redirect-1")  # Channel does not exist
    response = api.post("/api/waiting-calls/1.8/redirect", json={"destination": "1003"})
    assert response.status_code == 409 and "no longer waiting" in response.get_json()["errors"]["_"]


@pytest.mark.parametrize("destination", ["9000\r\nAction: Hangup", "", "12a", None, "1" * 21, "00900123456", "0612345678",
                                         "9000", "*8999", "*8", "1001#"])
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
    response = api.post("/api/waiting-calls/1.8/redirect", json={"destination": "1003"})
    assert response.status_code == 503 and "not reachable" in response.get_json()["errors"]["_"]


def test_two_people_picking_up_the_same_caller_send_one_originate(app, api, waiting, db):
    from pbxweb.auth.service import create_user

    waiting.answer_from("queue-pickup-bridge.ami", "originate-1")
    create_user("bob", "manager", "correct horse battery", "1003")
    first = api.post("/api/waiting-calls/1.8/pickup", json={"extension": "1002"})
    from .conftest import token_for  # noqa: F401
    from pbxweb.auth.service import create_token

    second = Api(app.test_client(), create_token("bob")).post("/api/waiting-calls/1.8/pickup", json={"extension": "1003"})
    assert first.status_code == 202 and second.status_code == 409
    assert "already being picked up" in second.get_json()["errors"]["_"]
    assert len(waiting.actions("Originate")) == 1


def test_a_pickup_that_was_not_answered_in_time_may_be_tried_again(api, waiting, db):
    from pbxweb.models import PickupClaim

    waiting.answer_from("queue-pickup-bridge.ami", "originate-1")
    assert api.post("/api/waiting-calls/1.8/pickup", json={"extension": "1002"}).status_code == 202
    claim = db.session.get(PickupClaim, "1.8")
    claim.expires_at = claim.expires_at.replace(year=2000)
    db.session.commit()
    assert api.post("/api/waiting-calls/1.8/pickup", json={"extension": "1001"}).status_code == 202
    assert len(waiting.actions("Originate")) == 2


def test_a_failed_pickup_releases_its_claim(api, app, waiting):
    app.config["AMI_PORT"] = free_port()
    assert api.post("/api/waiting-calls/1.8/pickup", json={"extension": "1002"}).status_code == 503
    app.config["AMI_PORT"] = waiting.port
    waiting.answer_from("queue-pickup-bridge.ami", "originate-1")
    assert api.post("/api/waiting-calls/1.8/pickup", json={"extension": "1002"}).status_code == 202


def test_a_caller_is_redirected_to_a_group_by_its_dial_code(api, waiting, two_groups):
    waiting.answer_from("queue-redirect.ami", "redirect-2")
    response = api.post("/api/waiting-calls/1.8/redirect", json={"group_id": two_groups["support"]})
    assert response.status_code == 202
    assert waiting.actions("Redirect")[-1]["Exten"] == f"*8{two_groups['support']}"
    assert api.post("/api/waiting-calls/1.8/redirect", json={"group_id": 999}).status_code == 400
    both = api.post("/api/waiting-calls/1.8/redirect", json={"group_id": 1, "destination": "1001"})
    assert both.status_code == 400


def test_admins_see_each_group_with_its_waiting_count(api, waiting, two_groups):
    groups = {g["name"]: g for g in api.get("/api/waiting-calls/groups").get_json()["groups"]}
    assert groups["Sales"]["waiting"] == 1 and groups["Support"]["waiting"] == 1
    assert groups["Sales"]["longest_wait"] >= 0


def test_click_to_call_rings_the_users_own_phone_then_dials(client, waiting):
    waiting.answer_from("queue-pickup-bridge.ami", "originate-1")
    response = agent(client, "1001").post("/api/calls", json={"number": "0612345678"})
    assert response.status_code == 202
    originate = waiting.actions("Originate")[-1]
    assert originate["Channel"] == "PJSIP/1001" and originate["Exten"] == "0612345678"
    assert originate["Context"] == "from-internal" and "Application" not in originate


@pytest.mark.parametrize("number", ["06-1234", "0612\r\nAction: Logoff", "1" * 33, "", None, 42])
def test_click_to_call_refuses_a_number_it_cannot_dial(client, waiting, number):
    response = agent(client, "1001").post("/api/calls", json={"number": number})
    assert response.status_code == 400 and waiting.actions("Originate") == []


def test_click_to_call_is_rate_limited_per_user(client, waiting):
    waiting.answer_from("queue-pickup-bridge.ami", "originate-1")
    caller = agent(client, "1001")
    statuses = [caller.post("/api/calls", json={"number": "1002"}).status_code for _ in range(8)]
    assert statuses == [202] * 6 + [429, 429]


def test_a_user_without_an_extension_is_told_so(api, waiting):
    response = api.post("/api/calls", json={"number": "1002"})
    assert response.status_code == 400 and "no extension of your own" in response.get_json()["errors"]["_"]


def test_the_dashboard_redirects_to_a_group_or_a_number_and_answers_in_its_notice_line(app, waiting, two_groups):
    from pbxweb.auth.service import create_user

    from .test_access import signed_in

    user, _ = create_user("mgr", "manager", "correct horse battery", "1003")
    browser = signed_in(app, user)
    waiting.answer_from("queue-redirect.ami", "redirect-2")
    to_group = browser.post("/waiting/1.8/redirect", data={"target": f"group:{two_groups['support']}"})
    assert to_group.status_code == 200 and "on the way to group Support" in to_group.get_data(as_text=True)
    to_number = browser.post("/waiting/1.8/redirect", data={"target": "", "number": "1003"})
    assert "on the way to 1003" in to_number.get_data(as_text=True)
    assert [a["Exten"] for a in waiting.actions("Redirect")] == [f"*8{two_groups['support']}", "1003"]
    refused = browser.post("/waiting/1.8/redirect", data={"number": "90\r\n00"})
    assert refused.status_code == 400 and 'class="notice failed"' in refused.get_data(as_text=True)


@pytest.mark.parametrize("action, path, body", [("Originate", "pickup", {"extension": "1002"}),
                                                ("Redirect", "redirect", {"destination": "1001"})])
def test_an_action_that_went_out_unanswered_is_an_unknown_outcome_not_unreachable(api, waiting, action, path, body):
    waiting.close_on.add(action)  # Asterisk reads the action, then the connection is gone
    response = api.post(f"/api/waiting-calls/1.8/{path}", json=body)
    assert response.status_code == 202 and response.get_json()["status"] == "unknown"
    assert "did not confirm" in response.get_json()["message"]
    assert len(waiting.actions(action)) == 1


def test_a_pickup_whose_answer_was_lost_keeps_its_claim(app, api, waiting):
    waiting.close_on.add("Originate")
    assert api.post("/api/waiting-calls/1.8/pickup", json={"extension": "1002"}).status_code == 202
    waiting.close_on.clear()
    waiting.answer_from("queue-pickup-bridge.ami", "originate-1")
    again = api.post("/api/waiting-calls/1.8/pickup", json={"extension": "1001"})
    assert again.status_code == 409 and len(waiting.actions("Originate")) == 1  # no second phone rings


def test_a_connection_closed_before_the_action_went_out_is_unreachable_and_frees_the_caller(api, waiting):
    waiting.close_on_connect = True
    refused = api.post("/api/waiting-calls/1.8/pickup", json={"extension": "1002"})
    assert refused.status_code == 503 and "not reachable" in refused.get_json()["errors"]["_"]
    assert waiting.actions("Originate") == []
    waiting.close_on_connect = False
    waiting.answer_from("queue-pickup-bridge.ami", "originate-1")
    assert api.post("/api/waiting-calls/1.8/pickup", json={"extension": "1002"}).status_code == 202


def test_the_dashboard_says_an_unconfirmed_pickup_went_out_and_not_to_click_again(app, waiting):
    from pbxweb.auth.service import create_user

    from .test_access import signed_in

    user, _ = create_user("mgr", "manager", "correct horse battery", "1003")
    waiting.close_on.add("Originate")
    answer = signed_in(app, user).post("/waiting/1.8/pickup")
    assert answer.status_code == 200 and "did not confirm" in answer.get_data(as_text=True)
    assert 'class="notice failed"' not in answer.get_data(as_text=True)


@pytest.mark.parametrize("role", ["admin", "manager", "qa"])
def test_a_redirect_never_sends_a_caller_to_an_outside_number_whatever_the_role(client, waiting, role):
    from .conftest import token_for

    staff = Api(client, token_for(role, f"{role}-redirects"))
    response = staff.post("/api/waiting-calls/1.8/redirect", json={"destination": "00900123456"})
    assert response.status_code == 400 and "inside the PBX" in response.get_json()["errors"]["destination"]
    assert waiting.actions("Redirect") == []


def test_a_redirect_goes_to_a_group_by_its_dial_code_or_to_an_active_extension_only(api, waiting, two_groups):
    waiting.answer_from("queue-redirect.ami", "redirect-2")
    assert api.post("/api/waiting-calls/1.8/redirect", json={"destination": f"*8{two_groups['support']}"}).status_code == 202
    assert waiting.actions("Redirect")[-1]["Exten"] == f"*8{two_groups['support']}"
    api.patch("/api/extensions/1003", json={"is_active": False})
    inactive = api.post("/api/waiting-calls/1.8/redirect", json={"destination": "1003"})
    assert inactive.status_code == 400 and "destination" in inactive.get_json()["errors"]
    assert len(waiting.actions("Redirect")) == 1


def test_redirects_are_rate_limited_per_user(api, waiting):
    waiting.answer_from("queue-redirect.ami", "redirect-2")
    statuses = [api.post("/api/waiting-calls/1.8/redirect", json={"destination": "1003"}).status_code for _ in range(8)]
    assert statuses == [202] * 6 + [429, 429] and len(waiting.actions("Redirect")) == 6


def test_a_caller_is_redirected_into_the_voicemail_of_an_extension_that_has_one(api, waiting):
    waiting.answer_from("queue-redirect.ami", "redirect-2")
    api.patch("/api/extensions/1002", json={"voicemail": True})
    assert api.post("/api/waiting-calls/1.8/redirect", json={"voicemail": "1002"}).status_code == 202
    sent = waiting.actions("Redirect")[-1]
    assert (sent["Context"], sent["Exten"]) == ("voicemail-direct", "1002")
    without = api.post("/api/waiting-calls/1.8/redirect", json={"voicemail": "1001"})
    assert without.status_code == 400 and "voicemail" in without.get_json()["errors"]
    both = api.post("/api/waiting-calls/1.8/redirect", json={"voicemail": "1002", "destination": "1003"})
    assert both.status_code == 400 and len(waiting.actions("Redirect")) == 1
