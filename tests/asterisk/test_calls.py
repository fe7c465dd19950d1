"""Real calls on the real Asterisk with the shipped dialplan: what Asterisk records for each (queue log, CDR,
AMI, `queue show`), then what the app's call log makes of it.

Phones (see conftest): 2002 answers after 2 s of ringing, 2003 and 2004 only ring, 2001 only dials. Groups:
Sales (2002, 2003), Support (2003), Short (2003, max wait 5 s), Back office (2004); DIDs 5550101 → Sales,
5550102 → Support, 5550103 → Short; a trunk `provider` to a fake provider that answers after 2 s.

Each test asserts Asterisk's own record first. `expect_outcome` then asserts the app's reading of the call
(`outcome`, `answered_by`, `wait`, `talk`, `groups`, `position` on /api/cdr): those fields come from branch
h14-outcomes, so on a branch without it those last assertions fail until it is merged.
"""

import re
import time
from datetime import datetime, timezone

import pytest

from .conftest import wait_for

pytestmark = pytest.mark.asterisk


def caller_events(record, callid: str) -> list[tuple[str, str, str]]:
    """(queue, agent, event) of one caller, in the order Asterisk wrote them."""
    return [(r["queuename"], r["agent"], r["event"]) for r in record.queue_log if r["callid"] == callid]


def event(record, callid: str, name: str) -> dict:
    return next(r for r in record.queue_log if r["callid"] == callid and r["event"] == name)


SERVICE_LEVEL = re.compile(r"C:(\d+), A:(\d+), SL:([\d.]+)%, SL2:([\d.]+)% within (\d+)s")


def service_level(record, queue: str) -> dict:
    """`queue show`'s counters (since the queue was loaded) as numbers: they must stay readable, since the
    group report is checked against them."""
    match = SERVICE_LEVEL.search(record.queue_show[queue])
    assert match, record.queue_show[queue]
    completed, abandoned, sl, sl2, within = match.groups()
    return {"completed": int(completed), "abandoned": int(abandoned), "sl": float(sl), "sl2": float(sl2),
            "within": int(within)}


def expect_outcome(lab, linkedid: str, **expected):
    """The app's reading of a call on /api/cdr (fields of branch h14-outcomes). A (low, high) pair is a range
    of seconds: the phones' timing is only good to a second or so."""
    status, answer = lab.api("GET", "/api/cdr?limit=100")
    assert status == 200, answer
    call = next((c for c in answer["calls"] if c["linkedid"] == linkedid), None)
    assert call is not None, f"call {linkedid} not in /api/cdr"
    for name, want in expected.items():
        got = call.get(name)
        if isinstance(want, tuple):
            assert got is not None and want[0] <= got <= want[1], f"{name}: {got} not within {want}"
        else:
            assert got == want, f"{name}: {got!r}, expected {want!r}"


def no_caller_left_waiting(lab) -> None:
    """The dashboard's waiting callers, as the app's listener keeps them from AMI, end empty: no ghost."""
    def empty():
        _, answer = lab.api("GET", "/api/waiting-calls")
        return answer["waiting_calls"] == [] and not answer["stale"]
    wait_for(empty, 10, "no caller left on /api/waiting-calls")


def queue(lab, group: str) -> str:
    return f"extgroup_{lab.groups[group]}"


def test_an_outside_caller_on_a_did_is_answered_by_a_ringing_member(lab):
    with lab.call("answered", groups=["Sales"]) as record:
        record.notes["story"] = ("0612340001 calls DID 5550101 (Sales: 2002, 2003, ringall); 2002 rings 2 s and "
                                 "answers, 2003 rings until then; the caller hangs up 8 s after Asterisk answered")
        caller = lab.outside_call(lab.dids["Sales"], "0612340001", hang_up_after=8, log="answered")
        assert caller.wait(timeout=60) == 0
    leg = record.caller_leg()
    callid = leg["uniqueid"]
    sales = queue(lab, "Sales")
    # The queue log names the member by its membername: the extension's name as the app writes it.
    assert caller_events(record, callid) == [(sales, "NONE", "ENTERQUEUE"), (sales, "2002 Lab 2002", "CONNECT"),
                                             (sales, "2002 Lab 2002", "COMPLETECALLER")]
    enter = event(record, callid, "ENTERQUEUE")
    assert enter["data2"] == "0612340001"
    # Asterisk runs in Europe/Amsterdam: the queue log (queue_log_realtime_use_gmt) and the CDR (usegmtime)
    # are both written in UTC, so they agree with each other and with the clock of this test.
    entered, started = datetime.fromisoformat(enter["time"]), datetime.fromisoformat(leg["start"])
    assert abs((entered - started).total_seconds()) < 3
    assert abs((datetime.now(timezone.utc).replace(tzinfo=None) - entered).total_seconds()) < 120
    connect = event(record, callid, "CONNECT")
    assert 1 <= int(connect["data1"]) <= 4 and int(connect["data3"]) in (2, 3)  # waited ≈ rang ≈ 2 s
    # CDR: the caller's legs, each seen from its answered channel (the dialplan answers before Queue()).
    assert {r["dstchannel"].split("-")[0] for r in record.cdr} == {"PJSIP/2002", "PJSIP/2003"}
    assert all(r["linkedid"] == callid and r["channel"] == leg["channel"] for r in record.cdr)
    assert service_level(record, sales)["completed"] == 1
    no_caller_left_waiting(lab)
    expect_outcome(lab, callid, outcome="answered", answered_by="2002", wait=(1, 4), talk=(4, 8),
                   groups=[lab.groups["Sales"]])


