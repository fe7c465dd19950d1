"""A call's story from its CDR legs and queue log rows, as plain data: the rows are shaped as Asterisk 22 writes
them (queue log fields per app_queue.c, member names as the realtime mapping writes `membername`)."""

from datetime import datetime, timedelta

import pytest

from pbxweb.cdr.service import Leg, QueueEvent, build_call, describe
from pbxweb.cdr.story import member_number, tell

T0 = datetime(2026, 11, 30, 9, 0, 0)
NAMES = {"Lab 2002": {"2002"}, "Lab 2003": {"2003"}}
CALLER = "PJSIP/provider-00000010"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def ev(seconds, event, queue="extgroup_1", agent="NONE", *data, callid="1700000000.10"):
    fields = (list(data) + [""] * 4)[:4]
    return QueueEvent(at(seconds), callid, queue, agent, event, *fields)


def leg(start, *, dst="s", channel=CALLER, dstchannel="", lastapp="Queue", lastdata="extgroup_1,t,,,60",
        disposition="ANSWERED", duration=10, billsec=10, src="0612345678", id=None):
    """A leg as the shipped dialplan makes it: the caller is answered before Queue(), so a leg to a member
    that only rang still says ANSWERED with billable seconds."""
    return Leg(id or int(start * 10) + 1, "1700000000.10", at(start), at(start + duration), src, dst,
               f'"Caller" <{src}>', channel, dstchannel, lastapp, lastdata, disposition, duration, billsec)


def queue_legs(duration=40, billsec=40):
    return [leg(0, dstchannel="PJSIP/2003-00000011", duration=duration, billsec=billsec),
            leg(0, dstchannel="PJSIP/2002-00000012", duration=duration, billsec=billsec, id=2)]


def story(legs, events, names=NAMES):
    return tell(sorted(legs, key=lambda l: (l.start, l.id)), events, names)


def test_a_member_who_answered_is_who_answered_with_the_wait_and_talk_asterisk_logged():
    told = story(queue_legs(), [ev(0, "ENTERQUEUE", "extgroup_1", "NONE", "", "0612345678", "1"),
                                ev(5, "RINGNOANSWER", "extgroup_1", "Lab 2003", "5000"),
                                ev(7, "CONNECT", "extgroup_1", "Lab 2002", "7", "1700000007.12", "2"),
                                ev(37, "COMPLETECALLER", "extgroup_1", "Lab 2002", "7", "30", "1")])
    assert (told.outcome, told.answered_by, told.wait, told.talk, told.groups) == ("answered", "2002", 7, 30, [1])
    assert told.position is None and not told.picked_up


def test_a_caller_who_hung_up_while_waiting_is_abandoned_though_every_leg_says_answered():
    told = story(queue_legs(12, 12), [ev(0, "ENTERQUEUE", "extgroup_1", "NONE", "", "0612345678", "2"),
                                      ev(12, "ABANDON", "extgroup_1", "NONE", "2", "2", "12")])
    assert (told.outcome, told.answered_by, told.wait, told.talk, told.position) == ("abandoned", None, 12, None, 2)


def test_a_caller_past_the_groups_wait_limit_timed_out():
    told = story(queue_legs(60, 60), [ev(0, "ENTERQUEUE", "extgroup_3", "NONE", "", "0612345678", "1"),
                                      ev(60, "EXITWITHTIMEOUT", "extgroup_3", "NONE", "1", "1", "60")])
    assert (told.outcome, told.answered_by, told.wait, told.groups) == ("timeout", None, 60, [3])


def test_a_timeout_that_goes_on_to_a_mailbox_ends_in_voicemail():
    legs = queue_legs(60, 60) + [leg(60, lastapp="VoiceMail", lastdata="2003@default,u", duration=20, billsec=20, id=9)]
    told = story(legs, [ev(0, "ENTERQUEUE"), ev(60.2, "EXITWITHTIMEOUT", "extgroup_1", "NONE", "1", "1", "60")])
    assert (told.outcome, told.answered_by) == ("voicemail", None)


def test_a_caller_redirected_to_another_group_is_redirected_then_what_happened_there():
    events = [ev(0, "ENTERQUEUE", "extgroup_1"), ev(5, "ABANDON", "extgroup_1", "NONE", "1", "1", "5"),
              ev(6, "ENTERQUEUE", "extgroup_2"), ev(9, "CONNECT", "extgroup_2", "Lab 2003", "3", "17.3", "3"),
              ev(29, "COMPLETEAGENT", "extgroup_2", "Lab 2003", "3", "20", "1")]
    told = story(queue_legs(29, 29), events)
    assert (told.outcome, told.final_outcome, told.answered_by) == ("redirected", "answered", "2003")
    assert (told.wait, told.talk, told.groups, told.position) == (9, 20, [1, 2], None)
    assert [v.ended for v in told.visits] == ["redirected", "answered"]


def test_a_caller_redirected_to_a_group_who_then_hung_up_is_redirected_then_abandoned():
    events = [ev(0, "ENTERQUEUE", "extgroup_1"), ev(5, "ABANDON", "extgroup_1", "NONE", "1", "1", "5"),
              ev(6, "ENTERQUEUE", "extgroup_2"), ev(10, "ABANDON", "extgroup_2", "NONE", "1", "1", "4")]
    told = story(queue_legs(10, 10), events)
    assert (told.outcome, told.final_outcome, told.answered_by, told.wait, told.position) == (
        "redirected", "abandoned", None, 10, 1)


