"""The call log: Asterisk's `cdr` table as cdr_adaptive_odbc writes it (times in UTC, `usegmtime=yes`), read
only. One call is every leg that shares a `linkedid` (queue → agents, transfers, pick-ups), shown as one
row that expands into its legs. What happened to a caller in a group — who answered, how long they waited,
whether they hung up — comes from Asterisk's queue log (story.py), read alongside: its rows of a call are
those whose `callid` is the call's linkedid (the caller's channel, which started the call).

Paging is by keyset over the legs, newest first: a page scans the legs that match the leg filters (date,
number, extension, group — all on indexed columns) from the cursor down, collects the calls they belong to,
reads each call whole by its linkedid with its queue log rows, and keeps those that pass the call filters
(direction, outcome, disposition, duration). A call belongs to the page of its newest matching leg; one that
had a matching leg above the cursor was on an earlier page and is not shown again, so rows arriving meanwhile
move nobody's place.
"""

import re
from collections import namedtuple
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta, timezone

import sqlalchemy as sa
from flask import current_app

from .. import validation as v
from ..csv_cells import csv_line, csv_lines
from ..ext import db
from ..live import store
from ..models import Extension, ExtensionGroup
from ..plain_rows import stream_rows
from .. import paging
from ..realtime.schema import cdr as cdr_t, queue_log as queue_log_t
from ..site_time import local, site_zone
from . import report, story as stories

DISPOSITIONS = ("ANSWERED", "NO ANSWER", "BUSY", "FAILED", "CONGESTION")
OUTCOMES = ("answered", "abandoned", "timeout", "voicemail", "redirected", "no agents", "no answer", "busy", "failed")
# The queue log events without which a call cannot have these outcomes (story.py: ENDINGS).
OUTCOME_EVENTS = {"abandoned": ("ABANDON", "EXITWITHKEY"), "redirected": ("ABANDON",), "timeout": ("EXITWITHTIMEOUT",),
                  "no agents": stories.NO_AGENT_EVENTS}
DIRECTIONS = ("internal", "inbound", "outbound")
QUICK_RANGES = ("today", "yesterday", "7days")
EXTENSION_CHANNEL = re.compile(r"PJSIP/(\d{2,6})-")
# How many legs one scan reads, and how many scans a page may take when call filters reject most calls.
SCAN_BATCH = 400
MAX_SCANS = 25
# The fewest calls read whole at once while a page fills up: the last few it needs come with some to spare.
MIN_SLICE = 20


# --- filters -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    start: datetime | None = None  # UTC, naive like the table
    end: datetime | None = None
    number: str | None = None
    extension: str | None = None
    group: int | None = None
    direction: str | None = None
    disposition: str | None = None
    outcome: str | None = None
    min_duration: int | None = None
    # An agent: only calls its own extension took part in (None: no such limit).
    own_extension: str | None = None


def _utc_day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=site_zone()).astimezone(timezone.utc).replace(tzinfo=None)


def _date(errors: v.Errors, name: str, value: str | None) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        errors.check(name, False, "must be a date (YYYY-MM-DD)")
        return None


def parse_filters(args, user) -> Filters:
    """The filters of a request's query string; a 400 names a bad one. `range` (today, yesterday, 7days) is
    a quick pick for `from`/`to`, which are days in the site's zone."""
    errors = v.Errors()
    today = datetime.now(site_zone()).date()
    quick = args.get("range") or ""
    errors.check("range", quick in ("", *QUICK_RANGES), f"must be one of {', '.join(QUICK_RANGES)}")
    first = _date(errors, "from", args.get("from"))
    last = _date(errors, "to", args.get("to"))
    if quick == "today":
        first, last = today, today
    elif quick == "yesterday":
        first = last = today - timedelta(days=1)
    elif quick == "7days":
        first, last = today - timedelta(days=6), today
    number = (args.get("number") or "").strip() or None
    errors.check("number", number is None or re.fullmatch(r"\+?[0-9*#]{1,32}", number) is not None,
                 "must be digits (a prefix of the number), up to 32")
    extension = (args.get("extension") or "").strip() or None
    errors.check("extension", extension is None or re.fullmatch(r"[0-9]{2,6}", extension) is not None, "must be an extension number")
    group = None
    if args.get("group"):
        group = v.integer(errors, "group", args["group"], minimum=1, maximum=2**31 - 1)
    direction = args.get("direction") or None
    errors.check("direction", direction in (None, *DIRECTIONS), f"must be one of {', '.join(DIRECTIONS)}")
    disposition = (args.get("disposition") or "").upper() or None
    errors.check("disposition", disposition in (None, *DISPOSITIONS), f"must be one of {', '.join(DISPOSITIONS)}")
    outcome = (args.get("outcome") or "").lower() or None
    errors.check("outcome", outcome in (None, *OUTCOMES), f"must be one of {', '.join(OUTCOMES)}")
    min_duration = None
    if args.get("min_duration"):
        min_duration = v.integer(errors, "min_duration", args["min_duration"], minimum=0, maximum=86400)
    if first and last:
        errors.check("to", last >= first, "must not be before from")
    errors.raise_if_any()
    own = None
    if user is not None and user.role == "agent":
        own = user.extension.number if user.extension is not None else "-"
    return Filters(
        start=_utc_day_start(first) if first else None,
        end=_utc_day_start(last + timedelta(days=1)) if last else None,
        number=number, extension=extension, group=group, direction=direction, disposition=disposition,
        outcome=outcome, min_duration=min_duration, own_extension=own,
    )


