"""Missed callers to call back, on the real Asterisk: an outside caller who hangs up waiting (twice) is listed
once with both tries and their waits, on the dashboard's panel and on /api/missed-calls as gunicorn serves them;
the Call back button of that row rings the manager's phone (2002), which answers, and Asterisk dials the caller
out through the trunk to the fake provider, which answers; the row says who is calling back while it rings and
talks, and once the call is over and its CDR written, the caller is no longer listed. A caller who timed out
is listed too.

Phones (see conftest): 2002 answers after 2 s of ringing, 2003 only rings; Support (2003) on DID 5550102, Short
(2003, max wait 5 s) on DID 5550103; the trunk `provider` to a fake provider that answers after 2 s.
"""

import html
import re
import time

import pytest
import sqlalchemy as sa

from .conftest import ami_messages, wait_for

pytestmark = pytest.mark.asterisk

CALLER = "0612340006"
TIMED_OUT = "0612340007"


def missed_rows(lab, number: str) -> list[dict]:
    """The rows of /api/missed-calls for this number, as the manager of 2002 sees them."""
    status, answer = lab.api("GET", "/api/missed-calls", as_user="2002")
    assert status == 200, answer
    return [r for r in answer["missed_calls"] if r["number"] == number]


def listed_with(lab, number: str, tries: int, timeout: float = 10) -> dict:
    """The caller's one row once it counts `tries` tries (the rows land as each channel ends)."""
    def found():
        rows = missed_rows(lab, number)
        assert len(rows) <= 1, rows
        return rows[0] if rows and rows[0]["tries"] == tries else None
    return wait_for(found, timeout, f"{number} listed with {tries} tries on /api/missed-calls")


def panel_row(page: str, number: str) -> str | None:
    """The panel's <li> of this number, or None."""
    for item in re.findall(r'<li class="missed[^"]*">.*?</li>', page, re.S):
        if f">{number}</strong>" in item:
            return re.sub(r"\s+", " ", item)
    return None


def call_back_url(row: str, number: str) -> str:
    """Where the row's Call back button posts (hx-post), as htmx would read it."""
    button = re.search(rf'<button[^>]*hx-post="([^"]+)"[^>]*aria-label="Call back {number}"', row)
    assert button, row
    return html.unescape(button.group(1))


def new_channel(lab, mark: int, prefix: str, timeout: float) -> str:
    """The first channel named `prefix`… that Asterisk made since the AMI tap's `mark` (its Newchannel event:
    seen at once, where polling the CLI would lag a ringing phone's answer)."""
    def made():
        return next((m["Channel"] for m in ami_messages(lab.ami.since(mark))
                     if m.get("Event") == "Newchannel" and m.get("Channel", "").startswith(prefix)), None)
    return wait_for(made, timeout, f"a channel {prefix}…", interval=0.05)


def call_back(lab, browser, shown_row: str) -> tuple[str, int]:
    """Clicks the row's Call back button as the manager of 2002: 2002's channel once it rings, and the AMI
    tap's mark from before the click."""
    mark = lab.ami.mark()
    status, answer, _ = browser.post(call_back_url(shown_row, CALLER))
    assert status == 200 and "Your phone (2002) is ringing" in answer.decode(), answer
    assert "lab-2002 is calling back" in panel_row(answer.decode(), CALLER)
    return new_channel(lab, mark, "PJSIP/2002-", 5), mark


def hang_up(lab, channel: str) -> None:
    """The person at 2002 hangs up (AMI Hangup of its channel: the sipp phone only answers)."""
    answer = lab.ami_action("Hangup", Channel=channel)
    assert answer[0]["Response"] == "Success", answer


def cdr_written(lab, channel: str) -> None:
    """Waits for the CDR row of a call whose channel this was (cdr_adaptive_odbc writes it as the call ends)."""
    def written():
        with lab.engine.connect() as conn:
            return conn.execute(sa.text("SELECT count(*) FROM cdr WHERE channel = :c"), {"c": channel}).scalar()
    wait_for(written, 10, f"the CDR row of {channel}")


