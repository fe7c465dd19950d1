"""Voicemail and pausing with a reason on the real Asterisk, through the shared lab harness (conftest.py).

The harness gives extension 2005 (voicemail on, e-mail lab-mailbox@example.com, no phone), DID 5550100 → 2005,
group Mailbox (2005 alone), the pause reason "Lunch"; its rendered voicemail.conf mails through a script that
keeps each e-mail in the session's workdir, and the app reads the lab's spool (PBX_VOICEMAIL_SPOOL).
"""

import time

import pytest
import sqlalchemy as sa

from .conftest import LAB_SPOOL, wait_for

pytestmark = pytest.mark.asterisk

MAILBOX = "2005@default"


def mailbox_count(lab) -> tuple[int, int]:
    """(new, old) as Asterisk counts the mailbox's folders (AMI MailboxCount)."""
    [answer] = lab.ami_action("MailboxCount", Mailbox=MAILBOX)
    assert answer["Response"] == "Success", answer
    return int(answer["NewMessages"]), int(answer["OldMessages"])


def stored_new_messages(lab):
    """The count the app's listener stored from AMI (MessageWaiting), which the pages show."""
    with lab.engine.connect() as conn:
        return conn.execute(sa.text("SELECT voicemail_new FROM pbx_extension_status WHERE number = '2005'")).scalar()


def test_a_caller_leaves_a_message_that_plays_in_the_browser_is_mailed_and_deleting_it_clears_the_count(lab):
    assert mailbox_count(lab) == (0, 0)
    with lab.call("voicemail") as record:
        record.notes["story"] = ("0612340010 calls DID 5550100 (extension 2005: voicemail on, no phone); the Dial "
                                 "finds no contact, VoiceMail(2005@default,u) answers; the caller speaks 28 s "
                                 "(sipp plays g711a.pcap four times), past the greeting, and hangs up")
        caller = lab.caller_leaves_message(lab.dids["2005"], "0612340010", log="voicemail")
        assert caller.wait(timeout=60) == 0, lab.log_tail()
    assert wait_for(lambda: mailbox_count(lab) == (1, 0), 20, "MailboxCount 2005@default: 1 new")
    waiting = [e for e in record.events("MessageWaiting") if e.get("Mailbox") == MAILBOX]
    assert waiting and waiting[-1]["New"] == "1", record.events("MessageWaiting")
    wait_for(lambda: stored_new_messages(lab) == 1, 10, "the app storing 1 new message for 2005")

    browser = lab.browser()
    status, page, _ = browser.get("/voicemail/2005")
    assert status == 200 and "0612340010" in page.decode()
    status, audio, headers = browser.get("/voicemail/2005/INBOX/0000.wav")
    assert status == 200 and headers.get_content_type() == "audio/wav" and audio[:4] == b"RIFF"
    assert len(audio) > 4 * 16000  # seconds of speech after the beep, as 16-bit PCM at 8 kHz
    status, part, headers = browser.get("/voicemail/2005/INBOX/0000.wav", headers={"Range": "bytes=0-3"})
    assert status == 206 and part == b"RIFF" and headers["Content-Range"].startswith("bytes 0-3/")

    # Asterisk's own mailer ran the rendered mailcmd: to the extension's address, the message attached.
    mails = wait_for(lambda: [p.read_text(errors="replace") for p in lab.workdir.glob("mail-*.eml")], 10,
                     "the voicemail e-mail")
    [mail] = mails
    assert "To: " in mail and "lab-mailbox@example.com" in mail and "pbx@example.com" in mail
    assert 'Content-Disposition: attachment; filename="msg0000.' in mail

    status, _, _ = browser.post("/voicemail/2005/INBOX/0000/delete")
    assert status == 200
    assert list((LAB_SPOOL / "default" / "2005" / "INBOX").glob("msg0000.*")) == []
    # The delete sent VoicemailRefresh (the outbox, after commit): Asterisk recounts and says so.
    wait_for(lambda: mailbox_count(lab) == (0, 0), 10, "MailboxCount back to 0")
    wait_for(lambda: stored_new_messages(lab) == 0, 10, "the app storing 0 new messages for 2005")
    status, page, _ = browser.get("/voicemail/2005")
    assert status == 200 and "0612340010" not in page.decode()


def member_row(lab, number: str) -> dict:
    with lab.engine.connect() as conn:
        row = conn.execute(sa.text("SELECT paused, reason_paused FROM asterisk_queue_members WHERE queue_name = :q "
                                   "AND interface = :i"), {"q": f"extgroup_{lab.groups['Mailbox']}",
                                                            "i": f"PJSIP/{number}"}).mappings().one()
    return dict(row)


def pause_log(lab, after_id: int) -> list[tuple]:
    return [(r["queuename"], r["agent"], r["event"], r["data1"]) for r in lab.rows("queue_log", after_id)
            if r["event"] in ("PAUSE", "UNPAUSE")]


def test_a_pause_with_a_reason_is_written_by_asterisk_into_the_member_row_and_the_queue_log(lab):
    queue = f"extgroup_{lab.groups['Mailbox']}"
    lab.ami_action("QueueStatus", Queue=queue)  # a realtime queue is loaded at its first lookup
    log_from = lab.last_id("queue_log")
    lab.must("POST", "/api/pause", {"extension": "2005", "reason": "Lunch", "group_id": lab.groups["Mailbox"]})
    wait_for(lambda: member_row(lab, "2005")["paused"] == 1, 10, "paused = 1 in 2005's member row")
    assert wait_for(lambda: pause_log(lab, log_from), 10, "a PAUSE row") == [(queue, "2005 Lab Mailbox", "PAUSE", "Lunch")]
    # Asterisk saw a reason_paused value (the marker row) when it loaded app_queue, so it writes the reason too.
    assert member_row(lab, "2005")["reason_paused"] == "Lunch"

    lab.must("POST", "/api/pause", {"extension": "2005", "paused": False, "group_id": lab.groups["Mailbox"]})
    wait_for(lambda: member_row(lab, "2005")["paused"] == 0, 10, "paused = 0 in 2005's member row")
    time.sleep(1)
    assert pause_log(lab, log_from)[-1][2] == "UNPAUSE"
    assert member_row(lab, "2005")["reason_paused"] == ""  # what Asterisk writes at an unpause
