"""Voicemail and pause reasons on the real Asterisk 22 of ../shared/lab (/opt/asterisk-lab), end to end.

Run as root on a machine where the lab is installed and nobody else is using it, asking for it by name:

    PBX_LAB_TESTS=1 .venv/bin/python -m pytest -q -m asterisk tests/asterisk/test_voicemail_lab.py

Without PBX_LAB_TESTS=1 it skips: the lab is one Asterisk for the whole machine, and a check that it is idle
is no lock — a full test run must never start, reconfigure or stop it while someone else's test uses it.

What it does (each step asserted):
1. A database on the test run's PostgreSQL, built by the migrations; the app's Asterisk config rendered for
   it (SIP and AMI on free 127.0.0.1 ports, voicemail spool = the lab's, `mailcmd` = a script that captures
   the e-mail), installed with `asterisk-lab install-config`, Asterisk restarted.
2. Through the app's API: extension 2005 with voicemail on and an e-mail address (no phone registers), a DID
   5550100 → 2005, a group with 2005 as its member, the pause reason "Lunch". The app's AMI listener runs.
3. `test_a_caller_leaves_a_message_it_plays_in_the_browser_and_deleting_clears_the_light`: MailboxCount
   2005@default says 0 new; sipp calls the DID unauthenticated (the anonymous endpoint → from-external →
   the extension, unavailable → VoiceMail(2005@default,u)) and plays g711a.pcap for 15 s, then hangs up;
   MailboxCount says 1 new and the listener stores voicemail_new = 1 (MessageWaiting); the mailbox page lists
   the message from 0612345678, its audio answers audio/wav (RIFF) and a Range request 206; the captured
   e-mail went to the extension's address with the message attached; deleting it on the page removes its
   files, the outbox sends VoicemailRefresh, and MailboxCount and the stored count go back to 0.
4. `test_a_pause_reason_reaches_asterisk_and_its_queue_log`: POST /api/pause with "Lunch" for 2005 → the
   member row says paused = 1, the queue log has a PAUSE row with "Lunch"; resuming → paused = 0, UNPAUSE.
5. Afterwards Asterisk is stopped and the lab's config put back (`asterisk-lab reset-config`).

It never touches a lab Asterisk that is already running (someone else's test): it skips instead — but that
check races with another harness that restarts the lab, hence the explicit PBX_LAB_TESTS=1. Helpers
live here, not in a conftest, so a shared lab harness can replace them.
"""

import os
import shutil
import subprocess
from pathlib import Path

import gevent
import pytest
import sqlalchemy as sa

from tests.conftest import Api, app_config, token_for, until
from tests.pgcluster import free_port
from ..test_access import signed_in

pytestmark = pytest.mark.asterisk

LAB = Path("/opt/asterisk-lab")
LAB_TOOL = LAB / "bin" / "asterisk-lab"
SPOOL = LAB / "var" / "spool" / "asterisk" / "voicemail"
PCAP = Path("/usr/share/sip-tester/g711a.pcap")


def lab_running() -> bool:
    pid = (LAB / "var/run/asterisk/asterisk.pid")
    try:
        return os.readlink(f"/proc/{int(pid.read_text().strip())}/exe") == str(LAB / "sbin/asterisk")
    except (OSError, ValueError):
        return False


def lab(*args: str) -> str:
    return subprocess.run([str(LAB_TOOL), *args], check=True, capture_output=True, text=True, timeout=60).stdout


