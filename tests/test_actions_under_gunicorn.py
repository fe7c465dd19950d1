"""Actions on the phones through the production server — gunicorn's gevent worker with the AMI listener inside
(deploy/gunicorn.conf.py), as `server` in test_dashboard_browser.py runs it — against the test AMI server:
limits that hold when requests arrive together, and answers that are not lost while Asterisk streams events."""

import json
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor


from pbxweb.auth.service import create_token, create_user

from .conftest import stored_waiting_caller


def post(url: str, token: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def all_at_once(requests: list) -> list[tuple[int, dict]]:
    """Each (url, token, body) from its own thread, released together."""
    start = threading.Barrier(len(requests))

    def send(request):
        start.wait()
        return post(*request)

    with ThreadPoolExecutor(len(requests)) as pool:
        return list(pool.map(send, requests))


def a_caller_waits(ami_server, db) -> str:
    """A caller waiting in Sales, as the listener stored it from Asterisk's events; its uniqueid."""
    ami_server.push_capture("queue-redirect.ami", until="QueueCallerJoin")
    return stored_waiting_caller(db)


def test_forty_click_to_calls_at_once_place_exactly_six(server, ami_server):
    ami_server.answer_from("queue-pickup-bridge.ami", "originate-1")
    token = create_token("alice")
    answers = all_at_once([(f"{server}/api/calls", token, {"number": "1001"})] * 40)
    assert sorted(status for status, _ in answers) == [202] * 6 + [429] * 34
    assert len(ami_server.actions("Originate")) == 6


def test_forty_redirects_at_once_send_exactly_six(server, ami_server, db):
    ami_server.answer_from("queue-redirect.ami", "redirect-2")
    uniqueid = a_caller_waits(ami_server, db)
    token = create_token("alice")
    answers = all_at_once([(f"{server}/api/waiting-calls/{uniqueid}/redirect", token, {"destination": "1003"})] * 40)
    assert sorted(status for status, _ in answers) == [202] * 6 + [429] * 34
    assert len(ami_server.actions("Redirect")) == 6


def test_redirects_while_asterisk_streams_events_are_each_answered_as_done(server, ami_server, db):
    """Each action connection logs in once; its reader never shares a socket (a lost answer came out as 503)."""
    ami_server.answer_from("queue-redirect.ami", "redirect-2")
    uniqueid = a_caller_waits(ami_server, db)
    tokens = []
    for n in range(40):  # 5 redirects each, within the per-user limit
        create_user(f"staff{n}", "manager")
        tokens.append(create_token(f"staff{n}"))
    streaming = threading.Event()

    def stream_events():
        while not streaming.is_set():
            ami_server.push_capture("call-basic.ami")
            time.sleep(0.02)

    pusher = threading.Thread(target=stream_events, daemon=True)
    pusher.start()
    try:
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda token: post(f"{server}/api/waiting-calls/{uniqueid}/redirect", token,
                                                       {"destination": "1003"}), tokens * 5))
    finally:
        streaming.set()
        pusher.join(timeout=5)
    failed = [(status, body) for status, body in answers if status != 202 or body["status"] != "redirected"]
    assert failed == [] and len(ami_server.actions("Redirect")) == 200
    assert ami_server.logins <= 1 + 200 + 5  # the listener (and a reconnect or so), then one login per action