def test_an_outside_caller_who_hangs_up_while_waiting_is_abandoned_at_their_position(lab):
    with lab.call("abandoned", groups=["Support"]) as record:
        record.notes["story"] = ("0612340002 calls DID 5550102 (Support: 2003); 2003 rings and never answers; "
                                 "the caller hangs up after 6 s")
        caller = lab.outside_call(lab.dids["Support"], "0612340002", hang_up_after=6, log="abandoned")
        assert caller.wait(timeout=60) == 0
    callid = record.caller_leg()["uniqueid"]
    support = queue(lab, "Support")
    events = caller_events(record, callid)
    assert events[0] == (support, "NONE", "ENTERQUEUE") and events[-1] == (support, "NONE", "ABANDON")
    assert not [e for e in events if e[2] == "CONNECT"]
    abandon = event(record, callid, "ABANDON")
    assert abandon["data1"] == "1" and abandon["data2"] == "1" and 5 <= int(abandon["data3"]) <= 7
    assert service_level(record, support)["abandoned"] >= 1
    no_caller_left_waiting(lab)
    expect_outcome(lab, callid, outcome="abandoned", answered_by=None, wait=(5, 7), talk=None, position=1,
                   groups=[lab.groups["Support"]])


def test_a_caller_past_the_groups_max_wait_times_out_and_is_hung_up(lab):
    with lab.call("timeout", groups=["Short"]) as record:
        record.notes["story"] = ("0612340003 calls DID 5550103 (Short: 2003, max wait 5 s); 2003 rings, nobody "
                                 "answers; Queue() returns after 5 s and the dialplan hangs up on the caller")
        caller = lab.outside_call(lab.dids["Short"], "0612340003", hang_up_after=None, log="timeout")
        assert caller.wait(timeout=60) == 0  # the caller got Asterisk's BYE
    callid = record.caller_leg()["uniqueid"]
    short = queue(lab, "Short")
    events = caller_events(record, callid)
    assert events[0] == (short, "NONE", "ENTERQUEUE") and events[-1] == (short, "NONE", "EXITWITHTIMEOUT")
    timeout = event(record, callid, "EXITWITHTIMEOUT")
    assert timeout["data1"] == "1" and 4 <= int(timeout["data3"]) <= 6
    no_caller_left_waiting(lab)
    expect_outcome(lab, callid, outcome="timeout", answered_by=None, wait=(4, 6), talk=None,
                   groups=[lab.groups["Short"]])


def test_a_caller_picked_up_from_the_dashboard_is_answered_by_the_one_who_picked_up(lab):
    with lab.call("pickup", groups=["Support"]) as record:
        record.notes["story"] = ("0612340004 calls DID 5550102 (Support: 2003); 2003 rings; the user of 2002 "
                                 "picks the caller up on the dashboard (POST /api/waiting-calls/<uniqueid>/pickup: "
                                 "Originate to 2002, then Bridge); 2002 rings 2 s and answers; the caller hangs "
                                 "up 14 s after Asterisk answered")
        caller = lab.outside_call(lab.dids["Support"], "0612340004", hang_up_after=14, log="pickup")
        waiting = lab.waiting_call("Support")
        time.sleep(2)
        status, answer = lab.api("POST", f"/api/waiting-calls/{waiting['uniqueid']}/pickup", {"extension": "2002"},
                                 as_user="2002")
        assert status == 202, answer
        # A second click while 2002 rings is told someone is picking up; no second Originate goes out.
        again, answer = lab.api("POST", f"/api/waiting-calls/{waiting['uniqueid']}/pickup", {"extension": "2002"})
        assert again == 409, answer
        record.notes["pickup"] = {"uniqueid": waiting["uniqueid"], "seconds_waiting": waiting["seconds_waiting"]}
        assert caller.wait(timeout=60) == 0
    callid = record.caller_leg()["uniqueid"]
    assert callid == waiting["uniqueid"]
    support = queue(lab, "Support")
    assert caller_events(record, callid) == [(support, "NONE", "ENTERQUEUE")]
    # Bridge takes the caller out of Queue() by swapping channels: Asterisk then logs the stay's end as an
    # ABANDON (the ringing member's RINGCANCELED before it) under the uniqueid of the channel left behind in
    # Queue(), which no CDR or AMI event names — and never a CONNECT.
    rest = [r for r in record.queue_log if r["callid"] not in (callid, "REALTIME")]
    assert [(r["queuename"], r["agent"], r["event"]) for r in rest] == [(support, "2003 Lab 2003", "RINGCANCELED"),
                                                                         (support, "NONE", "ABANDON")]
    assert len({r["callid"] for r in rest}) == 1 and not record.events("QueueCallerLeave", "QueueCallerAbandon")
    bridge = [r for r in record.cdr if r["channel"].startswith("PJSIP/2002-")]
    assert bridge and bridge[0]["lastapp"] == "Bridge" and bridge[0]["disposition"] == "ANSWERED"
    assert all(r["linkedid"] == callid for r in record.cdr)
    no_caller_left_waiting(lab)
    expect_outcome(lab, callid, outcome="answered", answered_by="2002", picked_up=True,
                   groups=[lab.groups["Support"]])


