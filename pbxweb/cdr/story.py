"""What happened to a caller, told from Asterisk's queue log and the call's CDR legs — plain functions of
plain rows, no database.

CDR alone cannot tell a queue call's story: the dialplan answers the caller before `Queue()`, so every leg
of a queue call says ANSWERED from the caller's side, a member whose phone only rang looks like the one who
took it, and a pick-up from the dashboard is a leg of its own. The queue log says it as Asterisk saw it
(app_queue.c, `callid` = the caller channel's uniqueid, which is the call's linkedid):

    ENTERQUEUE       url|callerid|origpos          the caller enters a group
    CONNECT          holdtime|member uniqueid|ring  a member's phone answered (agent = the member's name)
    COMPLETECALLER   holdtime|calltime|origpos      ... and the call ended (so did COMPLETEAGENT)
    TRANSFER         exten|context|hold|call|pos    ... or was transferred (BLINDTRANSFER alike)
    ABANDON          pos|origpos|waittime           the caller left while waiting: hung up — or was
                                                    sent elsewhere by a Redirect (Asterisk logs that too)
    EXITWITHTIMEOUT  pos|origpos|waittime           the group's wait limit passed
    EXITEMPTY        pos|origpos|waittime           nobody could take calls any more
    JOINEMPTY, JOINUNAVAIL                          the caller could not even join

A pick-up from the dashboard (Originate to the agent's phone, then `Bridge`) takes the caller out of
`Queue()` with no CONNECT: it shows as the agent's own leg of the call, `lastapp` Bridge, answered.
"""

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache

# A queue is a group: `extgroup_<id>`.
GROUP_QUEUE = re.compile(r"extgroup_(\d+)")
PHONE_CHANNEL = re.compile(r"PJSIP/(\d{2,6})-")
PHONE_INTERFACE = re.compile(r"(?:PJSIP/)?(\d{2,6})")
# A member as the realtime mapping names it: its number, then its name.
MEMBER_NAME = re.compile(r"(\d{2,6}) ")
# What ends a caller's stay in a group, and the word for it; the events a story reads.
NO_AGENT_EVENTS = ("EXITEMPTY", "JOINEMPTY", "JOINUNAVAIL")
ENDINGS = {"CONNECT": "answered", "ABANDON": "abandoned", "EXITWITHTIMEOUT": "timeout", "EXITWITHKEY": "abandoned",
           **dict.fromkeys(NO_AGENT_EVENTS, "no agents")}
CALL_ENDED = ("COMPLETECALLER", "COMPLETEAGENT", "TRANSFER", "BLINDTRANSFER")
STORY_EVENTS = ("ENTERQUEUE", *ENDINGS, *CALL_ENDED)
# Outcomes a call without a queue keeps from its CDR disposition, in words.
CDR_WORDS = {"ANSWERED": "answered", "NO ANSWER": "no answer", "BUSY": "busy", "FAILED": "failed", "CONGESTION": "failed"}
# How long after a logged ABANDON a pick-up's answer may come and still be what took the caller out (the
# Bridge pulls the caller out of Queue() as the agent's phone answers); later, the caller had already gone.
PICKUP_SLACK = timedelta(seconds=2)
# Applications a redirected caller goes on to (an extension, a mailbox): the trace a Redirect leaves in CDR.
REDIRECT_TARGET_APPS = ("Dial", "VoiceMail")


@lru_cache(maxsize=1024)  # a site has a few queues, and an export reads them half a million times
def group_of(queuename: str | None) -> int | None:
    match = GROUP_QUEUE.fullmatch(queuename or "")
    return int(match.group(1)) if match else None


def seconds(value) -> int | None:
    """A whole number of seconds from a queue log field (Asterisk writes them as text)."""
    text = (value or "").strip()
    return int(text) if text.isdigit() else None


@dataclass(slots=True)
class Visit:
    """One stay of the caller in one group."""

    queuename: str
    group: int | None  # extgroup_<id>
    entered: datetime
    ended: str | None = None  # answered / abandoned / redirected / timeout / no agents; None: not told
    logged: str | None = None  # the queue log event that ended it (CONNECT, ABANDON, …), if any
    left: datetime | None = None  # when it was answered, or the caller left
    wait: int | None = None
    talk: int | None = None
    answered_by: str | None = None
    picked_up: bool = False  # answered by a pick-up from the dashboard, not by the queue ringing a member
    position: int | None = None


@dataclass(slots=True)
class Redirect:
    """Where a caller sent out of a group by a Redirect went on to, when that was no group: an extension."""

    extension: str | None
    outcome: str
    answered_at: datetime | None = None
    talk: int | None = None


