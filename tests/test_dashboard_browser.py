"""The live dashboard in a real browser, served as in production (gunicorn's gevent worker with the listener
inside) and driven by the test AMI server replaying what a real Asterisk sent."""

import urllib.request

import pytest

from pbxweb.auth.service import create_user

from .conftest import PHONE

DEVICE_RINGING = b"Event: DeviceStateChange\r\nPrivilege: call,all\r\nDevice: PJSIP/1002\r\nState: RINGING\r\n\r\n"


def test_a_waiting_caller_appears_ticks_and_goes_live_and_only_for_its_groups(server, person, ami_server, screenshots):
    admin, _ = person(server, "alice")
    agent, agent_frames = person(server, "carl")
    admin.wait_for_function("document.querySelectorAll('#presence-grid .ext-card').length === 3")
    ami_server.push_capture("queue-redirect.ami", until="QueueCallerJoin")
    row = admin.wait_for_selector("#waiting-calls li.waiting", timeout=5000)
    assert "noanswer 1001" in row.inner_text() and "Sales" in row.inner_text()
    first = admin.inner_text("#waiting-calls .wait")
    admin.wait_for_timeout(2100)
    assert admin.inner_text("#waiting-calls .wait") != first  # it ticks in the browser
    admin.screenshot(path=str(screenshots / "dashboard-live-desktop.png"))
    # The agent of Support received frames, none of them about Sales' caller.
    assert agent_frames and not any("noanswer 1001" in str(frame) for frame in agent_frames)
    assert agent.locator("#waiting-calls li.waiting").count() == 0
    assert agent.locator("#presence-grid .ext-card").count() == 1  # only its own group's members

    ami_server.push(DEVICE_RINGING)  # 1002 is registered in the captured snapshot
    admin.wait_for_selector("#ext-card-1002 .state.ringing", timeout=5000)

    ami_server.push_capture("queue-redirect.ami")  # …abandoned by the redirect, then Leave
    admin.wait_for_selector("#waiting-calls li.waiting", state="detached", timeout=5000)
    admin.set_viewport_size(PHONE)
    admin.screenshot(path=str(screenshots / "dashboard-phone.png"))


def test_pick_up_rings_the_users_own_phone_and_the_row_goes_at_the_bridge(server, person, ami_server):
    admin, _ = person(server, "alice")
    ami_server.answer_from("queue-pickup-bridge.ami", "originate-1")
    ami_server.push_capture("queue-pickup-bridge.ami", until="QueueCallerJoin")
    admin.wait_for_selector("#waiting-calls li.waiting", timeout=5000)
    admin.click("#waiting-calls .pickup")
    notice = admin.wait_for_selector("#notice .notice", timeout=5000)
    assert "Your phone (1002) is ringing" in notice.inner_text()
    originate = ami_server.actions("Originate")[-1]
    assert originate["Channel"] == "PJSIP/1002" and originate["Application"] == "Bridge"
    assert originate["Data"].startswith("PJSIP/1001-")
    ami_server.push_capture("queue-pickup-bridge.ami")  # answered: the caller enters the bridge, no Leave
    admin.wait_for_selector("#waiting-calls li.waiting", state="detached", timeout=5000)


def test_an_agent_has_no_redirect_and_a_dropped_asterisk_shows_at_once(server, person, ami_server):
    agent, _ = person(server, "carl")
    admin, _ = person(server, "alice")
    ami_server.push_capture("queue-redirect.ami", until="QueueCallerJoin")
    admin.wait_for_selector("#waiting-calls form.redirect", timeout=5000)
    assert agent.locator("form.redirect").count() == 0
    ami_server.close_after_login = True  # Asterisk goes away and stays away
    ami_server.drop()
    banner = admin.wait_for_selector("#ami-banner .banner.down", timeout=2000)
    assert "Asterisk unreachable since" in banner.inner_text()
    assert "stale" in admin.get_attribute("#presence-grid", "class")
    ami_server.close_after_login = False  # it is back: the snapshot rebuilds every panel
    admin.wait_for_selector("#ami-banner .banner.ok", timeout=10000)


