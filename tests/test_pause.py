"""Pausing with a reason: the list admins keep, QueuePause as Asterisk takes it (test AMI server answering as
Asterisk 22 did), who may pause whom, and the pause as the dashboard shows it."""

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from pbxweb.auth.service import create_token, create_user
from pbxweb.live.store import pause_of
from pbxweb.models import ExtensionStatus, PauseReason

from .conftest import Api
from .test_access import signed_in


@pytest.fixture
def setup(app, api, ami_server, two_groups):
    """Reasons Lunch and Meeting; AMI at the test server; two_groups: Sales (1001, 1002), Support (1003)."""
    app.config.update(AMI_HOST="127.0.0.1", AMI_PORT=ami_server.port, AMI_USERNAME=ami_server.username,
                      AMI_SECRET=ami_server.secret)
    for name in ("Lunch", "Meeting"):
        assert api.post("/api/pause-reasons", json={"name": name}).status_code == 201
    return two_groups


def person(client, role, number=None):
    create_user(f"{role}{number or ''}", role, extension_number=number)
    return Api(client, create_token(f"{role}{number or ''}"))


def sent(ami_server):
    return [dict(m.headers[1:]) for m in ami_server.actions("QueuePause")]


def test_an_agent_pauses_in_every_group_with_a_reason_from_the_list(client, setup, ami_server):
    agent = person(client, "agent", "1001")
    response = agent.post("/api/pause", json={"paused": True, "reason": "Lunch"})
    assert response.status_code == 202 and response.get_json()["message"] == "You are paused in every group (Lunch)."
    assert [{k: v for k, v in m.items() if k != "ActionID"} for m in sent(ami_server)] == [
        {"Interface": "PJSIP/1001", "Paused": "true", "Reason": "Lunch"}]


def test_a_pause_in_one_group_names_its_queue_and_resuming_gives_no_reason(client, setup, ami_server):
    agent = person(client, "agent", "1001")
    assert agent.post("/api/pause", json={"reason": "Meeting", "group_id": setup["sales"]}).status_code == 202
    assert agent.post("/api/pause", json={"paused": False, "group_id": setup["sales"]}).status_code == 202
    first, second = sent(ami_server)
    assert (first["Queue"], first["Paused"], first["Reason"]) == (f"extgroup_{setup['sales']}", "true", "Meeting")
    assert (second["Queue"], second["Paused"]) == (f"extgroup_{setup['sales']}", "false") and "Reason" not in second


@pytest.mark.parametrize("body, field", [
    ({"reason": "Coffee"}, "reason"),
    ({"reason": "Lunch\r\nAction: Hangup"}, "reason"),
    ({}, "reason"),
    ({"reason": "Lunch", "group_id": 999}, "group_id"),
    ({"reason": "Lunch", "paused": "maybe"}, "paused"),
    ({"paused": False, "reason": "Lunch"}, "reason"),
    ({"reason": "Lunch", "extension": "10\r\n01"}, "extension"),
])
def test_a_bad_pause_is_refused_naming_the_field_and_nothing_reaches_asterisk(client, setup, ami_server, body, field):
    agent = person(client, "agent", "1001")
    response = agent.post("/api/pause", json=body)
    assert response.status_code == 400 and field in response.get_json()["errors"]
    assert sent(ami_server) == []


def test_a_group_of_someone_else_is_not_the_agents_to_pause_in(client, setup, ami_server):
    agent = person(client, "agent", "1001")
    response = agent.post("/api/pause", json={"reason": "Lunch", "group_id": setup["support"]})
    assert response.status_code == 400 and "group_id" in response.get_json()["errors"] and sent(ami_server) == []


def test_managers_and_admins_pause_others_agents_and_qa_only_themselves(client, api, setup, ami_server):
    assert person(client, "agent", "1001").post("/api/pause", json={"reason": "Lunch", "extension": "1002"}).status_code == 403
    assert person(client, "qa", "1003").post("/api/pause", json={"reason": "Lunch", "extension": "1002"}).status_code == 403
    manager = person(client, "manager")
    answer = manager.post("/api/pause", json={"reason": "Meeting", "extension": "1002"})
    assert answer.status_code == 202 and answer.get_json()["message"] == "1002 is paused in every group (Meeting)."
    assert api.post("/api/pause", json={"paused": False, "extension": "1002"}).status_code == 202
    assert [m["Interface"] for m in sent(ami_server)] == ["PJSIP/1002", "PJSIP/1002"]