def test_a_caller_redirected_to_another_group_who_then_hangs_up(lab):
    with lab.call("redirect", groups=["Support", "Back office"]) as record:
        record.notes["story"] = ("0612340005 calls DID 5550102 (Support: 2003); 2003 rings; after about 3 s an "
                                 "admin redirects the caller to Back office (POST /api/waiting-calls/<uniqueid>/"
                                 "redirect {group_id}: AMI Redirect to *8<id>); 2004 rings there, nobody answers; "
                                 "the caller hangs up 10 s after Asterisk answered")
        caller = lab.outside_call(lab.dids["Support"], "0612340005", hang_up_after=10, log="redirect")
        waiting = lab.waiting_call("Support")
        time.sleep(2)
        status, answer = lab.api("POST", f"/api/waiting-calls/{waiting['uniqueid']}/redirect",
                                 {"group_id": lab.groups["Back office"]})
        assert status == 202, answer
        assert lab.waiting_call("Back office")["uniqueid"] == waiting["uniqueid"]  # the dashboard follows it
        assert caller.wait(timeout=60) == 0
    callid = record.caller_leg()["uniqueid"]
    support, back = queue(lab, "Support"), queue(lab, "Back office")
    events = caller_events(record, callid)
    assert events[0] == (support, "NONE", "ENTERQUEUE")
    assert (back, "NONE", "ENTERQUEUE") in events and events[-1] == (back, "NONE", "ABANDON")
    # AMI reports the Redirect out of the queue as an abandon (then a leave).
    assert [e["Queue"] for e in record.events("QueueCallerAbandon")] == [support, back]
    no_caller_left_waiting(lab)
    expect_outcome(lab, callid, outcome="redirected", final_outcome="abandoned", answered_by=None,
                   groups=[lab.groups["Support"], lab.groups["Back office"]])


def test_an_internal_call_between_two_extensions(lab):
    with lab.call("internal") as record:
        record.notes["story"] = "2001 dials 2002; 2002 rings 2 s and answers; 2001 hangs up after 4 s of talk"
        caller = lab.phone_call("2001", "2002", hang_up_after=4, log="internal")
        assert caller.wait(timeout=60) == 0
    assert record.queue_log == []
    [leg] = record.cdr
    assert (leg["src"], leg["dst"], leg["disposition"]) == ("2001", "2002", "ANSWERED")
    assert leg["channel"].startswith("PJSIP/2001-") and leg["dstchannel"].startswith("PJSIP/2002-")
    assert leg["lastapp"] == "Dial" and 3 <= int(leg["billsec"]) <= 5
    expect_outcome(lab, leg["linkedid"], direction="internal", outcome="answered", answered_by="2002",
                   talk=(3, 5))


def test_an_outbound_call_through_the_trunk_to_the_provider(lab):
    with lab.call("outbound") as record:
        record.notes["story"] = ("2001 dials 0 0555123 (outside-line prefix 0): out through trunk `provider` "
                                 "(a fake provider on 127.0.0.3) as 0555123; it rings 2 s and answers; 2001 hangs "
                                 "up after 4 s of talk")
        caller = lab.phone_call("2001", "00555123", hang_up_after=4, log="outbound")
        assert caller.wait(timeout=60) == 0
    assert record.queue_log == []
    [leg] = record.cdr
    assert (leg["src"], leg["dst"], leg["disposition"]) == ("2001", "00555123", "ANSWERED")
    assert leg["dstchannel"].startswith("PJSIP/provider-") and leg["lastdata"].startswith("PJSIP/0555123@provider")
    expect_outcome(lab, leg["linkedid"], direction="outbound", outcome="answered", talk=(3, 5))