def _took_part(number: str):
    """A leg this extension took part in: as caller, as callee, or on either channel."""
    return sa.or_(cdr_t.c.src == number, cdr_t.c.dst == number,
                  cdr_t.c.channel.like(f"PJSIP/{number}-%"), cdr_t.c.dstchannel.like(f"PJSIP/{number}-%"))


def leg_conditions(filters: Filters) -> list:
    """What a leg must satisfy (indexed columns); call-level rules are applied to whole calls afterwards."""
    conditions = []
    if filters.start is not None:
        conditions.append(cdr_t.c.start >= filters.start)
    if filters.end is not None:
        conditions.append(cdr_t.c.start < filters.end)
    if filters.number:
        prefix = filters.number.replace("%", "").replace("_", "") + "%"
        conditions.append(sa.or_(cdr_t.c.src.like(prefix), cdr_t.c.dst.like(prefix)))
    if filters.extension:
        conditions.append(_took_part(filters.extension))
    if filters.own_extension:
        conditions.append(_took_part(filters.own_extension))
    if filters.group is not None:
        queue = f"extgroup_{filters.group}"
        conditions.append(sa.or_(cdr_t.c.lastdata == queue, cdr_t.c.lastdata.like(queue + ",%")))
    if filters.outcome in OUTCOME_EVENTS:
        # Only calls whose queue log has the event such an outcome needs (the call filter decides): an
        # outcome that matches few calls is then found without reading every call in between.
        conditions.append(sa.select(queue_log_t.c.id).where(queue_log_t.c.callid == cdr_t.c.linkedid,
                                                            queue_log_t.c.event.in_(OUTCOME_EVENTS[filters.outcome])).exists())
    return conditions


# --- calls, from their legs (pure) ---------------------------------------------------------------------


@dataclass
class Call:
    linkedid: str
    legs: list  # rows of cdr, by start then id
    started: datetime | None = None
    ended: datetime | None = None
    src: str = ""
    clid: str = ""
    dst: str = ""
    direction: str = "internal"
    disposition: str = ""  # CDR's, kept for old API readers: ANSWERED for every queue call, whatever happened
    duration: int = 0
    billsec: int = 0
    answered_by: str | None = None
    groups: list[int] = field(default_factory=list)
    # What happened, in words (story.py): from the queue log when it knows the call, else from CDR.
    outcome: str = ""
    final_outcome: str = ""  # where it ended: the outcome, except after a redirect
    picked_up: bool = False  # answered by a pick-up from the dashboard
    wait: int | None = None  # seconds from entering the (first) group until answered or given up
    talk: int | None = None  # seconds after the answer
    position: int | None = None  # the position an abandoned caller had reached
    source: str = "cdr"  # "queue_log" or "cdr"
    story: stories.Story | None = None

    @property
    def answered(self) -> bool:
        return self.final_outcome == "answered"


def direction_of(leg) -> str:
    """From the channels our dialplan makes: a call from a trunk or an anonymous caller is inbound; one our
    phone dials out through a trunk (`Dial(PJSIP/<number>@<trunk>)`) is outbound; the rest is internal."""
    from_phone = EXTENSION_CHANNEL.match(leg.channel or "") is not None
    if not from_phone:
        return "inbound"
    if (leg.lastapp or "") == "Dial" and "@" in (leg.lastdata or "").split(",")[0]:
        return "outbound"
    return "internal"


