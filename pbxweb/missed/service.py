"""Missed callers to call back: for each group, the outside callers who abandoned, timed out, went to voicemail
or found nobody to take the call — and whom nobody has reached since. Told from the call log's own stories
(cdr/service.build_call, cdr/story.py), never from a guess of its own.

A caller counts as reached by a later call that connected with their number: an inbound call from it
answered by someone (a member, a pick-up, an extension), or an outbound call to it (click-to-call included)
that the other side answered. A person may also call them back from the dashboard (the row then shows who
does, for every dashboard) or mark them done by hand; both are kept as marks with who and when.

The list is bounded to the last PBX_MISSED_CALL_DAYS days and read with indexed queries: the ends of group
stays in that window (queue log, event + time), then those calls and the later calls from or to the same
numbers (cdr, linkedid / src / dst).
"""

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
from flask import current_app

from .. import validation as v
from ..cdr import service as calls_service
from ..cdr import story as stories
from ..ext import db
from ..live import store
from ..models import ExtensionGroup, MissedCallMark, User, utcnow
from ..waiting_calls import service as actions

# The outcomes of a caller nobody spoke to. "no agents" too: a caller who found the group empty was missed
# like one who gave up waiting.
MISSED_OUTCOMES = ("abandoned", "timeout", "voicemail", "no agents")
# The queue log events that end a stay in a group other than by an answer: a missed call has one of them.
MISSED_EVENTS = tuple(event for event, word in stories.ENDINGS.items() if word != "answered")
# What the dialplan dials after the outside-line prefix (`_0X.`: digits only). Anything else (anonymous,
# a withheld or international `+` number) is listed but gets no call-back button.
DIALABLE = re.compile(r"[0-9]{3,20}")
# A caller id that is a number at all: "anonymous", "unknown" or nothing is a withheld number.
PHONE_NUMBER = re.compile(r"\+?[0-9*#]{1,32}")
CALLER_NAME = re.compile(r'^\s*"?(.*?)"?\s*<[^<>]*>\s*$')
DIAL_TO_TRUNK = re.compile(r"PJSIP/([^@,]+)@")
TRUNK_OR_OUTSIDE = re.compile(r"PJSIP/(?!\d{2,6}-)")
# Another person's call-back holds the row this long: two people do not ring one customer at once.
CALLBACK_HOLD = timedelta(minutes=2)


# --- the rules (pure) --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mark:
    """Someone acting on a missed caller: calling back, or done. `until`: the start of the newest try it covers."""

    group: int
    number: str
    kind: str
    by: str
    at: datetime
    until: datetime


@dataclass
class MissedCaller:
    group: int
    number: str
    name: str
    first: datetime  # UTC, naive like the cdr table: the first try not reached since
    last: datetime  # the newest try
    last_call: str  # the newest try's linkedid: the row's id
    outcome: str  # of the newest try
    calls: list[str] = field(default_factory=list)  # every try's linkedid, newest first
    started: dict[str, datetime] = field(default_factory=dict)  # when each try started, by linkedid
    wait_total: int = 0  # seconds waited over every try
    wait_longest: int = 0
    calling_back: Mark | None = None

    @property
    def tries(self) -> int:
        return len(self.calls)

    @property
    def dialable(self) -> bool:
        return DIALABLE.fullmatch(self.number) is not None

    @property
    def shown_number(self) -> str:
        return shown_number(self.number)


def shown_number(number: str) -> str:
    """The caller's number as people read it: a withheld one says so."""
    return number if PHONE_NUMBER.fullmatch(number or "") else "Withheld number"


def caller_name(clid: str) -> str:
    """The name in a caller id (`"Smith, John" <0612345678>`), or nothing."""
    match = CALLER_NAME.match(clid or "")
    return match.group(1).replace('""', '"').strip() if match else ""


def missed_group(call) -> int | None:
    """The group an outside caller was missed in (where the call ended), or None when it was no missed call."""
    if call.direction != "inbound" or call.final_outcome not in MISSED_OUTCOMES or call.story is None:
        return None
    return call.story.visits[-1].group


def reached_number(call) -> str | None:
    """The outside number this call connected with, if it did: an inbound call answered by someone, or an
    outbound call (from a phone, or click-to-call) that the other side answered."""
    if call.direction == "inbound":
        answered = call.final_outcome == "answered" and (call.source == "queue_log" or call.answered_by is not None)
        return (call.src or None) if answered else None
    # From a phone: a leg that dialled out through a trunk and was answered there. A click-to-call is one leg like
    # a phone's own call (seen on the lab, calls/missed-callback: channel and src the user's phone, dst the prefix
    # and the number, Dial to the trunk) — but its answer time is the user's phone answering, so its billsec has
    # seconds even when the other side never answered: the disposition (NO ANSWER then) is what tells. Every leg
    # is looked at, since a transferred call is several.
    for leg in call.legs:
        dialled = DIAL_TO_TRUNK.match(leg.lastdata or "")
        if (dialled and leg.disposition == "ANSWERED" and (leg.billsec or 0) > 0
                and TRUNK_OR_OUTSIDE.match(leg.dstchannel or "")):
            return dialled.group(1)
    return None