def test_a_caller_who_hung_up_twice_is_listed_once_called_back_and_cleared_when_the_call_back_connects(lab):
    browser = lab.browser("2002")  # the manager of 2002: sees every group's missed callers, calls from 2002
    support = lab.groups["Support"]
    with lab.call("missed-callback", groups=["Support"]) as record:
        record.notes["story"] = (
            f"{CALLER} calls DID 5550102 (Support: 2003); 2003 rings, nobody answers; the caller hangs up after "
            "4 s. Again: hangs up after 3 s. The manager of 2002 clicks Call back on the dashboard's row (POST "
            "/missed/<linkedid>/callback: Originate PJSIP/2002 into from-internal, Exten 0 + the number); 2002 "
            "rings 2 s and answers; Asterisk dials the number out through trunk `provider`, which rings 2 s and "
            "answers. First 2002 hangs up while the provider still rings, about 1 s into its ringing (AMI Hangup of 2002's channel); then a "
            "second Call back, the provider answers, and 2002 hangs up after about 2 s of talk")
        first = lab.outside_call(lab.dids["Support"], CALLER, hang_up_after=4, log="missed-1")
        assert first.wait(timeout=60) == 0
        row = listed_with(lab, CALLER, 1)
        assert (row["group"], row["group_name"], row["outcome"], row["calling_back"]) == (support, "Support", "abandoned", None)
        assert 3 <= row["wait_total"] <= 5 and row["dialable"]

        second = lab.outside_call(lab.dids["Support"], CALLER, hang_up_after=3, log="missed-2")
        assert second.wait(timeout=60) == 0
        row = listed_with(lab, CALLER, 2)
        assert 5 <= row["wait_total"] <= 9 and 3 <= row["wait_longest"] <= 5 and len(row["calls"]) == 2
        status, page, _ = browser.get("/missed", {"HX-Request": "true"})
        shown = panel_row(page.decode(), CALLER)
        assert status == 200 and shown is not None and "2 tries" in shown and "hung up" in shown, shown
        record.notes["missed"] = {"tries": row["tries"], "wait_total": row["wait_total"], "calls": row["calls"]}

        # The row's own button: the manager's phone rings, and the row says who calls back, for everyone. The
        # provider rings, and 2002 hangs up before it answers: the caller was not reached.
        unanswered, mark = call_back(lab, browser, shown)
        new_channel(lab, mark, "PJSIP/provider-", 15)
        time.sleep(1.2)  # listening to it ring (it answers after 2 s)
        hang_up(lab, unanswered)
        cdr_written(lab, unanswered)
        rows = missed_rows(lab, CALLER)
        assert [(r["tries"], r["calling_back"]["by"]) for r in rows] == [(2, "lab-2002")], rows
        status, page, _ = lab.browser().get("/missed", {"HX-Request": "true"})  # another person's dashboard
        assert "lab-2002 is calling back" in panel_row(page.decode(), CALLER)
        status, page, _ = browser.get("/missed", {"HX-Request": "true"})
        shown = panel_row(page.decode(), CALLER)

        # Again, and the provider answers: still listed while they talk (a call counts once its record is
        # written, at its end).
        answered, mark = call_back(lab, browser, shown)
        new_channel(lab, mark, "PJSIP/provider-", 15)
        time.sleep(4)
        (row,) = missed_rows(lab, CALLER)
        assert row["calling_back"]["by"] == "lab-2002"
        hang_up(lab, answered)
        record.notes["call_backs"] = {"unanswered": unanswered, "answered": answered}

    # What Asterisk wrote for each call-back: one row, from 2002's originated channel, Dial out through the trunk.
    backs = [r for r in record.cdr if r["linkedid"] not in record.notes["missed"]["calls"]]
    seen = [{k: r[k] for k in ("src", "dst", "channel", "dstchannel", "lastapp", "lastdata", "disposition",
                               "billsec")} for r in backs]
    assert len(backs) == 2 and len({r["linkedid"] for r in backs}) == 2, seen
    for back in backs:
        assert (back["src"], back["dst"], back["lastapp"]) == ("2002", "0" + CALLER, "Dial"), seen
        assert back["channel"].startswith("PJSIP/2002-") and back["dstchannel"].startswith("PJSIP/provider-"), seen
        assert back["lastdata"].startswith(f"PJSIP/{CALLER}@provider,"), seen
    # The disposition is the Dial's outcome; `answer` is 2002 answering, so billsec is no sign of the provider's.
    unanswered, answered = backs
    assert (unanswered["disposition"], answered["disposition"]) == ("NO ANSWER", "ANSWERED"), seen
    assert unanswered["answer"] is not None and answered["start"] < answered["answer"], seen

    # Reached: gone from the list and the panel, for the one who called back and for everyone else.
    assert missed_rows(lab, CALLER) == []
    for person in (browser, lab.browser()):
        status, page, _ = person.get("/missed", {"HX-Request": "true"})
        assert status == 200 and panel_row(page.decode(), CALLER) is None


def test_a_caller_who_timed_out_is_listed(lab):
    with lab.call("missed-timeout", groups=["Short"]) as record:
        record.notes["story"] = (f"{TIMED_OUT} calls DID 5550103 (Short: 2003, max wait 5 s); 2003 rings, nobody "
                                 "answers; Queue() returns after 5 s and the dialplan hangs up on the caller")
        caller = lab.outside_call(lab.dids["Short"], TIMED_OUT, hang_up_after=None, log="missed-timeout")
        assert caller.wait(timeout=60) == 0
    row = listed_with(lab, TIMED_OUT, 1)
    assert (row["group_name"], row["outcome"]) == ("Short", "timeout") and 4 <= row["wait_total"] <= 6
    status, page, _ = lab.browser("2002").get("/missed", {"HX-Request": "true"})
    assert status == 200 and "timed out" in panel_row(page.decode(), TIMED_OUT)