def test_a_caller_redirected_to_an_extension_is_answered_by_that_extension():
    legs = queue_legs(5, 5) + [leg(5, dst="2003", dstchannel="PJSIP/2003-00000020", lastapp="Dial",
                                   lastdata="PJSIP/2003,25", duration=30, billsec=25, id=9)]
    told = story(legs, [ev(0, "ENTERQUEUE"), ev(5.4, "ABANDON", "extgroup_1", "NONE", "1", "1", "5")])
    assert (told.outcome, told.final_outcome, told.answered_by, told.wait, told.talk) == (
        "redirected", "answered", "2003", 10, 25)


@pytest.mark.parametrize("left", [[], [ev(9.5, "ABANDON", "extgroup_1", "NONE", "1", "1", "9")]],
                         ids=["nothing under the caller's uniqueid (Asterisk 22: the ABANDON is another's)",
                              "logged as the caller abandoning"])
def test_a_pick_up_from_the_dashboard_is_answered_by_the_phone_that_picked_up(left):
    """Originate to 2002's phone, then Bridge: no CONNECT; the agent's own leg, answered at 9 s, is the answer
    (the queue legs still point at the member whose phone was ringing)."""
    legs = queue_legs(9, 9) + [leg(4, src="2002", dst="s", channel="PJSIP/2002-00000013", dstchannel="",
                                   lastapp="Bridge", lastdata=CALLER, duration=35, billsec=30, id=9)]
    told = story(legs, [ev(0, "ENTERQUEUE"), ev(5, "RINGNOANSWER", "extgroup_1", "Lab 2003", "5000"), *left])
    assert (told.outcome, told.answered_by, told.picked_up, told.wait, told.talk) == ("answered", "2002", True, 9, 30)


def test_a_pick_up_that_rang_unanswered_answers_nothing():
    legs = queue_legs(12, 12) + [leg(4, src="2002", channel="PJSIP/2002-00000013", lastapp="Bridge", lastdata=CALLER,
                                     disposition="NO ANSWER", duration=8, billsec=0, id=9)]
    told = story(legs, [ev(0, "ENTERQUEUE"), ev(12, "ABANDON", "extgroup_1", "NONE", "1", "1", "12")])
    assert (told.outcome, told.answered_by) == ("abandoned", None)


def test_a_member_name_is_read_among_the_phones_the_call_rang():
    names = {"Reception": {"2002", "2005"}, "Ann": {"2006"}}
    rang_2002_2003, rang_2003 = queue_legs(), queue_legs()[:1]
    assert member_number("Reception", names, rang_2002_2003) == "2002"
    assert member_number("Reception", names, rang_2003) is None  # two of that name, neither rang: nobody
    assert member_number("Ann", names, rang_2002_2003) is None  # the name is another's now: not who answered
    assert member_number("Ann", names) == "2006"  # no call to go by (the agents' report): the one of that name
    assert member_number("PJSIP/2004", {}, []) == "2004"  # log_membername_as_agent off: the interface


def test_a_member_is_known_by_the_number_its_name_starts_with_whatever_it_is_called_now():
    names = {"Reception": {"2002", "2005"}}
    assert member_number("2005 Reception", names, queue_legs()) == "2005"
    assert member_number("2002 Ann Martin", {}) == "2002"


def test_a_call_the_queue_log_does_not_know_has_no_story():
    assert story(queue_legs(), []) is None
    assert story(queue_legs(), [ev(0, "PAUSE", "extgroup_1", "Lab 2002", "lunch", callid="NONE")]) is None


def call(legs, events):
    return build_call("1700000000.10", legs, events=events, names=NAMES)


@pytest.mark.parametrize("events,legs,words", [
    ([ev(0, "ENTERQUEUE"), ev(7, "CONNECT", "extgroup_1", "Lab 2002", "7", "x", "2")], queue_legs(), "Answered by 2002 after 7 s"),
    ([ev(0, "ENTERQUEUE"), ev(12, "ABANDON", "extgroup_1", "NONE", "2", "2", "12")], queue_legs(12, 12),
     "Hung up after 12 s waiting (position 2)"),
    ([ev(0, "ENTERQUEUE"), ev(60, "EXITWITHTIMEOUT", "extgroup_1", "NONE", "1", "1", "60")], queue_legs(), "Timed out after 60 s"),
    ([ev(0, "ENTERQUEUE"), ev(5, "ABANDON", "extgroup_1", "NONE", "1", "1", "5"), ev(6, "ENTERQUEUE", "extgroup_2"),
      ev(9, "CONNECT", "extgroup_2", "Lab 2003", "3", "x", "3")], queue_legs(), "Redirected → Support, answered by 2003"),
])
def test_the_call_log_says_the_outcome_in_words(events, legs, words):
    assert describe(call(legs, events), {1: "Sales", 2: "Support"}) == words


def test_a_queue_call_without_queue_log_rows_keeps_the_cdr_reading_marked_as_such():
    built = call(queue_legs(), [])
    assert (built.source, built.outcome, built.answered_by, built.groups) == ("cdr", "answered", "2003", [1])
    assert call(queue_legs(), [ev(0, "ENTERQUEUE"), ev(7, "CONNECT", "extgroup_1", "Lab 2002", "7")]).source == "queue_log"


def test_a_call_that_ended_in_a_mailbox_says_voicemail_not_answered():
    legs = [leg(0, src="0612345678", dst="2003", dstchannel="PJSIP/2003-00000020", lastapp="Dial", lastdata="PJSIP/2003,25",
                disposition="NO ANSWER", duration=25, billsec=0),
            leg(25, dst="2003", lastapp="VoiceMail", lastdata="2003@default,u", duration=20, billsec=20, id=9)]
    built = call(legs, [])
    assert (built.outcome, built.answered_by, built.disposition) == ("voicemail", None, "ANSWERED")
