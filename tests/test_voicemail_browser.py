"""The mailbox and the pause control in a real browser, served as in production (gunicorn's gevent worker
with the listener inside, the test AMI server as Asterisk), with screenshots at desktop and phone width."""

import time

import pytest

from .conftest import DESKTOP, PHONE, until
from .test_voicemail_messages import WAV, leave


@pytest.fixture
def voicemail(api, site, tmp_path, monkeypatch):
    """alice's extension 1002 has voicemail and three messages in a spool folder gunicorn is told of; the
    reasons Lunch, Meeting and After-call work."""
    spool = tmp_path / "spool"
    monkeypatch.setenv("PBX_VOICEMAIL_SPOOL", str(spool))
    api.patch("/api/extensions/1002", json={"voicemail": True})
    leave(spool, "1002", "INBOX", 0, '"Mary Major" <0612345678>', 1795771000, duration=42)
    leave(spool, "1002", "INBOX", 1, '"<img src=x onerror=alert(1)>" <0687654321>', 1795772000, duration=9)
    leave(spool, "1002", "Old", 0, "unknown", 1795700000, duration=75)
    for name in ("Lunch", "Meeting", "After-call work"):
        api.post("/api/pause-reasons", json={"name": name})
    return spool


def test_the_mailbox_lists_plays_and_deletes_and_asterisk_is_told(voicemail, server, person, ami_server, screenshots):
    page, _ = person(server, "alice")
    page.goto(f"{server}/voicemail/1002")
    rows = page.locator(".vm-message")
    assert rows.count() == 3 and "<img" in rows.nth(0).inner_text()  # the caller's text, shown as text
    duration = page.evaluate("""() => new Promise((done, failed) => {
        const audio = document.querySelector('.vm-message audio');
        audio.onloadedmetadata = () => done(audio.duration); audio.onerror = () => failed(audio.error.code);
        audio.preload = 'metadata'; audio.load(); })""")
    assert duration == pytest.approx(len(WAV[44:]) / 16000, abs=0.01)  # chromium decoded the served WAV
    ranged = page.request.get(f"{server}/voicemail/1002/INBOX/0000.wav", headers={"Range": "bytes=4-7"})
    assert ranged.status == 206 and ranged.headers["content-type"] == "audio/wav"
    page.screenshot(path=str(screenshots / "voicemail-mailbox-desktop.png"), full_page=True)
    page.set_viewport_size(PHONE)
    page.screenshot(path=str(screenshots / "voicemail-mailbox-phone.png"), full_page=True)
    page.set_viewport_size(DESKTOP)

    page.locator(".vm-message", has_text="0612345678").locator("button", has_text="Delete").click()
    assert "0612345678" in page.inner_text("#confirm-question")
    page.click("#confirm-dialog [data-answer=yes]")
    page.wait_for_selector("#msg-INBOX-0000", state="detached", timeout=5000)
    assert list((voicemail / "default" / "1002" / "INBOX").glob("msg0000.*")) == []
    assert until(lambda: [(m.get("Context"), m.get("Mailbox")) for m in ami_server.actions("VoicemailRefresh")]
                 == [("default", "1002")])


def test_an_agent_pauses_from_the_dashboard_and_the_card_says_so(voicemail, server, person, ami_server, screenshots):
    page, _ = person(server, "alice")
    page.select_option(".pause-form select[name=reason]", "Lunch")
    page.click(".pause-form button[value=true]")
    notice = page.wait_for_selector("#pause-notice .notice", timeout=5000)
    assert notice.inner_text() == "You are paused in every group (Lunch)."
    (sent,) = ami_server.actions("QueuePause")
    assert (sent["Interface"], sent["Paused"], sent["Reason"], sent.get("Queue")) == ("PJSIP/1002", "true", "Lunch", None)
    # Asterisk answers with QueueMemberPause (as the lab's capture, its reason then the one sent).
    twelve_minutes_ago = str(int(time.time()) - 12 * 60).encode()
    ami_server.push(b"Event: QueueMemberPause\r\nPrivilege: agent,all\r\nQueue: extgroup_1\r\nMemberName: 1002\r\n"
                    b"Interface: PJSIP/1002\r\nStateInterface: PJSIP/1002\r\nMembership: realtime\r\nPenalty: 0\r\n"
                    b"CallsTaken: 1\r\nLastCall: 0\r\nLastPause: " + twelve_minutes_ago + b"\r\nLoginTime: 1795771559\r\nInCall: 0\r\n"
                    b"Status: 1\r\nPaused: 1\r\nPausedReason: Lunch\r\nRinginuse: 1\r\nWrapuptime: 0\r\n\r\n")
    card = page.wait_for_selector("#ext-card-1002 .paused", timeout=5000)
    assert card.inner_text() == "Paused — Lunch, 12 min"
    # Two messages left meanwhile: Asterisk's MWI event lights the card.
    ami_server.push(b"Event: MessageWaiting\r\nPrivilege: call,all\r\nMailbox: 1002@default\r\nWaiting: 1\r\n"
                    b"New: 2\r\nOld: 0\r\n\r\n")
    assert page.wait_for_selector("#ext-card-1002 .badge.mail", timeout=5000).inner_text() == "✉ 2 new"
    page.screenshot(path=str(screenshots / "pause-control-desktop.png"))
    page.set_viewport_size(PHONE)
    page.screenshot(path=str(screenshots / "pause-control-phone.png"), full_page=True)
    page.set_viewport_size(DESKTOP)
    page.click(".pause-form button[value=false]")
    page.wait_for_selector("#pause-notice .notice >> text=You are back in every group.", timeout=5000)


def test_a_manager_types_whom_to_pause_picks_them_and_asterisk_is_told(voicemail, server, person, ami_server, screenshots):
    """Whom to pause is a picker that asks as one types (at 20,000 extensions a select of them all was a
    megabyte of dashboard)."""
    from pbxweb.auth.service import create_user

    create_user("mia", "manager", "correct horse battery")
    page, _ = person(server, "mia")
    who = page.locator(".pause-form input[name=extension]")
    assert who.input_value() == ""  # a manager with no phone of her own names someone
    who.press_sequentially("100")
    page.wait_for_selector('#pause-who-options option[value="1001"]', state="attached", timeout=5000)
    assert page.locator('#pause-who-options option[value="1001"]').text_content() == "1001 — Agent 1001"
    who.fill("1001")
    page.select_option(".pause-form select[name=reason]", "Meeting")
    page.screenshot(path=str(screenshots / "pause-others-desktop.png"))
    page.set_viewport_size(PHONE)
    page.screenshot(path=str(screenshots / "pause-others-phone.png"), full_page=True)
    page.set_viewport_size(DESKTOP)
    page.click(".pause-form button[value=true]")
    notice = page.wait_for_selector("#pause-notice .notice", timeout=5000)
    assert notice.inner_text() == "1001 is paused in every group (Meeting)."
    (sent,) = ami_server.actions("QueuePause")
    assert (sent["Interface"], sent["Paused"], sent["Reason"]) == ("PJSIP/1001", "true", "Meeting")