def test_asterisk_unreachable_is_a_503_and_an_unknown_interface_a_409(client, app, setup, ami_server):
    agent = person(client, "agent", "1001")
    ami_server.answer_from("errors.ami", "queuepause-10")  # Interface not found
    assert agent.post("/api/pause", json={"reason": "Lunch"}).status_code == 409
    ami_server.stop()
    assert agent.post("/api/pause", json={"reason": "Lunch"}).status_code == 503


@pytest.mark.parametrize("name", ["", "Lunch|break", "a,b", "Lunch;", "x" * 41, "Lunch\nAction: Logoff", "^3B"])
def test_a_reason_asterisk_would_misread_is_refused_naming_the_name(api, db, name):
    response = api.post("/api/pause-reasons", json={"name": name})
    assert response.status_code == 400 and "name" in response.get_json()["errors"]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(PauseReason)) == 0


def test_reasons_are_unique_and_only_admins_keep_the_list(client, api):
    assert api.post("/api/pause-reasons", json={"name": "Lunch"}).status_code == 201
    assert api.post("/api/pause-reasons", json={"name": "Lunch"}).status_code == 409
    manager = person(client, "manager")
    assert manager.get("/api/pause-reasons").get_json()["pause_reasons"][0]["name"] == "Lunch"
    assert manager.post("/api/pause-reasons", json={"name": "Meeting"}).status_code == 403
    reason_id = api.get("/api/pause-reasons").get_json()["pause_reasons"][0]["id"]
    assert api.delete(f"/api/pause-reasons/{reason_id}").status_code == 204


def test_a_pause_reads_as_its_reason_and_minutes_since_asterisk_paused():
    started = (datetime.now(timezone.utc) - timedelta(minutes=12, seconds=5)).timestamp()
    pause = pause_of({"extgroup_1": {"paused": True, "reason": "Lunch", "paused_since": started},
                      "extgroup_2": {"paused": True, "reason": "Lunch", "paused_since": started + 30}})
    assert (pause["reason"], pause["minutes"], pause["everywhere"]) == ("Lunch", 12, True)
    partly = pause_of({"extgroup_1": {"paused": True, "reason": "Lunch", "paused_since": started},
                       "extgroup_2": {"paused": False, "reason": "", "paused_since": None}})
    assert partly["everywhere"] is False
    assert pause_of({"extgroup_1": {"paused": False}}) is None


def test_a_long_pause_reads_in_hours_and_minutes(app):
    from flask import render_template_string

    status = {"pause": {"reason": "Meeting", "since": datetime.now(timezone.utc), "minutes": 125, "everywhere": True}}
    with app.test_request_context():
        text = render_template_string('{% from "_macros.html" import paused %}{{ paused(status) }}', status=status)
    assert "Paused — Meeting, " in text and ">2 h 05 min</time>" in text


def test_the_presence_card_says_paused_with_the_reason_and_minutes(app, db, setup):
    from pbxweb.waiting_calls.views import bp  # noqa: F401 — the dashboard's page

    started = (datetime.now(timezone.utc) - timedelta(minutes=7)).timestamp()
    db.session.add(ExtensionStatus(number="1001", registration="registered", device_state="NOT_INUSE",
                                   queues={f"extgroup_{setup['sales']}": {"paused": True, "reason": "Lunch<b>",
                                                                         "in_call": False, "paused_since": started}}))
    db.session.commit()
    user, _ = create_user("ann", "agent", "correct horse battery", "1001")
    browser = signed_in(app, user)
    page = browser.get("/").get_data(as_text=True)
    assert "Paused — Lunch&lt;b&gt;, " in page and ">7 min</time>" in page
    assert 'name="reason"' in page and "<option>Meeting</option>" in page
    assert 'name="extension"' not in page  # an agent pauses only themselves
    answer = browser.post("/pause", data={"reason": "Coffee", "paused": "true"})
    assert answer.status_code == 400 and "must be one of the pause reasons" in answer.get_data(as_text=True)


def test_a_manager_picks_whom_to_pause_by_typing_not_from_a_list_of_everyone(app, db, setup):
    """The Who field asks the extensions picker as one types: at 20,000 extensions a list of them all made the
    dashboard a megabyte."""
    user, _ = create_user("boss", "manager", "correct horse battery", "1003")
    browser = signed_in(app, user)
    page = browser.get("/").get_data(as_text=True)
    who = page[page.index('<label>Who'):page.index('</label>', page.index('<label>Who'))]
    assert 'name="extension"' in who and 'list="pause-who-options"' in who and 'value="1003"' in who
    assert "1001 — " not in page  # no extension listed up front
    options = browser.get("/extensions/options?extension=1002", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert '<option value="1002">' in options
    answer = browser.post("/pause", data={"extension": "1002", "reason": "Lunch", "paused": "true"})
    assert answer.status_code == 200, answer.get_data(as_text=True)
