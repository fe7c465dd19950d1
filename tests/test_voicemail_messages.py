"""Voicemail messages in the browser, from a spool folder laid out as Asterisk's app_voicemail lays it out
(`<spool>/<context>/<mailbox>/INBOX/msg0000.txt` + `msg0000.wav`): listed, played with range requests,
deleted with Asterisk told to recount; an agent their own mailbox, an admin any; no path leaves the spool."""

import pytest

from pbxweb.ami import outbox
from pbxweb.auth.service import create_user
from pbxweb.models import AmiOutbox
from .test_access import signed_in

# What app_voicemail writes for a message (Asterisk 22, file storage).
INFO = """;
; Message Information file
;
[message]
origmailbox={mailbox}
context=from-external
macrocontext=
exten={mailbox}
rdnis=unknown
priority=6
callerchan=PJSIP/provider-00000004
callerid={callerid}
origdate=Tue Dec  1 09:15:02 AM UTC 2026
origtime={origtime}
category=
msg_id={origtime}-00000004
flag=
duration={duration}
"""
# A RIFF/WAVE header and a little silence: enough for a browser and for byte ranges.
WAV = (b"RIFF" + (36 + 1600).to_bytes(4, "little") + b"WAVEfmt " + (16).to_bytes(4, "little")
       + (1).to_bytes(2, "little") + (1).to_bytes(2, "little") + (8000).to_bytes(4, "little")
       + (16000).to_bytes(4, "little") + (2).to_bytes(2, "little") + (16).to_bytes(2, "little")
       + b"data" + (1600).to_bytes(4, "little") + b"\0" * 1600)


def leave(spool, mailbox, folder, number, callerid, origtime, duration=7):
    directory = spool / "default" / mailbox / folder
    directory.mkdir(parents=True, exist_ok=True)
    base = directory / f"msg{number:04d}"
    base.with_suffix(".txt").write_text(INFO.format(mailbox=mailbox, callerid=callerid, origtime=origtime, duration=duration))
    for suffix, data in ((".wav", WAV), (".WAV", b"wav49"), (".gsm", b"gsm")):
        base.with_suffix(suffix).write_bytes(data)
    return base


@pytest.fixture
def spool(app, tmp_path):
    folder = tmp_path / "voicemail"
    folder.mkdir()
    app.config["PBX_VOICEMAIL_SPOOL"] = str(folder)
    return folder


@pytest.fixture
def people(app, api):
    for number in ("1001", "1002"):
        api.post("/api/extensions", json={"number": number, "name": f"Agent {number}", "voicemail": True})
    users = {"admin": create_user("alice", "admin", "correct horse battery")[0],
             "own": create_user("olga", "agent", "correct horse battery", "1001")[0],
             "other": create_user("otto", "agent", "correct horse battery", "1002")[0]}
    browsers = {}
    for key, user in users.items():
        browser = signed_in(app, user)
        browsers[key] = browser
    return browsers


@pytest.fixture
def messages(spool):
    return {
        "older": leave(spool, "1001", "Old", 0, '"Mary Major" <0612345678>', 1795770000, duration=65),
        "newest": leave(spool, "1001", "INBOX", 1, '"<script>alert(1)</script>" <0687654321>', 1795772000),
        "first": leave(spool, "1001", "INBOX", 0, "unknown", 1795771000),
    }


def test_an_agent_lists_their_own_messages_newest_first(people, messages):
    page = people["own"].get("/voicemail/1001")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert text.index("0687654321") < text.index("Unknown number") < text.index("0612345678")
    assert "3 messages, 2 new" in text and "1:05" in text


def test_an_agents_voicemail_link_opens_their_own_mailbox(people, messages):
    assert people["own"].get("/voicemail").headers["Location"].endswith("/voicemail/1001")


def test_someone_elses_mailbox_is_not_found_for_an_agent_and_open_to_an_admin(people, messages):
    assert people["other"].get("/voicemail/1001").status_code == 404
    assert people["other"].get("/voicemail/1001/INBOX/0001.wav").status_code == 404
    assert people["other"].post("/voicemail/1001/INBOX/0001/delete").status_code == 404
    assert messages["newest"].with_suffix(".txt").exists()
    assert people["admin"].get("/voicemail/1001").status_code == 200
    assert "1002" in people["admin"].get("/voicemail").get_data(as_text=True)


def test_the_callers_text_from_a_message_file_is_shown_escaped(people, messages):
    text = people["own"].get("/voicemail/1001").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text


def test_a_message_plays_as_wav_with_range_requests(people, messages):
    whole = people["own"].get("/voicemail/1001/INBOX/0001.wav")
    assert whole.status_code == 200 and whole.mimetype == "audio/wav" and whole.data == WAV
    assert whole.headers["Accept-Ranges"] == "bytes"
    part = people["own"].get("/voicemail/1001/INBOX/0001.wav", headers={"Range": "bytes=0-3"})
    assert part.status_code == 206 and part.data == b"RIFF"
    assert part.headers["Content-Range"] == f"bytes 0-3/{len(WAV)}"


@pytest.mark.parametrize("path", ["/voicemail/1001/INBOX/..%2F..%2F1002%2FINBOX%2Fmsg0000.wav",
                                  "/voicemail/1001/..%2F..%2F1002%2FINBOX/0000.wav", "/voicemail/1001/INBOX/-1.wav",
                                  "/voicemail/1001/INBOX/00000.wav", "/voicemail/1001/Work/0000.wav",
                                  "/voicemail/..%2F1001/INBOX/0000.wav", "/voicemail/1001/INBOX/0000.txt"])
def test_no_path_leads_out_of_the_mailbox(people, messages, spool, path):
    leave(spool, "1002", "INBOX", 0, "1003", 1795772000)
    assert people["admin"].get(path).status_code == 404


def test_deleting_a_message_removes_its_files_and_asks_asterisk_to_recount(app, db, people, messages, ami_server):
    answer = people["own"].post("/voicemail/1001/INBOX/0001/delete", headers={"HX-Request": "true"})
    assert answer.status_code == 200 and answer.data == b""
    assert list(messages["newest"].parent.glob("msg0001.*")) == []
    assert messages["first"].with_suffix(".wav").exists()
    assert [(r.action, r.fields) for r in db.session.query(AmiOutbox)] == [
        ("VoicemailRefresh", {"Context": "default", "Mailbox": "1001"})]
    app.config.update(AMI_HOST="127.0.0.1", AMI_PORT=ami_server.port, AMI_USERNAME=ami_server.username,
                      AMI_SECRET=ami_server.secret)
    assert outbox.drain(app) == 1
    sent = ami_server.actions("VoicemailRefresh")
    assert [(m.get("Context"), m.get("Mailbox")) for m in sent] == [("default", "1001")]
    assert people["own"].post("/voicemail/1001/INBOX/0001/delete").status_code == 404


def test_without_asterisks_spool_folder_the_page_says_where_it_looked(app, people, tmp_path):
    app.config["PBX_VOICEMAIL_SPOOL"] = str(tmp_path / "nowhere")
    text = people["own"].get("/voicemail/1001").get_data(as_text=True)
    assert "is not on this one" in text and str(tmp_path / "nowhere") in text
