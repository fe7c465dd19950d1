"""AMI answers the app depends on, read off the real Asterisk and kept as captures in
tests/fixtures/asterisk/ami/lab-*.ami (PBX_CAPTURE=1 rewrites them)."""

import socket
import time
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa

from .conftest import CAPTURE, ROOT, as_csv, free_port, strong_password, wait_for

pytestmark = pytest.mark.asterisk


def test_a_registering_trunk_is_reported_registered_by_pjsip_show_registrations_outbound(lab):
    _, answer = lab.api("GET", "/api/trunks")
    [trunk] = [t for t in answer["trunks"] if t["name"] == "provider"]
    # Saved with register on: the app reloads res_pjsip_outbound_registration over AMI after the commit, and
    # Asterisk registers to the fake provider (which answers 200 with no challenge).
    lab.must("PATCH", f"/api/trunks/{trunk['id']}", {"register": True, "username": "lab-trunk",
                                                        "password": strong_password()})
    wait_for(lambda: "Registered" in lab.rx("pjsip show registrations"), 30, "the trunk registered")
    ami = lab.ami_recorder()
    ami.action("PJSIPShowRegistrationsOutbound")
    ami.read_until(lambda data: b"Event: OutboundRegistrationDetailComplete" in data)
    ami.close("lab-registrations-outbound")
    [detail] = [m for m in ami.messages() if m.get("Event") == "OutboundRegistrationDetail"]
    assert detail["ObjectName"] == "provider" and detail["Status"] == "Registered"
    assert detail["ServerUri"].startswith("sip:127.0.0.3:")


def test_a_pause_reason_reaches_the_event_the_queue_log_and_the_member_row(lab):
    queue = f"extgroup_{lab.groups['Support']}"
    before = lab.last_id("queue_log")
    ami = lab.ami_recorder()
    ami.action("QueuePause", Queue=queue, Interface="PJSIP/2003", Paused="true", Reason="Lunch")
    ami.read_until(lambda data: b"Event: QueueMemberPause" in data)
    ami.action("QueueStatus", Queue=queue)
    ami.read_until(lambda data: b"Event: QueueStatusComplete" in data)
    with lab.engine.connect() as conn:
        member = conn.execute(sa.text("SELECT paused, reason_paused FROM asterisk_queue_members "
                                      "WHERE queue_name = :q AND interface = 'PJSIP/2003'"), {"q": queue}).one()
    ami.action("QueuePause", Queue=queue, Interface="PJSIP/2003", Paused="false")
    ami.read_until(lambda data: data.count(b"Event: QueueMemberPause") == 2)
    ami.close("lab-queue-pause-reason")
    wait_for(lambda: len(lab.rows("queue_log", before)) >= 2, 5, "the PAUSE and UNPAUSE rows")
    rows = lab.rows("queue_log", before)
    if CAPTURE:
        (ROOT / "tests/fixtures/asterisk/ami/lab-queue-pause-reason.queue_log.csv").write_text(as_csv(rows))

    pause = [m for m in ami.messages() if m.get("Event") == "QueueMemberPause"]
    assert [(m["Paused"], m["PausedReason"]) for m in pause] == [("1", "Lunch"), ("0", "")]
    assert [(r["queuename"], r["event"], r["data1"]) for r in rows] == [(queue, "PAUSE", "Lunch"),
                                                                        (queue, "UNPAUSE", "")]
    # Asterisk writes `paused` back into the realtime member row, and `reason_paused` too: it saw a value in that
    # column when app_queue loaded (the marker row, mapping.REASON_PAUSED_MARKER).
    assert member.paused == 1 and member.reason_paused == "Lunch"


# --- outbound registrations: what Asterisk says on each attempt's outcome ----------------------------------
# Each capture starts before the trunk is saved and keeps everything until the `Registry` event of the outcome,
# with PJSIPShowRegistrationsOutbound asked while the attempt is on and after it (lab-registry-*.ami).

def registry_events(ami, host: str) -> list[dict]:
    return [m for m in ami.messages() if m.get("Event") == "Registry" and host in m.get("Domain", "")]


def watch_registration(lab, ami, trunk_name: str, host: str, timeout: float) -> dict:
    """PJSIPShowRegistrationsOutbound once the registration exists, then the first Registry event for it, then
    PJSIPShowRegistrationsOutbound again; returns that event."""
    wait_for(lambda: trunk_name in lab.rx("pjsip show registrations"), 15, f"Asterisk building {trunk_name}'s registration")
    ami.note("the registration is listed by `pjsip show registrations`")
    ami.action("PJSIPShowRegistrationsOutbound")
    ami.read_until(lambda data: data.count(b"Event: OutboundRegistrationDetailComplete") == 1)
    ami.read_until(lambda data: f"Domain: sip:{host}".encode() in data, timeout=timeout)
    ami.note(f"Registry event for {host} received")
    ami.action("PJSIPShowRegistrationsOutbound")
    ami.read_until(lambda data: data.count(b"Event: OutboundRegistrationDetailComplete") == 2)
    [event] = registry_events(ami, host)
    return event