def test_a_handshake_from_another_origin_or_without_a_session_is_refused(server, site, ami_server):
    import simple_websocket

    host = server.split("//")[1]
    # This client sends `Host: 127.0.0.1` without the port, so its own origin is that.
    own_origin = "http://127.0.0.1"
    with pytest.raises(simple_websocket.ConnectionError) as refused:
        simple_websocket.Client(f"ws://{host}/live/ws", headers={"Origin": own_origin})
    assert refused.value.status_code == 302  # no session: sent to sign in, never upgraded
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    with opener.open(f"{server}/login") as page:
        token = page.read().decode().split('name="csrf_token" value="')[1].split('"')[0]
    opener.open(f"{server}/login", data=f"username=alice&password=correct+horse+battery&csrf_token={token}".encode())
    cookies = next(h for h in opener.handlers if isinstance(h, urllib.request.HTTPCookieProcessor)).cookiejar
    cookie = "; ".join(f"{c.name}={c.value}" for c in cookies)
    with pytest.raises(simple_websocket.ConnectionError) as refused:
        simple_websocket.Client(f"ws://{host}/live/ws", headers={"Origin": "http://evil.example", "Cookie": cookie})
    assert refused.value.status_code == 403
    client = simple_websocket.Client(f"ws://{host}/live/ws", headers={"Origin": own_origin, "Cookie": cookie})
    try:
        first = client.receive(timeout=5)
        assert 'id="waiting-calls"' in first and 'id="presence-grid"' in first  # every panel first
        # The socket is push-only: what a client sends is ignored, and the pushes go on.
        client.send("Action: Originate\r\nChannel: PJSIP/1001\r\nApplication: Bridge\r\n\r\n")
        ami_server.push(DEVICE_RINGING)
        pushed = client.receive(timeout=5)
        assert 'id="ext-card-1002"' in pushed and "Ringing" in pushed
        assert ami_server.actions("Originate") == []
    finally:
        client.close()


# 1002 paused in Sales (extgroup_1) with a reason: the captured QueueMemberPause (lab-queue-pause-reason.ami), for
# this site's member.
PAUSED_1002 = (b"Event: QueueMemberPause\r\nPrivilege: agent,all\r\nQueue: extgroup_1\r\nMemberName: Agent 1002\r\n"
               b"Interface: PJSIP/1002\r\nStateInterface: PJSIP/1002\r\nMembership: realtime\r\nPenalty: 0\r\n"
               b"CallsTaken: 0\r\nLastCall: 0\r\nInCall: 0\r\nStatus: 1\r\nPaused: 1\r\nPausedReason: Lunch\r\n"
               b"Wrapuptime: 0\r\n\r\n")


def test_the_viewers_own_phone_comes_first_with_its_live_state_pushed_like_every_card(server, person, ami_server, screenshots):
    admin, _ = person(server, "alice")  # extension 1002, registered and idle in the captured snapshot
    own = admin.wait_for_selector("#own-panel #own-card")
    assert "1002" in own.inner_text() and admin.inner_text("#own-card .state") == "Idle"
    assert admin.locator("#own-card .call-button").count() == 0  # nobody calls themselves
    ami_server.push(PAUSED_1002)
    admin.wait_for_selector("#own-card .paused >> text=Paused — Lunch", timeout=5000)
    ami_server.push(DEVICE_RINGING)
    admin.wait_for_selector("#own-card .state.ringing", timeout=5000)
    admin.wait_for_selector("#ext-card-1002 .state.ringing", timeout=5000)  # the grid's card too, from one push
    admin.screenshot(path=str(screenshots / "dashboard-own-desktop.png"))
    box = admin.locator("#own-card").bounding_box()
    assert box["y"] < admin.locator("#presence-grid").bounding_box()["y"]  # above the grid, seen first
    admin.set_viewport_size(PHONE)
    admin.screenshot(path=str(screenshots / "dashboard-own-phone.png"))
    assert admin.locator("#own-card").bounding_box()["y"] < 300  # at the top of a phone's screen
    # An agent whose phone is not registered sees that first; one with no extension has no such card.
    agent, _ = person(server, "carl")
    assert agent.inner_text("#own-card .state") == "Offline" and "1003" in agent.inner_text("#own-card")
    create_user("nina", "manager", "correct horse battery")
    manager, _ = person(server, "nina")
    assert manager.locator("#own-panel").count() == 0
    ami_server.close_after_login = True  # Asterisk goes away: the own card says "last known" like the grid's
    ami_server.drop()
    admin.wait_for_selector("#own-card .state.offline >> text=(last known)", timeout=5000)
    ami_server.close_after_login = False
