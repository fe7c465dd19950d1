"""Event → state, one rule at a time, with the events Asterisk 22 really sent."""

import pytest

from pbxweb.ami.protocol import Message
from pbxweb.live.state import LiveState, apply_contact_rows, apply_event, state_from_snapshot

from .ami_captures import answer, events


def replay(capture, state=None, until=None):
    state = state or LiveState()
    for event in events(capture):
        apply_event(state, event)
        if until and until(event, state):
            break
    return state


def event(name, **fields):
    return Message([("Event", name), *fields.items()])


def test_a_registered_phone_shows_registered_with_its_contact():
    state = replay("register.ami")
    for number in ("1001", "1002"):
        status = state.extensions[number]
        assert status.registration == "registered"
        assert status.device_state == "NOT_INUSE"
        assert status.contact.uri.startswith(f"sip:{number}@127.0.0.1:")
        assert status.contact.roundtrip_usec is not None


def test_an_unregistered_phone_goes_offline_and_comes_back():
    state = replay("unregister.ami", until=lambda e, s: e.event == "ContactStatus" and e.get("ContactStatus") == "Removed")
    assert state.extensions["1002"].registration == "offline"
    state = replay("unregister.ami")
    assert state.extensions["1002"].registration == "registered"


def test_an_unreachable_contact_makes_the_extension_unreachable():
    state = LiveState()
    apply_event(state, event("ContactStatus", URI="sip:1001@10.0.0.5:5060", ContactStatus="Reachable", AOR="1001"))
    apply_event(state, event("ContactStatus", URI="sip:1001@10.0.0.5:5060", ContactStatus="Unreachable", AOR="1001"))
    assert state.extensions["1001"].registration == "unreachable"


@pytest.mark.parametrize("device_state", ["NOT_INUSE", "INUSE", "RINGING", "RINGINUSE", "ONHOLD", "BUSY", "UNAVAILABLE", "INVALID"])
def test_every_device_state_is_followed(device_state):
    state = LiveState()
    changed = apply_event(state, event("DeviceStateChange", Device="PJSIP/1001", State=device_state))
    assert state.extensions["1001"].device_state == device_state and changed.extensions == {"1001"}


def test_queue_device_states_are_not_extensions():
    state = LiveState()
    apply_event(state, event("DeviceStateChange", Device="Queue:extgroup_1_avail", State="INUSE"))
    assert state.extensions == {}


def test_calls_in_progress_are_counted_per_extension_and_end_at_hangup():
    during = replay("call-basic.ami", until=lambda e, s: e.event == "BridgeEnter")
    assert len(during.extensions["1001"].channels) == 1 and len(during.extensions["1002"].channels) == 1
    after = replay("call-basic.ami")
    assert after.extensions["1001"].channels == set() and after.extensions["1002"].channels == set()


def test_a_call_record_event_is_signalled():
    state = LiveState()
    total = sum(apply_event(state, e).cdr for e in events("call-basic.ami"))
    assert total == 1


def test_a_caller_joining_a_queue_is_waiting_with_asterisks_time():
    state = replay("queue-abandon.ami", until=lambda e, s: e.event == "QueueCallerJoin")
    (caller,) = state.waiting.values()
    assert (caller.channel, caller.caller_number, caller.caller_name) == ("PJSIP/1001-00000002", "1001", "noanswer 1001")
    assert (caller.queue, caller.group_id, caller.position) == ("extgroup_1", 1, 1)
    assert caller.uniqueid == "1795772362.2" and caller.linkedid == "1795772362.2"
    assert caller.joined_at == pytest.approx(1795772362.789395)


@pytest.mark.parametrize("capture,leaving_event", [
    ("queue-abandon.ami", "QueueCallerAbandon"),
    ("queue-answered.ami", "AgentConnect"),
    ("queue-redirect.ami", "QueueCallerAbandon"),
])
def test_a_caller_who_leaves_answered_abandoned_or_redirected_is_no_longer_waiting(capture, leaving_event):
    state = replay(capture, until=lambda e, s: e.event == leaving_event)
    assert state.waiting == {}


