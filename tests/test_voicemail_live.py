"""The message light on the dashboard: AMI `MessageWaiting` and `MailboxCount` → live state → the extension's
row and presence card. The AMI messages are shaped as Asterisk 22's source writes them (manager.c
action_mailboxcount, the MWI state's MessageWaiting event); the lab test (tests/asterisk/) checks them for real."""

import gevent
import pytest

from pbxweb.ami.protocol import Message
from pbxweb.live.state import LiveState, apply_event, state_from_snapshot

from .conftest import until
from .test_listener import ami_config, start_listener, statuses  # noqa: F401 — fixtures and helpers


def message_waiting(mailbox="1001@default", new="1", old="0", **channel):
    # Left by a caller, the event carries the caller's channel too: hostile text, never used.
    return Message([("Event", "MessageWaiting"), ("Privilege", "call,all"), *channel.items(), ("Mailbox", mailbox),
                    ("Waiting", "1" if new != "0" else "0"), ("New", new), ("Old", old)])


def mailbox_count(mailbox="1001@default", new="2", old="1", action_id="mbc-1"):
    return Message([("Response", "Success"), ("ActionID", action_id), ("Message", "Mailbox Message Count"),
                    ("Mailbox", mailbox), ("UrgMessages", "0"), ("NewMessages", new), ("OldMessages", old)])


def test_a_message_left_lights_the_extensions_mailbox():
    state = LiveState()
    changed = apply_event(state, message_waiting(new="1", Channel="PJSIP/trunk-00000001", CallerIDName="<script>"))
    assert changed.extensions == {"1001"}
    assert (state.extensions["1001"].mailbox.new, state.extensions["1001"].mailbox.old) == (1, 0)


def test_a_message_heard_or_deleted_puts_the_light_out():
    state = LiveState()
    apply_event(state, message_waiting(new="1"))
    apply_event(state, message_waiting(new="0", old="1"))
    assert (state.extensions["1001"].mailbox.new, state.extensions["1001"].mailbox.old) == (0, 1)


@pytest.mark.parametrize("mailbox", ["", "1001", "abc@default", "1001@default\r\nEvent: x", "1@default"])
def test_a_mailbox_that_is_not_an_extensions_is_ignored(mailbox):
    state = LiveState()
    assert not apply_event(state, message_waiting(mailbox=mailbox)) and state.extensions == {}


def test_the_snapshot_counts_each_mailbox_and_ignores_refusals():
    refused = Message([("Response", "Error"), ("ActionID", "mbc-2"), ("Message", "Mailbox not specified")])
    state = state_from_snapshot([], [], [], [], mailbox_counts=[mailbox_count(new="2", old="1"), refused])
    assert (state.extensions["1001"].mailbox.new, state.extensions["1001"].mailbox.old) == (2, 1)
    assert list(state.extensions) == ["1001"]


def raw(message: Message) -> bytes:
    return "".join(f"{k}: {v}\r\n" for k, v in message.headers).encode() + b"\r\n"


def test_new_messages_reach_the_card_from_the_snapshot_and_then_from_events(api, db, ami_config, start_listener, client):
    api.post("/api/extensions", json={"number": "1001", "name": "Ann", "voicemail": True})
    ami_config.responses["MailboxCount"] = ("mbc-1", [raw(mailbox_count(new="2", old="0"))])
    start_listener()
    assert until(lambda: (row := statuses(db).get("1001")) is not None and row.voicemail_new == 2)
    assert [m.get("Mailbox") for m in ami_config.actions("MailboxCount")] == ["1001@default"]
    ami_config.push(raw(message_waiting(new="3", old="0")))
    assert until(lambda: statuses(db)["1001"].voicemail_new == 3)
    body = api.get("/api/extensions/status").get_json()["extensions"][0]
    assert body["voicemail_new"] == 3

    from pbxweb.waiting_calls import panels
    from pbxweb.models import User
    from pbxweb.ext import db as _db

    admin = _db.session.query(User).filter_by(role="admin").first()
    with api.client.application.test_request_context():
        from flask import g

        g.user = admin
        html = panels.changes(admin, {"extensions": ["1001"]}, panels.presence_view({}), frozenset({"1001"}))
    assert 'aria-label="3 new voicemail messages"' in html