def build_call(linkedid: str, legs: list, presorted: bool = False, events=(), names: dict | None = None) -> Call:
    """A call from all its legs and its queue log rows (in one pass: an export builds half a million of them).
    `names`: extension numbers by name, to read the queue log's member names (member_names())."""
    if not presorted:
        legs = sorted(legs, key=lambda leg: (leg.start or datetime.min, leg.id))
    first = legs[0]
    call = Call(linkedid=linkedid, legs=legs, started=first.start, src=first.src or "", clid=first.clid or "",
                dst=first.dst or "", direction=direction_of(first))
    answering = answered_any = None
    ended = None
    longest = billsec = 0
    for leg in legs:
        if leg.end is not None and (ended is None or leg.end > ended):
            ended = leg.end
        longest = max(longest, leg.duration or 0)
        billsec = max(billsec, leg.billsec or 0)
        if leg.disposition == "ANSWERED":
            answered_any = answered_any or leg
            if answering is None and (leg.billsec or 0) > 0:
                answering = leg
        if leg.lastapp == "Queue":
            queue = (leg.lastdata or "").split(",", 1)[0]
            if queue.startswith("extgroup_") and queue[9:].isdigit() and int(queue[9:]) not in call.groups:
                call.groups.append(int(queue[9:]))
    answering = answering or answered_any
    call.ended = ended
    call.billsec = billsec
    call.disposition = "ANSWERED" if answering is not None else (first.disposition or "")
    call.duration = int((ended - call.started).total_seconds()) if ended and call.started else longest
    if answering is not None:
        match = EXTENSION_CHANNEL.match(answering.dstchannel or "")
        call.answered_by = match.group(1) if match else None  # an outside number is nobody's extension
    if first.dst == "s" and call.groups:
        call.dst = f"group {call.groups[0]}"
    told = stories.tell(legs, events, names) if events else None
    if told is None:
        _from_cdr(call, answering)
    else:
        call.story, call.source = told, "queue_log"
        call.outcome, call.final_outcome, call.answered_by = told.outcome, told.final_outcome, told.answered_by
        call.picked_up, call.wait, call.talk, call.position = told.picked_up, told.wait, told.talk, told.position
        call.groups = told.groups or call.groups
    return call


def _from_cdr(call: Call, answering) -> None:
    """Today's reading of CDR alone, for calls the queue log does not know (no group, or made before it)."""
    call.outcome = call.final_outcome = stories.from_cdr(call.disposition, answering)
    if call.outcome == "voicemail":
        call.answered_by = None
    if call.outcome != "answered":
        call.wait = call.duration  # in vain
    else:  # ringing until the answering leg picked up
        call.wait = max(0, (answering.duration or 0) - answering.billsec) if answering.billsec else 0
    call.talk = call.billsec if call.outcome == "answered" else 0


def _rest(outcome: str, answered_by: str | None, wait: int | None, position: int | None) -> str:
    if outcome == "answered":
        return f"answered by {answered_by}" if answered_by else "answered"
    if outcome == "abandoned":
        waiting = f" after {wait} s waiting" if wait is not None else ""
        return f"hung up{waiting}" + (f" (position {position})" if position else "")
    return {"timeout": "timed out", "voicemail": "voicemail", "no agents": "nobody available",
            "no answer": "no answer", "busy": "busy", "failed": "failed"}.get(outcome, "outcome unknown")


def describe(call: Call, group_names: dict[int, str]) -> str:
    """The outcome as the call log row says it: "Answered by 2002 after 7 s", "Hung up after 12 s waiting
    (position 2)", "Redirected → Support, answered by 2003"."""
    told = call.story
    if call.outcome == "redirected" and told is not None:
        last = told.visits[-1]
        if told.redirect is not None:
            target = told.redirect.extension or "voicemail"
        else:
            target = group_names.get(last.group, last.queuename) if last.group is not None else last.queuename
        rest = _rest(call.final_outcome, call.answered_by, call.wait, call.position)
        return f"Redirected → {target}" + ("" if rest == target else f", {rest}")
    if call.outcome == "answered" and call.source == "queue_log":
        who = f" by {call.answered_by}" if call.answered_by else ""
        after = f" after {call.wait} s" if call.wait is not None else ""
        return (f"Picked up from the dashboard{who}{after}" if call.picked_up else f"Answered{who}{after}")
    if call.outcome == "timeout" and call.wait is not None:
        return f"Timed out after {call.wait} s"
    if call.outcome == "voicemail" and told is not None:
        return "Timed out, then voicemail"
    text = _rest(call.outcome, call.answered_by, call.wait, call.position)
    return text[0].upper() + text[1:]


LEG_OUTCOMES = {"ANSWERED": "answered", "NO ANSWER": "no answer", "BUSY": "busy", "FAILED": "failed",
                "CONGESTION": "failed"}
TRUNK_DIAL = re.compile(r"PJSIP/([^@,]+)@([^,]+)")