def test_a_caller_picked_up_by_a_bridge_leaves_no_ghost():
    # Asterisk sends no QueueCallerLeave for this: the BridgeEnter of the caller's channel must do.
    state = replay("queue-pickup-bridge.ami", until=lambda e, s: e.event == "BridgeEnter")
    assert state.waiting == {}


def test_a_waiting_caller_who_hangs_up_is_removed():
    state = LiveState()
    apply_event(state, event("QueueCallerJoin", Uniqueid="1.1", Channel="PJSIP/1001-1", Queue="extgroup_1", Position="1"))
    apply_event(state, event("Hangup", Uniqueid="1.1", Channel="PJSIP/1001-1"))
    assert state.waiting == {}


def test_positions_stay_right_for_the_callers_still_waiting():
    state = LiveState()
    for n in (1, 2, 3):
        apply_event(state, event("QueueCallerJoin", Uniqueid=f"1.{n}", Channel=f"PJSIP/100{n}-1", Queue="extgroup_1",
                                 Position=str(n), Timestamp=f"100{n}.0"))
    apply_event(state, event("QueueCallerJoin", Uniqueid="2.1", Channel="PJSIP/1009-1", Queue="extgroup_2", Position="1"))
    changed = apply_event(state, event("QueueCallerLeave", Uniqueid="1.1", Queue="extgroup_1", Position="1"))
    assert {u: c.position for u, c in state.waiting.items()} == {"1.2": 1, "1.3": 2, "2.1": 1}
    assert changed.waiting == {"1.1", "1.2", "1.3"}


def test_a_pause_from_asterisk_is_followed_with_its_reason():
    pause = next(e for e in events("actions.ami") if e.event == "QueueMemberPause")
    state = LiveState()
    changed = apply_event(state, pause)
    membership = state.extensions["1002"].queues["extgroup_1"]
    assert membership.paused and membership.reason == "lab-break"
    assert changed.pauses == [("extgroup_1", "1002", True, "lab-break")]


def test_queue_member_status_tracks_in_call():
    state = replay("queue-answered.ami", until=lambda e, s: e.event == "QueueMemberStatus" and e.get("InCall") == "1")
    assert any(m.in_call for s in state.extensions.values() for m in s.queues.values())


def test_a_snapshot_builds_the_whole_picture():
    state = state_from_snapshot(
        device_states=answer("actions.ami", "devicestatelist-15"),
        contacts=answer("actions.ami", "pjsipshowcontacts-9"),
        queue_status=answer("queue-redirect.ami", "queuestatus-1"),
        channels=[],
        now=1000.0,
    )
    assert state.extensions["1001"].registration == "registered"
    assert state.extensions["1001"].contact.user_agent == "sipp-lab-phone-1001"
    assert state.extensions["1002"].device_state == "NOT_INUSE"
    (caller,) = state.waiting.values()
    assert caller.channel == "PJSIP/1001-00000008" and caller.joined_at == 998.0 and caller.position == 1


def test_events_that_answer_our_own_actions_are_not_deltas():
    listed = answer("actions.ami", "devicestatelist-15")
    state = LiveState()
    for e in listed:
        apply_event(state, e)
    assert state.extensions == {}


class ContactRow:
    """A ps_contacts row as Asterisk writes it (the columns the listener reads)."""

    def __init__(self, uri="sip:1001@10.0.0.5:5060^3Btransport=UDP", user_agent="Yealink T46U", expires_in=3600):
        self.uri, self.user_agent, self.expiration_time = uri, user_agent, str(int(NOW + expires_in))


NOW = 1_800_000_000.0


def test_a_contact_row_makes_an_extension_registered_before_any_ami_event():
    state = LiveState()
    changed = apply_contact_rows(state, "1001", [ContactRow()], NOW)
    assert changed.extensions == {"1001"}
    status = state.extensions["1001"]
    assert status.registration == "registered" and status.contact.user_agent == "Yealink T46U"
    assert status.contact.uri == "sip:1001@10.0.0.5:5060;transport=UDP"


