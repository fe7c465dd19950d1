"""AMI answers the app depends on, read off the real Asterisk and kept as captures in
tests/fixtures/asterisk/ami/lab-*.ami (PBX_CAPTURE=1 rewrites them)."""

import pytest
import sqlalchemy as sa

from .conftest import CAPTURE, ROOT, as_csv, strong_password, wait_for

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