def describe_leg(leg, call: Call, group_names: dict[int, str]) -> str:
    """One leg of `call` as a person says it: "queue Sales → rang 2002, no answer", "out through provider to
    0555123, answered", "picked up from the dashboard by 2002". Channels and applications stay for the hint.
    A queue's leg says ANSWERED from the caller's side (the dialplan answers before Queue()), so whether the
    phone it rang took the call is the call's story's word, not the leg's."""
    app, data = leg.lastapp or "", (leg.lastdata or "").split(",")
    rang = EXTENSION_CHANNEL.match(leg.dstchannel or "")
    outcome = LEG_OUTCOMES.get(leg.disposition or "", (leg.disposition or "").lower())
    phone = rang.group(1) if rang else None
    if app == "Queue":
        group = stories.group_of(data[0])
        where = f"queue {group_names.get(group, data[0]) if group is not None else data[0]}"
        if phone is None:
            return f"{where}, nobody rang"
        took_it = phone == call.answered_by and not call.picked_up
        return f"{where} → rang {phone}, " + ("answered" if took_it else "no answer")
    if app == "Bridge":
        taker = EXTENSION_CHANNEL.match(leg.channel or "")
        who = f" by {taker.group(1)}" if taker else ""
        return f"picked up from the dashboard{who}, " + ("answered" if leg.billsec else "rang, no answer")
    if app == "Dial":
        if out := TRUNK_DIAL.match(data[0]):
            return f"out through {out.group(2)} to {out.group(1)}, {outcome}"
        return f"rang {phone or data[0]}, {outcome}"
    if app == "VoiceMail":
        return f"voicemail of {data[0].split('@')[0]}"
    if app == "Originate" or not app:
        return f"call set up by the PBX, {outcome}"
    return f"{app.lower()}, {outcome}"


def leg_talk(leg, call: Call) -> int | None:
    """Seconds talked on a leg; none for a queue leg whose phone did not take the call (its billsec is the
    caller's answered channel waiting in the queue)."""
    if leg.lastapp == "Queue":
        rang = EXTENSION_CHANNEL.match(leg.dstchannel or "")
        if not rang or rang.group(1) != call.answered_by or call.picked_up:
            return None
    return leg.billsec


def passes(call: Call, filters: Filters) -> bool:
    if filters.direction and call.direction != filters.direction:
        return False
    if filters.disposition and call.disposition != filters.disposition:
        return False
    if filters.outcome and filters.outcome not in (call.outcome, call.final_outcome):
        return False
    return not (filters.min_duration and call.duration < filters.min_duration)


# --- paging ------------------------------------------------------------------------------------------------


def encode_cursor(leg) -> str:
    """The position of a leg in the newest-first scan: its start and id."""
    return paging.encode_cursor([leg.start.isoformat(timespec="microseconds"), leg.id])


def decode_cursor(cursor: str | None) -> tuple[datetime, int] | None:
    if not cursor:
        return None
    try:
        started, leg_id = paging.decode_cursor(cursor)
        return datetime.fromisoformat(started), int(leg_id)
    except (ValueError, TypeError):
        raise v.ValidationError({"cursor": "is not a cursor this list gave out"}) from None


def _legs_of(linkedids: list[str]) -> dict[str, list]:
    legs: dict[str, list] = {}
    if linkedids:
        for row in db.session.execute(sa.select(cdr_t).where(cdr_t.c.linkedid.in_(linkedids))):
            legs.setdefault(row.linkedid, []).append(row)
    return legs


# A queue log row as the story reads it.
QUEUE_LOG_COLUMNS = ("time", "callid", "queuename", "agent", "event", "data1", "data2", "data3", "data4")


def _queue_events_of(linkedids: list[str]) -> dict[str, list]:
    """The queue log rows of these calls, by call, in time order: one read on ix_queue_log_callid."""
    events: dict[str, list] = {}
    if linkedids:
        query = (sa.select(*(queue_log_t.c[name] for name in QUEUE_LOG_COLUMNS))
                 .where(queue_log_t.c.callid.in_(linkedids), queue_log_t.c.event.in_(stories.STORY_EVENTS))
                 .order_by(queue_log_t.c.time, queue_log_t.c.id))
        for row in db.session.execute(query):
            events.setdefault(row.callid, []).append(row)
    return events


class MemberNames:
    """Extension numbers by name, for a queue log `agent` that is a bare name (member_number): the realtime
    mapping leads every membername with the number, so most reads never need them — and reading 20,000
    extensions cost the call log's every page more than its calls. Read on the first question."""

    def __init__(self):
        self._names: dict[str, set[str]] | None = None

    @property
    def consulted(self) -> bool:
        return self._names is not None

    def get(self, name: str, default=None):
        if self._names is None:
            self._names = {}
            for number, extension_name in db.session.execute(sa.select(Extension.number, Extension.name)):
                self._names.setdefault(extension_name, set()).add(number)
        return self._names.get(name, default)


def member_names() -> MemberNames:
    return MemberNames()