def test_ami_reachability_applies_to_the_contact_the_row_made():
    state = LiveState()
    apply_contact_rows(state, "1001", [ContactRow()], NOW)
    apply_event(state, event("ContactStatus", URI="sip:1001@10.0.0.5:5060;transport=UDP", ContactStatus="Unreachable", AOR="1001"))
    assert len(state.extensions["1001"].contacts) == 1 and state.extensions["1001"].registration == "unreachable"
    apply_contact_rows(state, "1001", [ContactRow(user_agent="Yealink T46U 2")], NOW)  # a refresh
    assert state.extensions["1001"].registration == "unreachable"
    assert state.extensions["1001"].contact.user_agent == "Yealink T46U 2"


def test_a_deleted_or_expired_contact_row_takes_the_extension_offline():
    state = LiveState()
    apply_contact_rows(state, "1001", [ContactRow()], NOW)
    assert apply_contact_rows(state, "1001", [ContactRow(expires_in=-1)], NOW).extensions == {"1001"}
    assert state.extensions["1001"].registration == "offline"
    apply_contact_rows(state, "1001", [ContactRow()], NOW)
    apply_contact_rows(state, "1001", [], NOW)
    assert state.extensions["1001"].registration == "offline"


def test_rows_that_change_nothing_announce_nothing():
    state = LiveState()
    apply_contact_rows(state, "1001", [ContactRow()], NOW)
    assert not apply_contact_rows(state, "1001", [ContactRow()], NOW)
    assert not apply_contact_rows(state, "2002", [], NOW) and "2002" not in state.extensions
    assert not apply_contact_rows(state, "provider", [ContactRow()], NOW)


# --- outbound registrations: each attempt's outcome (Registry) -----------------------------------------------


def test_a_registration_to_a_host_that_does_not_answer_is_stored_as_asterisk_reported_it_with_its_time():
    state = replay("lab-registry-no-response.ami")
    [registry] = [e for e in events("lab-registry-no-response.ami") if e.event == "Registry"]
    [registration] = state.registrations.values()
    assert registration.client_uri == "sip:lab-silent@127.0.0.4:41161"
    assert registration.server_uri == "sip:127.0.0.4:41161"
    # PJSIP's Registry event carries no Cause: the reason ("No response received") is only in Asterisk's log.
    assert (registration.status, registration.cause) == ("Rejected", "")
    assert registration.at == float(registry["Timestamp"])


def test_a_refused_and_an_accepted_registration_are_stored_with_asterisks_words():
    assert [r.status for r in replay("lab-registry-rejected.ami").registrations.values()] == ["Rejected"]
    assert [r.status for r in replay("lab-registry-registered.ami").registrations.values()] == ["Registered"]


def test_the_last_outcome_of_a_registration_replaces_the_one_before_and_a_cause_is_kept_when_sent():
    state = replay("lab-registry-no-response.ami")
    changed = apply_event(state, event("Registry", ChannelType="PJSIP", Username="sip:lab-silent@127.0.0.4:41161",
                                       Domain="sip:127.0.0.4:41161", Status="Registered", Cause="Welcome back",
                                       Timestamp="1796097400.5"))
    assert changed.registrations == {"sip:lab-silent@127.0.0.4:41161"}
    [registration] = state.registrations.values()
    assert (registration.status, registration.cause, registration.at) == ("Registered", "Welcome back", 1796097400.5)


def test_a_registry_event_of_another_channel_driver_or_without_a_status_changes_nothing():
    state = LiveState()
    assert not apply_event(state, event("Registry", ChannelType="IAX2", Username="acct", Domain="x", Status="Registered"))
    assert not apply_event(state, event("Registry", ChannelType="PJSIP", Username="sip:a@b:5060", Domain="sip:b:5060"))
    assert state.registrations == {}