def details(ami, trunk_name: str) -> list[dict]:
    return [m for m in ami.messages() if m.get("Event") == "OutboundRegistrationDetail" and m["ObjectName"] == trunk_name]


def test_a_trunk_to_a_host_that_does_not_answer_is_reported_rejected_after_the_request_times_out(lab):
    # 127.0.0.4: nothing of the lab listens there.
    port = free_port(socket.SOCK_DGRAM, "127.0.0.4")
    ami = lab.ami_recorder()
    ami.note(f"POST /api/trunks silent → 127.0.0.4:{port} (nothing listens), register on")
    lab.must("POST", "/api/trunks", {"name": "silent", "host": "127.0.0.4", "port": port, "register": True,
                                     "username": "lab-silent", "password": strong_password()})
    saved = time.monotonic()
    event = watch_registration(lab, ami, "silent", "127.0.0.4", timeout=90)
    waited = time.monotonic() - saved
    ami.close("lab-registry-no-response")
    before, after = details(ami, "silent")
    assert before["Status"] == "Unregistered" and after["Status"] == "Rejected"
    assert event["ChannelType"] == "PJSIP" and event["Status"] == "Rejected"
    assert event["Username"] == f"sip:lab-silent@127.0.0.4:{port}" and event["Domain"] == f"sip:127.0.0.4:{port}"
    # pjsip gives up on an unanswered UDP REGISTER after Timer F (32 s), after a random initial delay of up to
    # MaxRandomInitialDelay (10 s).
    assert 30 < waited < 50, waited
    # The app's listener stored that outcome: the trunks page shows Asterisk's word and when it said it.
    at = datetime.fromtimestamp(float(event["Timestamp"]), timezone.utc).strftime("%H:%M")  # the lab site is in UTC

    browser = lab.browser()

    def row():
        status, body, _ = browser.get("/trunks")
        assert status == 200
        page = body.decode()
        return page[page.index("<strong>silent</strong>"):].split("</tr>")[0]

    shown = wait_for(lambda: "Rejected" in row() and row(), 10, "the trunks page showing silent's outcome")
    assert '<span class="state unreachable">Rejected</span>' in shown and f"({at})</time>" in shown
    assert "refused the registration or did not answer" in shown


def test_a_trunk_whose_password_the_provider_refuses_is_reported_rejected_at_once(lab):
    port = free_port(socket.SOCK_DGRAM, "127.0.0.5")
    lab.sipp("provider-rejects.xml", ip="127.0.0.5", port=port, log="provider-rejects")
    ami = lab.ami_recorder()
    ami.note(f"POST /api/trunks refused → 127.0.0.5:{port} (sipp provider-rejects.xml: 401, then 401 again), register on")
    lab.must("POST", "/api/trunks", {"name": "refused", "host": "127.0.0.5", "port": port, "register": True,
                                     "username": "lab-refused", "password": strong_password()})
    saved = time.monotonic()
    event = watch_registration(lab, ami, "refused", "127.0.0.5", timeout=30)
    waited = time.monotonic() - saved
    ami.close("lab-registry-rejected")
    assert event["Status"] == "Rejected"
    assert details(ami, "refused")[-1]["Status"] == "Rejected"
    assert waited < 15, waited  # no timer: the second 401 ends it


def test_a_trunk_the_provider_accepts_is_reported_registered(lab):
    _, answer = lab.api("GET", "/api/trunks")
    [trunk] = [t for t in answer["trunks"] if t["name"] == "provider"]
    lab.must("PATCH", f"/api/trunks/{trunk['id']}", {"register": False})
    wait_for(lambda: "provider" not in lab.rx("pjsip show registrations"), 15, "the registration gone")
    ami = lab.ami_recorder()
    ami.note("PATCH /api/trunks/provider register on (the fake provider on 127.0.0.3 answers 200)")
    lab.must("PATCH", f"/api/trunks/{trunk['id']}", {"register": True, "username": "lab-trunk",
                                                        "password": strong_password()})
    event = watch_registration(lab, ami, "provider", "127.0.0.3", timeout=30)
    ami.close("lab-registry-registered")
    assert event["Status"] == "Registered"
    assert details(ami, "provider")[-1]["Status"] == "Registered"