def _shown_before(linkedids: list[str], conditions: list, cursor: tuple[datetime, int]) -> set[str]:
    """Calls among these that had a matching leg above the cursor: they were on an earlier page."""
    if not linkedids:
        return set()
    above = sa.tuple_(cdr_t.c.start, cdr_t.c.id) >= sa.tuple_(sa.literal(cursor[0]), sa.literal(cursor[1]))
    query = sa.select(cdr_t.c.linkedid).where(cdr_t.c.linkedid.in_(linkedids), above, *conditions).distinct()
    return set(db.session.scalars(query))


@dataclass
class CallPage:
    calls: list[Call]
    next_cursor: str | None


def calls_page(filters: Filters, limit: int = 50, cursor: str | None = None) -> CallPage:
    """One page of calls, newest first, and the cursor of the next (None at the end)."""
    conditions = leg_conditions(filters)
    page_start = position = decode_cursor(cursor)
    calls: list[Call] = []
    seen: set[str] = set()
    last_leg = None
    names = member_names()
    for _ in range(MAX_SCANS):
        query = sa.select(cdr_t.c.id, cdr_t.c.start, cdr_t.c.linkedid).where(*conditions, cdr_t.c.start.is_not(None))
        if position is not None:
            query = query.where(sa.tuple_(cdr_t.c.start, cdr_t.c.id) < sa.tuple_(sa.literal(position[0]), sa.literal(position[1])))
        legs = db.session.execute(query.order_by(cdr_t.c.start.desc(), cdr_t.c.id.desc()).limit(SCAN_BATCH)).all()
        if not legs:
            return CallPage(calls, None)
        fresh = list(dict.fromkeys(leg.linkedid for leg in legs if leg.linkedid not in seen))
        whole: dict[str, list] = {}
        events: dict[str, list] = {}
        earlier: set[str] = set()
        read = 0  # how many of `fresh` are read whole
        for leg in legs:
            last_leg = leg
            if leg.linkedid in seen:
                continue
            seen.add(leg.linkedid)
            if read < len(fresh) and leg.linkedid == fresh[read]:
                # The calls a page still needs, read whole a slice at a time: a scan finds 200 calls where
                # the first page of 50 needs a quarter of them.
                upcoming = fresh[read:read + max(limit - len(calls), MIN_SLICE)]
                read += len(upcoming)
                whole.update(_legs_of(upcoming))
                events.update(_queue_events_of(upcoming))
                if page_start:
                    earlier |= _shown_before(upcoming, conditions, page_start)
            if leg.linkedid in earlier or leg.linkedid not in whole:
                continue
            call = build_call(leg.linkedid, whole[leg.linkedid], events=events.get(leg.linkedid, ()), names=names)
            if passes(call, filters):
                calls.append(call)
                if len(calls) == limit:
                    return CallPage(calls, encode_cursor(last_leg))
        position = (last_leg.start, last_leg.id)
        if len(legs) < SCAN_BATCH:
            return CallPage(calls, None)
    # Call filters that match little: the page is short, and says where to go on from.
    return CallPage(calls, encode_cursor(last_leg) if last_leg is not None else None)


def visible_call(linkedid: str, user) -> Call:
    """The call with this id as the call log tells it, when this user may see it (an agent: a call its own
    extension took part in); else a 404, as for a call that does not exist."""
    own = parse_filters({}, user).own_extension
    seen = sa.select(cdr_t.c.id).where(cdr_t.c.linkedid == linkedid, *leg_conditions(Filters(own_extension=own))).limit(1)
    found = calls_of([linkedid], member_names()) if db.session.execute(seen).first() else []
    if not found:
        raise v.NotFound(f"call {linkedid}")
    return found[0]


def call_to_dict(call: Call) -> dict:
    def when(value):
        return value.replace(tzinfo=timezone.utc).isoformat() if value else None

    return {
        "linkedid": call.linkedid, "start": when(call.started), "end": when(call.ended), "src": call.src,
        "clid": call.clid, "dst": call.dst, "direction": call.direction, "disposition": call.disposition,
        "duration": call.duration, "billsec": call.billsec, "answered_by": call.answered_by, "groups": call.groups,
        "outcome": call.outcome, "final_outcome": call.final_outcome, "picked_up": call.picked_up, "wait": call.wait,
        "talk": call.talk, "position": call.position, "source": call.source,
        "steps": [{"group": v.group, "entered": when(v.entered), "outcome": v.ended, "wait": v.wait,
                   "answered_by": v.answered_by, "position": v.position} for v in call.story.visits] if call.story else [],
        "legs": [
            {"id": leg.id, "uniqueid": leg.uniqueid, "start": when(leg.start), "answer": when(leg.answer),
             "end": when(leg.end), "src": leg.src, "dst": leg.dst, "clid": leg.clid, "channel": leg.channel,
             "dstchannel": leg.dstchannel, "lastapp": leg.lastapp, "lastdata": leg.lastdata,
             "disposition": leg.disposition, "duration": leg.duration, "billsec": leg.billsec}
            for leg in call.legs
        ],
    }