@dataclass(slots=True)
class Story:
    outcome: str  # answered, abandoned, timeout, voicemail, redirected, no agents, unknown
    final_outcome: str  # where the call ended: the same, except after a redirect
    answered_by: str | None = None
    picked_up: bool = False
    wait: int | None = None
    talk: int | None = None
    position: int | None = None
    groups: list[int] = field(default_factory=list)
    visits: list[Visit] = field(default_factory=list)
    redirect: Redirect | None = None


def member_number(agent: str | None, names: dict[str, set[str]], legs=None) -> str | None:
    """The extension behind a queue log's `agent`: the member's name as the realtime mapping writes it into
    `membername` (Asterisk logs that for CONNECT, RING…, COMPLETE…, PAUSE) — its number, then its name — or
    an interface. A bare name (a member row written by hand, or before the number led it) is read
    among the phones the call's `legs` rang, when given: the member who answered is one of them, so two
    extensions of one name are told apart, and a name since given to another extension is not misread."""
    agent = (agent or "").strip()
    if match := PHONE_INTERFACE.fullmatch(agent) or MEMBER_NAME.match(agent):
        return match.group(1)
    numbers = names.get(agent)
    if numbers and legs is not None:
        numbers = numbers & rung_phones(legs)
    return next(iter(numbers)) if numbers and len(numbers) == 1 else None


def rung_phones(legs) -> set[str]:
    """The extensions a call's legs rang."""
    return {m.group(1) for leg in legs if (m := PHONE_CHANNEL.match(leg.dstchannel or ""))}


def _pickup(legs) -> object | None:
    """The leg of a pick-up from the dashboard that was answered: the agent's phone, running Bridge."""
    for leg in legs:
        if (leg.lastapp or "") == "Bridge" and PHONE_CHANNEL.match(leg.channel or "") and (leg.billsec or 0) > 0:
            return leg
    return None


def answered_at(leg) -> datetime:
    """When a leg was answered, as CDR counts it: its end less its billable seconds."""
    return leg.end - timedelta(seconds=leg.billsec or 0) if leg.end is not None else leg.start


def visits_of(events, names: dict[str, set[str]], legs) -> list[Visit]:
    """The caller's stays in groups, from its queue log rows (time order)."""
    visits: list[Visit] = []
    open_by_queue: dict[str, Visit] = {}
    for event in events:
        kind = event.event or ""
        queue = event.queuename or ""
        visit = open_by_queue.get(queue)
        if kind == "ENTERQUEUE" or (visit is None and kind in ENDINGS):
            visit = Visit(queue, group_of(queue), event.time)
            visits.append(visit)
            open_by_queue[queue] = visit
            if kind == "ENTERQUEUE":
                continue
        if visit is None:
            continue
        if kind in ENDINGS and visit.ended is None:
            visit.ended, visit.logged = ENDINGS[kind], kind
            visit.left = event.time
            if kind == "CONNECT":
                visit.wait = seconds(event.data1)
                visit.answered_by = member_number(event.agent, names, legs)
            elif kind == "EXITWITHKEY":
                visit.position, visit.wait = seconds(event.data2), seconds(event.data4)
            elif kind not in ("JOINEMPTY", "JOINUNAVAIL"):
                visit.position, visit.wait = seconds(event.data1), seconds(event.data3)
            if kind != "CONNECT":
                open_by_queue.pop(queue, None)
        elif kind in CALL_ENDED and visit.ended == "answered" and visit.talk is None:
            visit.talk = seconds(event.data2 if kind.startswith("COMPLETE") else event.data4)
            open_by_queue.pop(queue, None)
    return visits


def _went_on(visit: Visit, later: list[Visit], legs) -> tuple[bool, list]:
    """Did a caller who left this group (ABANDON) go on living — into another group, or to an extension or
    mailbox by the dialplan — rather than hang up? Asterisk logs a Redirect out of a queue as ABANDON."""
    if later:
        return True, []
    since = visit.left.replace(microsecond=0)
    onward = [leg for leg in legs if (leg.lastapp or "") in REDIRECT_TARGET_APPS and leg.start is not None and leg.start >= since]
    return bool(onward), onward