def missed_callers(calls, marks=()) -> list[MissedCaller]:
    """Calls → the missed callers of each group, newest try first. A try counts while nobody reached the
    number after it started and nobody marked it done (a mark's `until` covers it); the row shows who is
    calling back when they did so after its newest try."""
    calls = sorted(calls, key=lambda c: c.started or datetime.min)
    reached: dict[str, datetime] = {}
    for call in calls:
        if (number := reached_number(call)) and call.started is not None:
            reached[number] = max(reached.get(number, call.started), call.started)
    done: dict[tuple[int, str], datetime] = {}
    calling: dict[tuple[int, str], Mark] = {}
    for mark in sorted(marks, key=lambda m: m.at):
        key = (mark.group, mark.number)
        if mark.kind == "done":
            done[key] = max(done.get(key, mark.until), mark.until)
        else:
            calling[key] = mark
    rows: dict[tuple[int, str], MissedCaller] = {}
    for call in calls:
        group = missed_group(call)
        if group is None or call.started is None:
            continue
        number = call.src
        if call.started < reached.get(number, datetime.min) or call.started <= done.get((group, number), datetime.min):
            continue
        row = rows.get((group, number))
        if row is None:
            row = rows[(group, number)] = MissedCaller(group, number, "", call.started, call.started, call.linkedid,
                                                       call.final_outcome)
        row.last, row.last_call, row.outcome = call.started, call.linkedid, call.final_outcome
        row.name = caller_name(call.clid) or row.name
        row.calls.insert(0, call.linkedid)
        row.started[call.linkedid] = call.started
        row.wait_total += call.wait or 0
        row.wait_longest = max(row.wait_longest, call.wait or 0)
    for key, row in rows.items():
        mark = calling.get(key)
        row.calling_back = mark if mark is not None and mark.until >= row.last else None
    return sorted(rows.values(), key=lambda r: r.last, reverse=True)


# --- reading them ------------------------------------------------------------------------------------------


def window_start() -> datetime:
    """The oldest call the list looks at, in UTC as the cdr table holds it."""
    days = current_app.config["PBX_MISSED_CALL_DAYS"]
    return datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(days=days)


def _missed_linkedids(since: datetime, groups: set[int] | None) -> list[str]:
    """Calls with a stay in a group that ended unanswered since then (ix_queue_log_event_time)."""
    q = calls_service.queue_log_t
    query = sa.select(q.c.callid).where(q.c.event.in_(MISSED_EVENTS), q.c.time >= since).distinct()
    if groups is not None:
        query = query.where(q.c.queuename.in_([f"extgroup_{g}" for g in groups]))
    return list(db.session.scalars(query))


def _later_linkedids(numbers: set[str], since: datetime) -> list[str]:
    """Calls since then from these numbers, or dialled to them through the outside-line prefix (ix_cdr_src,
    ix_cdr_dst): the calls that may have reached them."""
    if not numbers:
        return []
    prefix = current_app.config["PBX_OUTBOUND_PREFIX"]
    cdr = calls_service.cdr_t
    query = sa.select(cdr.c.linkedid).where(cdr.c.start >= since, sa.or_(
        cdr.c.src.in_(numbers), cdr.c.dst.in_([prefix + n for n in numbers]))).distinct()
    return list(db.session.scalars(query))


def _marks(groups: set[int] | None, since: datetime) -> list[Mark]:
    query = (sa.select(MissedCallMark.group_id, MissedCallMark.number, MissedCallMark.kind, User.username,
                       MissedCallMark.at, MissedCallMark.until)
             .join(User, User.id == MissedCallMark.user_id).where(MissedCallMark.until >= since))
    if groups is not None:
        query = query.where(MissedCallMark.group_id.in_(groups))
    return [Mark(*row) for row in db.session.execute(query)]


def visible_groups(user, group: int | None = None) -> set[int] | None:
    """The groups whose missed callers this user sees (an agent: its own), narrowed to `group` when given."""
    groups = store.visible_group_ids(db.session, user)
    if group is None:
        return groups
    if (groups is not None and group not in groups) or db.session.get(ExtensionGroup, group) is None:
        raise v.NotFound(f"group {group}")
    return {group}