def calls_version() -> tuple:
    """What calls are read from, in a few bytes: the newest call record and queue log row (Asterisk only
    appends to both; nothing here deletes from them)."""
    return tuple(db.session.execute(sa.select(sa.select(sa.func.max(cdr_t.c.id)).scalar_subquery(),
                                              sa.select(sa.func.max(queue_log_t.c.id)).scalar_subquery())).one())


def group_names() -> dict[int, str]:
    return dict(db.session.execute(sa.select(ExtensionGroup.id, ExtensionGroup.name)).tuples().all())


# --- every matching call, streamed (export, statistics) ---------------------------------------------------


# What a call is built from, as a plain named tuple: an export builds half a million calls, reading their
# legs' fields millions of times, and every column not read is time saved in the driver.
CALL_COLUMNS = ("id", "linkedid", "start", "end", "src", "dst", "clid", "channel", "dstchannel", "lastapp",
                "lastdata", "disposition", "duration", "billsec")
Leg = namedtuple("Leg", CALL_COLUMNS)


QueueEvent = namedtuple("QueueEvent", QUEUE_LOG_COLUMNS)


def iter_calls(filters: Filters, batch: int = 10000, names: MemberNames | None = None):
    """Every call with a matching leg, whole, with its queue log rows, in linkedid order (about the order they
    started). Legs and queue log rows come as two server-side streams in the same order — byte order of the
    call's id, which indexes give without a sort (migration e14a0c0e7001) and Python compares alike — and
    are merged as they come: memory stays the same for a thousand calls or a million."""
    conditions = leg_conditions(filters)
    bytewise = db.session.get_bind().dialect.name == "postgresql"
    query = sa.select(*(cdr_t.c[name] for name in CALL_COLUMNS))
    events_query = (sa.select(*(queue_log_t.c[name] for name in QUEUE_LOG_COLUMNS))
                    .where(queue_log_t.c.callid.is_not(None), queue_log_t.c.event.in_(stories.STORY_EVENTS)))
    if conditions:
        calls = sa.select(cdr_t.c.linkedid).where(*conditions)
        query = query.where(cdr_t.c.linkedid.in_(calls))
        events_query = events_query.where(queue_log_t.c.callid.in_(calls))
    query = query.order_by(_in_byte_order(cdr_t.c.linkedid, bytewise), cdr_t.c.start, cdr_t.c.id)
    events_query = events_query.order_by(_in_byte_order(queue_log_t.c.callid, bytewise), queue_log_t.c.time,
                                         queue_log_t.c.id)
    names = names or member_names()
    events_of = _merger(stream_rows(events_query, batch, "pbx_queue_log", filtered=bool(conditions)))
    make = Leg._make
    current, legs = None, []
    for row in stream_rows(query, batch, "pbx_calls", filtered=bool(conditions)):
        linkedid = row[1]
        if linkedid != current and legs:
            call = build_call(current, legs, presorted=True, events=events_of(current), names=names)
            if passes(call, filters):
                yield call
            legs = []
        current = linkedid
        legs.append(make(row))
    if legs:
        call = build_call(current, legs, presorted=True, events=events_of(current), names=names)
        if passes(call, filters):
            yield call


def _in_byte_order(column, bytewise: bool):
    """The order Python compares strings in: PostgreSQL's "C" collation (SQLite's own)."""
    return column.collate("C") if bytewise else column


def _merger(rows):
    """events_of(callid) → that call's queue log rows, for call ids asked in ascending order, from rows sorted
    by callid the same way (rows of ids never asked for — NONE, REALTIME, calls with no CDR — are passed)."""
    make = QueueEvent._make
    pending = next(rows, None)

    def events_of(callid: str) -> list:
        nonlocal pending
        while pending is not None and pending[1] < callid:
            pending = next(rows, None)
        found = []
        while pending is not None and pending[1] == callid:
            found.append(make(pending))
            pending = next(rows, None)
        return found

    return events_of


EXPORT_COLUMNS = ("start", "end", "caller", "caller_name", "destination", "direction", "outcome", "final_outcome",
                  "answered_by", "wait_s", "talk_s", "position", "duration_s", "groups", "legs", "source", "linkedid")