CALLER = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="a caller leaves a voicemail">
  <send retrans="500"><![CDATA[
INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: "Lab Caller" <sip:0612345678@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: sip:0612345678@[local_ip]:[local_port]
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

v=0
o=caller 53655765 2353687637 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 8
a=rtpmap:8 PCMA/8000
]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rtd="true"/>
  <send><![CDATA[
ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: "Lab Caller" <sip:0612345678@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 1 ACK
Contact: sip:0612345678@[local_ip]:[local_port]
Max-Forwards: 70
Content-Length: 0
]]></send>
  <nop><action><exec play_pcap_audio="PCAP"/></action></nop>
  <pause milliseconds="15000"/>
  <send retrans="500"><![CDATA[
BYE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: "Lab Caller" <sip:0612345678@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 2 BYE
Contact: sip:0612345678@[local_ip]:[local_port]
Max-Forwards: 70
Content-Length: 0
]]></send>
  <recv response="200" crlf="true"/>
</scenario>
"""


@pytest.fixture(scope="module")
def asterisk(make_db, tmp_path_factory):
    """The lab Asterisk on a fresh database and config of the app's, and the app on that database."""
    if os.environ.get("PBX_LAB_TESTS") != "1":
        pytest.skip("drives the machine's one lab Asterisk: run with PBX_LAB_TESTS=1 when nobody else uses it")
    if not LAB_TOOL.exists() or os.geteuid() != 0 or shutil.which("sipp") is None or not PCAP.exists():
        pytest.skip("needs /opt/asterisk-lab, root, sipp and its g711a.pcap")
    if lab_running():
        pytest.skip("the lab Asterisk is running: someone else's test is using it")
    from flask_migrate import upgrade

    from pbxweb import create_app
    from pbxweb.asterisk_config import render, write

    work = tmp_path_factory.mktemp("voicemail-lab")
    mailcmd = work / "capture-mail"
    mailcmd.write_text(f"#!/bin/sh\ncat > {work}/mail-$$.eml\n")
    mailcmd.chmod(0o755)
    url = make_db("pbx_voicemail_lab")
    app = create_app(app_config(
        url, AMI_HOST="127.0.0.1", AMI_PORT=free_port(), AMI_USERNAME="minipbx-lab", AMI_SECRET=os.urandom(12).hex(),
        PBX_SIP_BIND="127.0.0.1", PBX_SIP_PORT=free_port(), PBX_ODBC_PASSWORD="trust-auth-ignores-it",
        PBX_EXTENSION_RING_SECONDS=5, PBX_VOICEMAIL_SPOOL=str(SPOOL), PBX_VOICEMAIL_MAILCMD=str(mailcmd),
        PBX_VOICEMAIL_FROM="pbx@example.com",
    ))
    with app.app_context():
        upgrade()
        write(render(app.config), work / "conf", force=True)
    shutil.rmtree(SPOOL / "default" / "2005", ignore_errors=True)
    lab("install-config", str(work / "conf"))
    lab("start")
    try:
        yield app, work
    finally:
        lab("stop")
        lab("reset-config")


@pytest.fixture(scope="module")
def office(asterisk):
    """2005 with voicemail and an address and no phone, DID 5550100 → 2005, group Lab with 2005, reason Lunch;
    the app's AMI listener running against the lab."""
    from pbxweb.ami.listener import Listener

    app, _ = asterisk
    with app.app_context():
        api = Api(app.test_client(), token_for("admin"))
        assert api.post("/api/extensions", json={"number": "2005", "name": "Lab Mailbox", "voicemail": True,
                                                 "email": "lab-mailbox@example.com"}).status_code == 201
        assert api.post("/api/dids", json={"number": "5550100", "destination_type": "extension",
                                           "destination": "2005"}).status_code == 201
        group = api.post("/api/groups", json={"name": "Lab", "members": [{"number": "2005"}]}).get_json()
        assert api.post("/api/pause-reasons", json={"name": "Lunch"}).status_code == 201
    listener = Listener(app, flush_interval=0.01, heartbeat_interval=0.5)
    greenlet = gevent.spawn(listener.run)
    yield api, group["id"]
    listener.stop()
    greenlet.join(timeout=5)


def mailbox_count(app) -> int:
    from pbxweb.ami import actions

    answer = actions.send(app.config, "MailboxCount", {"Mailbox": "2005@default"})
    assert answer.response == "Success", answer.get("Message")
    return int(answer.get("NewMessages"))


def stored_new_messages(app):
    from pbxweb.ext import db

    with app.app_context(), db.engine.connect() as conn:
        return conn.execute(sa.text("SELECT voicemail_new FROM pbx_extension_status WHERE number = '2005'")).scalar()


def signed_in_admin(app):
    from pbxweb.auth.service import create_user

    with app.app_context():
        user, _ = create_user("lab-admin", "admin", "correct horse battery")
    browser = signed_in(app, user)
    return browser


def test_a_caller_leaves_a_message_it_plays_in_the_browser_and_deleting_clears_the_light(asterisk, office):
    app, work = asterisk
    assert mailbox_count(app) == 0
    scenario = work / "caller.xml"
    scenario.write_text(CALLER.replace("PCAP", str(PCAP)))
    sipp = subprocess.run(
        ["sipp", "-sf", str(scenario), "-s", "5550100", "-i", "127.0.0.1", "-p", str(free_port()),
         "-mp", str(free_port()), "-m", "1", "-timeout", "60s", "-timeout_error", "-nostdin",
         f"127.0.0.1:{app.config['PBX_SIP_PORT']}"],
        capture_output=True, text=True, timeout=90,
    )
    assert sipp.returncode == 0, sipp.stdout[-2000:] + sipp.stderr[-2000:]
    assert until(lambda: mailbox_count(app) == 1, timeout=20)
    assert until(lambda: stored_new_messages(app) == 1, timeout=10)  # MessageWaiting → live state

    browser = signed_in_admin(app)
    page = browser.get("/voicemail/2005")
    assert page.status_code == 200 and "0612345678" in page.get_data(as_text=True)
    audio = browser.get("/voicemail/2005/INBOX/0000.wav")
    assert audio.status_code == 200 and audio.mimetype == "audio/wav" and audio.data[:4] == b"RIFF"
    assert browser.get("/voicemail/2005/INBOX/0000.wav", headers={"Range": "bytes=0-3"}).status_code == 206
    mails = [p.read_text(errors="replace") for p in work.glob("mail-*.eml")]
    assert mails and "lab-mailbox@example.com" in mails[0] and "attachment" in mails[0].lower()

    assert browser.post("/voicemail/2005/INBOX/0000/delete").status_code == 200
    assert list((SPOOL / "default" / "2005" / "INBOX").glob("msg0000.*")) == []
    from pbxweb.ami import outbox

    assert outbox.drain(app) == 1  # VoicemailRefresh: Asterisk recounts the folder
    assert until(lambda: mailbox_count(app) == 0, timeout=10)
    assert until(lambda: stored_new_messages(app) == 0, timeout=10)


def test_a_pause_reason_reaches_asterisk_and_its_queue_log(asterisk, office):
    app, _ = asterisk
    api, group_id = office
    from pbxweb.ami import actions
    from pbxweb.ext import db

    actions.send(app.config, "QueueStatus", {"Queue": f"extgroup_{group_id}"})  # loads the realtime queue

    def member_and_log():
        with app.app_context(), db.engine.connect() as conn:
            paused = conn.execute(sa.text("SELECT paused FROM asterisk_queue_members WHERE interface = 'PJSIP/2005'")).scalar()
            log = conn.execute(sa.text("SELECT event, data1 FROM queue_log WHERE agent LIKE '%2005%' "
                                       "OR agent = 'Lab Mailbox' ORDER BY id")).all()
        return paused, [tuple(row) for row in log]

    with app.app_context():
        assert api.post("/api/pause", json={"extension": "2005", "reason": "Lunch"}).status_code == 202
    assert until(lambda: member_and_log()[0] == 1 and ("PAUSE", "Lunch") in member_and_log()[1], timeout=10), member_and_log()
    with app.app_context():
        assert api.post("/api/pause", json={"extension": "2005", "paused": False}).status_code == 202
    assert until(lambda: member_and_log()[0] == 0 and any(e == "UNPAUSE" for e, _ in member_and_log()[1]), timeout=10)