def _redirect_target(onward: list) -> Redirect:
    """What became of a caller redirected to an extension: its phone answered, its mailbox, or neither."""
    for leg in onward:
        if leg.lastapp == "VoiceMail":
            return Redirect(None, "voicemail")
    for leg in onward:
        match = PHONE_CHANNEL.match(leg.dstchannel or "")
        if leg.disposition == "ANSWERED" and (leg.billsec or 0) > 0 and match:
            return Redirect(match.group(1), "answered", answered_at(leg), leg.billsec)
    dialled = next((PHONE_CHANNEL.match(leg.dstchannel or "") for leg in onward), None)
    last = onward[-1]
    return Redirect(dialled.group(1) if dialled else None, CDR_WORDS.get(last.disposition or "", "unknown"))


def tell(legs, events, names: dict[str, set[str]] | None = None) -> Story | None:
    """The story of a call from its legs (start order) and its queue log rows (time order, the caller's:
    `callid` the call's linkedid); None when the queue log has nothing on it (a call that met no group, or
    one made before the queue log existed)."""
    visits = visits_of(events, names or {}, legs)
    if not visits:
        return None
    if (pickup := _pickup(legs)) is not None:
        _apply_pickup(visits, pickup)
    redirect = _redirects(visits, legs)
    last = visits[-1]
    if last.ended == "answered" and last.talk is None and last.left is not None:  # no COMPLETE… yet
        ended = max((leg.end for leg in legs if leg.end is not None), default=None)
        last.talk = max(0, round((ended - last.left).total_seconds())) if ended else None
    story = Story(outcome="unknown", final_outcome="unknown", visits=visits,
                  groups=list(dict.fromkeys(v.group for v in visits if v.group is not None)))
    if redirect is not None:
        _ended_at_extension(story, redirect, visits[0])
    else:
        _ended_in_group(story, visits, legs)
    story.outcome = "redirected" if any(v.ended == "redirected" for v in visits) else story.final_outcome
    return story


def _redirects(visits: list[Visit], legs) -> Redirect | None:
    """Mark the stays a caller left to go on elsewhere as redirected; where they went when it was no group."""
    redirect = None
    for index, visit in enumerate(visits):
        if visit.ended == "abandoned" and not visit.picked_up:
            went_on, onward = _went_on(visit, visits[index + 1:], legs)
            if went_on:
                visit.ended, visit.position = "redirected", None
                if onward:
                    redirect = _redirect_target(onward)
    return redirect


def _ended_at_extension(story: Story, redirect: Redirect, first: Visit) -> None:
    story.redirect = redirect
    story.final_outcome = redirect.outcome
    story.answered_by = redirect.extension if redirect.outcome == "answered" else None
    story.talk = redirect.talk
    if redirect.answered_at is not None:
        story.wait = max(0, round((redirect.answered_at - first.entered).total_seconds()))


def _ended_in_group(story: Story, visits: list[Visit], legs) -> None:
    """The outcome of the last stay; the wait counts from entering the first group."""
    first, last = visits[0], visits[-1]
    story.final_outcome = last.ended or "unknown"
    if last.ended == "timeout" and any((leg.lastapp or "") == "VoiceMail" and leg.start is not None
                                       and leg.start >= last.left.replace(microsecond=0) for leg in legs):
        story.final_outcome = "voicemail"
    if last.ended in ("answered", "abandoned", "timeout", "no agents") and last.wait is not None:
        story.wait = round((last.entered - first.entered).total_seconds()) + last.wait
    if last.ended == "answered":
        story.answered_by, story.picked_up, story.talk = last.answered_by, last.picked_up, last.talk
    if last.ended == "abandoned":
        story.position = last.position


def _apply_pickup(visits: list[Visit], leg) -> None:
    """The stay a pick-up ended: the last one the caller had entered when the agent's phone answered, unless
    a member answered it first, or it ended otherwise before."""
    at = answered_at(leg)
    visit = next((v for v in reversed(visits) if v.entered <= at), None)
    if visit is None or visit.ended in ("answered", "timeout", "no agents"):
        return
    if visit.ended == "abandoned" and at > visit.left + PICKUP_SLACK:
        return
    match = PHONE_CHANNEL.match(leg.channel)
    visit.ended, visit.picked_up, visit.left = "answered", True, at
    visit.answered_by, visit.position = match.group(1), None
    visit.wait = max(0, round((at - visit.entered).total_seconds()))
    visit.talk = leg.billsec or 0


def from_cdr(disposition: str, answering_leg) -> str:
    """The outcome of a call the queue log does not know, in words: its CDR disposition, or the mailbox when
    that is what answered."""
    if answering_leg is not None and (answering_leg.lastapp or "") == "VoiceMail":
        return "voicemail"
    return CDR_WORDS.get(disposition or "", "unknown")