def export_lines(filters: Filters, chunk: int = 500, names: MemberNames | None = None,
                 groups: dict[int, str] | None = None):
    """The matching calls as CSV, one line per call, a few hundred lines per piece, times in the site's zone;
    cells a spreadsheet would run escaped; what is not known (a wait, a position) empty. `groups`: the group
    names (read here when not given)."""
    groups = group_names() if groups is None else groups
    zone = site_zone()
    offsets: dict = {}

    def when(value):
        # A zone's offset changes only on the hour: look it up once per hour of UTC, not per call.
        if value is None:
            return ""
        hour = (value.year, value.month, value.day, value.hour)
        offset = offsets.get(hour)
        if offset is None:
            offset = offsets[hour] = value.replace(tzinfo=timezone.utc).astimezone(zone).utcoffset()
        return (value + offset).isoformat(" ", "seconds")

    yield csv_line(EXPORT_COLUMNS)
    rows = []
    for call in iter_calls(filters, names=names):
        rows.append((when(call.started), when(call.ended), call.src, call.clid, call.dst, call.direction,
                     call.outcome, call.final_outcome, call.answered_by, call.wait, call.talk, call.position,
                     call.duration, "; ".join(groups.get(g, f"group {g}") for g in call.groups),
                     len(call.legs), call.source, call.linkedid))
        if len(rows) >= chunk:
            yield csv_lines(rows)
            rows.clear()
    yield csv_lines(rows)


def export_name(args) -> str:
    """The filter in the file name: calls_2026-11-20_to_2026-11-27_inbound.csv."""
    parts = ["calls"]
    for key in ("range", "from", "to", "number", "extension", "group", "direction", "disposition", "outcome", "min_duration"):
        value = args.get(key)
        if value:
            parts.append(("to_" if key == "to" else f"{key}-" if key in ("group", "extension", "number", "min_duration") else "") + value)
    return re.sub(r"[^A-Za-z0-9_.+-]", "-", "_".join(parts))[:120] + ".csv"


# --- statistics --------------------------------------------------------------------------------------------


@dataclass
class Tally:
    answered: int = 0
    missed: int = 0
    wait_total: int = 0
    wait_longest: int = 0
    talk_total: int = 0
    talk_longest: int = 0

    def add(self, call: Call) -> None:
        wait = call.wait or 0
        if call.answered:
            talk = call.talk or 0
            self.answered += 1
            self.talk_total += talk
            self.talk_longest = max(self.talk_longest, talk)
        else:
            self.missed += 1
        self.wait_total += wait
        self.wait_longest = max(self.wait_longest, wait)

    def merge(self, other: "Tally") -> None:
        self.answered += other.answered
        self.missed += other.missed
        self.wait_total += other.wait_total
        self.wait_longest = max(self.wait_longest, other.wait_longest)
        self.talk_total += other.talk_total
        self.talk_longest = max(self.talk_longest, other.talk_longest)

    @property
    def calls(self) -> int:
        return self.answered + self.missed

    @property
    def wait_average(self) -> int:
        return round(self.wait_total / self.calls) if self.calls else 0

    @property
    def talk_average(self) -> int:
        return round(self.talk_total / self.answered) if self.answered else 0


@dataclass
class Statistics:
    days: dict = field(default_factory=dict)  # date → Tally
    hours: dict = field(default_factory=lambda: {h: Tally() for h in range(24)})
    extensions: dict = field(default_factory=dict)  # number → Tally (calls it answered)
    total: Tally = field(default_factory=Tally)


def statistics(calls, since: datetime | None = None) -> Statistics:
    """Answered and missed calls, waits and talk per day, per hour of the day and per extension (that
    answered, or placed an outbound call), in the site's zone. Groups have their own report (report.py).
    `since`: calls that started earlier are left out (a call with a leg after midnight is the day's before)."""
    stats = Statistics()
    for call in calls:
        if call.started is None or (since is not None and call.started < since):
            continue
        started = local(call.started)
        stats.total.add(call)
        stats.days.setdefault(started.date(), Tally()).add(call)
        stats.hours[started.hour].add(call)
        # The extension that took the call, or that placed it when it went out.
        placed = EXTENSION_CHANNEL.match(call.legs[0].channel or "")
        handled_by = placed.group(1) if call.direction == "outbound" and placed else call.answered_by
        if handled_by:
            stats.extensions.setdefault(handled_by, Tally()).add(call)
    stats.days = dict(sorted(stats.days.items()))
    return stats


# A period this long or shorter is read a day at a time (cdr/kept.py keeps each day).
MAX_DAYS_APART = 31