def for_user(user, group: int | None = None) -> list[MissedCaller]:
    """The missed callers this user may see (of one group, or of every group it sees), newest first."""
    groups = visible_groups(user, group)
    since = window_start()
    if groups == set():
        return []
    names = calls_service.member_names()
    missed = calls_service.calls_of(_missed_linkedids(since, groups), names)
    numbers = {c.src for c in missed if missed_group(c) is not None and c.src}
    seen = {c.linkedid for c in missed}
    later = calls_service.calls_of([i for i in _later_linkedids(numbers, since) if i not in seen], names)
    rows = missed_callers(missed + later, _marks(groups, since))
    # A caller redirected out of a group this user sees may have ended in one it does not (the row is that
    # group's); a deleted group's callers have nobody to call them back.
    existing = set(group_names())
    return [row for row in rows if row.group in existing and (groups is None or row.group in groups)]


def parse_group(value) -> int | None:
    """The `group` of a query string, checked; None when not given."""
    if value in (None, ""):
        return None
    errors = v.Errors()
    group = v.integer(errors, "group", value, minimum=1, maximum=2**31 - 1)
    errors.raise_if_any()
    return group


def find(linkedid: str, user) -> MissedCaller:
    """The row one of whose tries is this call, among those the user sees; 404 otherwise (reached since,
    done, or never a missed call of its groups)."""
    for row in for_user(user):
        if linkedid in row.calls:
            return row
    raise v.NotFound(f"missed call {linkedid}")


# A pg_advisory_xact_lock key space of its own: one lock per missed caller while a call-back is claimed.
CLAIM_LOCK_SPACE = 0x6D63  # "mc"


def _claim(row: MissedCaller, user) -> MissedCallMark:
    """Mark the row as being called back by this user, or a 409 naming who already is (within CALLBACK_HOLD):
    the lock per caller makes two clicks at once queue up, and the second sees the first's mark."""
    session = db.session
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("SELECT pg_advisory_xact_lock(:space, hashtext(:key))"),
                        {"space": CLAIM_LOCK_SPACE, "key": f"{row.group}:{row.number}"})
    now = utcnow()
    other = session.execute(
        sa.select(User.username, MissedCallMark.at).join(User, User.id == MissedCallMark.user_id)
        .where(MissedCallMark.group_id == row.group, MissedCallMark.number == row.number,
               MissedCallMark.kind == "callback", MissedCallMark.user_id != user.id,
               MissedCallMark.until >= row.last, MissedCallMark.at > now - CALLBACK_HOLD)
        .order_by(MissedCallMark.at.desc()).limit(1)).first()
    if other is not None:
        session.commit()
        raise v.Conflict({"_": f"{other.username} is already calling {row.number} back"})
    mark = MissedCallMark(group_id=row.group, number=row.number, kind="callback", user_id=user.id, at=now, until=row.last)
    session.add(mark)
    session.commit()
    return mark


def call_back(linkedid: str, user) -> tuple[MissedCaller, actions.Sent]:
    """Click-to-call to the caller's number through the outside line (its limits: own phone, rate per user);
    the row shows who calls back from the moment the click is accepted. A click that sent nothing takes the
    mark back."""
    row = find(linkedid, user)
    if not row.dialable:
        raise v.ValidationError({"number": f"{row.shown_number} cannot be dialled from here"})
    if user.extension is None or not user.extension.is_active:
        raise v.ValidationError({"_": "you have no extension of your own to call from: ask an admin to link one to your user"})
    mark = _claim(row, user)
    try:
        sent = actions.click_to_call(user, current_app.config["PBX_OUTBOUND_PREFIX"] + row.number)
    except v.ServiceError:
        db.session.rollback()
        db.session.execute(sa.delete(MissedCallMark).where(MissedCallMark.id == mark.id))
        db.session.commit()
        raise
    row.calling_back = Mark(row.group, row.number, "callback", user.username, mark.at, mark.until)
    return row, sent


def mark_done(linkedid: str, user) -> Mark:
    """Clear the row by hand, by this user, now (kept): the try named and those before it — a try that came in
    after the person looked stays listed."""
    row = find(linkedid, user)
    until = row.started[linkedid]
    mark = MissedCallMark(group_id=row.group, number=row.number, kind="done", user_id=user.id, at=utcnow(), until=until)
    db.session.add(mark)
    db.session.commit()
    return Mark(row.group, row.number, "done", user.username, mark.at, mark.until)


def group_names() -> dict[int, str]:
    return calls_service.group_names()


def _utc(value: datetime) -> str:
    return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).isoformat()


def mark_to_dict(mark: Mark | None) -> dict | None:
    return None if mark is None else {"by": mark.by, "at": _utc(mark.at)}


def to_dict(row: MissedCaller, names: dict[int, str]) -> dict:
    return {"id": row.last_call, "group": row.group, "group_name": names.get(row.group), "number": row.number,
            "name": row.name, "tries": row.tries, "wait_total": row.wait_total, "wait_longest": row.wait_longest,
            "first": _utc(row.first), "last": _utc(row.last), "outcome": row.outcome, "calls": row.calls,
            "dialable": row.dialable, "calling_back": mark_to_dict(row.calling_back)}