def days_of(filters: Filters) -> list[Filters] | None:
    """The period of these filters as one Filters per day of the site, when it is whole days (up to
    MAX_DAYS_APART of them); else None."""
    if filters.start is None or filters.end is None:
        return None
    first, last = local(filters.start).date(), local(filters.end).date()
    if _utc_day_start(first) != filters.start or _utc_day_start(last) != filters.end or (last - first).days > MAX_DAYS_APART:
        return None
    return [replace(filters, start=_utc_day_start(first + timedelta(days=n)), end=_utc_day_start(first + timedelta(days=n + 1)))
            for n in range((last - first).days)]


def merged(parts: list[Statistics]) -> Statistics:
    """The statistics of several periods (days) together."""
    stats = Statistics()
    for part in parts:
        stats.total.merge(part.total)
        for day, tally in part.days.items():
            stats.days.setdefault(day, Tally()).merge(tally)
        for hour, tally in part.hours.items():
            stats.hours[hour].merge(tally)
        for number, tally in part.extensions.items():
            stats.extensions.setdefault(number, Tally()).merge(tally)
    stats.days = dict(sorted(stats.days.items()))
    return stats


def stats_filters(args, user) -> Filters:
    """The period of the statistics and the group report: the request's dates, the last 7 days by default."""
    if not (args.get("range") or args.get("from") or args.get("to")):
        args = {**args, "range": "7days"}
    return parse_filters(args, user)


def group_report(filters: Filters, user) -> report.Report:
    """The group report as this user may see it: an agent, its own groups and itself."""
    visible = store.visible_group_ids(db.session, user) if user is not None else None
    names = member_names()
    return report.group_report(filters, current_app.config["PBX_SERVICE_LEVEL_SECONDS"], names,
                               lambda callids: stories_of(callids, names), visible_groups=visible,
                               own_extension=filters.own_extension)


def stories_of(linkedids: list[str], names: dict[str, set[str]]) -> dict[str, stories.Story]:
    """The stories of these calls, read in two indexed queries (their legs, their queue log rows)."""
    legs = _legs_of(linkedids)
    told = {}
    for linkedid, events in _queue_events_of(linkedids).items():
        ordered = sorted(legs.get(linkedid, []), key=lambda leg: (leg.start or datetime.min, leg.id))
        if (story := stories.tell(ordered, events, names)) is not None:
            told[linkedid] = story
    return told


def calls_of(linkedids: list[str], names: dict[str, set[str]]) -> list[Call]:
    """These calls whole, as the call log tells them (legs and queue log rows in two indexed queries; the legs
    as plain tuples of the columns a call is built from, as the export reads them: thousands at a time)."""
    legs: dict[str, list] = {}
    if linkedids:
        query = (sa.select(*(cdr_t.c[name] for name in CALL_COLUMNS)).where(cdr_t.c.linkedid.in_(linkedids))
                 .order_by(cdr_t.c.start, cdr_t.c.id))
        for row in db.session.execute(query).tuples():
            legs.setdefault(row[1], []).append(Leg._make(row))
    events = _queue_events_of(list(legs))
    return [build_call(linkedid, call_legs, presorted=True, events=events.get(linkedid, ()), names=names)
            for linkedid, call_legs in legs.items()]


# --- `pbx cdr-test` -------------------------------------------------------------------------------------

TEST_MARK = "mini-pbx cdr-test"


def health(session) -> dict:
    """What `pbx cdr-test` reports: the table, its rows, the newest record and whether Asterisk and the
    listener have been writing and seeing records lately."""
    from ..models import AmiStatus

    inspector = sa.inspect(session.get_bind())
    if not inspector.has_table("cdr"):
        return {"table": False}
    count, newest = session.execute(sa.select(sa.func.count(), sa.func.max(cdr_t.c.start))).one()
    last_day = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(days=1)
    written = session.scalar(sa.select(sa.func.count()).where(cdr_t.c.start >= last_day,
                                                              sa.func.coalesce(cdr_t.c.userfield, "") != TEST_MARK))
    status = session.get(AmiStatus, 1)
    return {"table": True, "rows": count, "newest": newest, "written_last_day": written,
            "last_cdr_event": status.last_cdr_at if status is not None else None}


def insert_test_record(session) -> str:
    now = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)
    uniqueid = f"{now.timestamp():.0f}.0"
    session.execute(sa.insert(cdr_t).values(
        src="0000", dst="0000", dcontext="mini-pbx-test", clid='"cdr-test" <0000>', channel="Local/test",
        lastapp="NoOp", lastdata="", start=now, answer=now, end=now, duration=0, billsec=0, disposition="ANSWERED",
        amaflags="DOCUMENTATION", userfield=TEST_MARK, uniqueid=uniqueid, linkedid=uniqueid))
    session.commit()
    return uniqueid


def delete_test_records(session) -> int:
    deleted = session.execute(sa.delete(cdr_t).where(cdr_t.c.userfield == TEST_MARK)).rowcount
    session.commit()
    return deleted
