"""The group report: per group and period, callers offered, answered, abandoned, the service level as Asterisk
counts it, waits and talk; per agent, calls answered, talk time, rings left unanswered and time paused.

Counted in SQL over the period's queue log rows, grouped by group (a week of a busy site is a hundred
thousand rows: building every call would take seconds). What the queue log alone does not say follows
story.py's rules: an ABANDON is a caller who hung up — or one sent elsewhere by a Redirect, which Asterisk
logs the same way, and who then went on into another group or the dialplan (checked in SQL); a pick-up from
the dashboard has no CONNECT and is the agent's answered Bridge leg (those few calls are told by story.py
itself). A test holds the report to the call log's stories.

Service level, as app_queue.c computes it for `queue show` (within the queue's `servicelevel`, which the
realtime mapping sets to PBX_SERVICE_LEVEL_SECONDS):
    SL  = callers answered within N s ÷ callers answered
    SL2 = (answered within N s + abandoned within N s) ÷ (answered + abandoned)
where "answered" is a member the queue connected (CONNECT) and "abandoned" is every caller Asterisk let go
unanswered — hung up, redirected, timed out or left an empty queue (ABANDON, EXITWITHTIMEOUT, EXITEMPTY). A
pick-up from the dashboard is no queue answer to Asterisk (it counts an abandon): the report counts it as
answered, and SL/SL2 stay Asterisk's.
"""

from dataclasses import dataclass, field
from datetime import datetime, timezone

import sqlalchemy as sa

from ..ext import db
from ..realtime.schema import cdr as cdr_t, queue_log as queue_log_t
from .story import NO_AGENT_EVENTS, REDIRECT_TARGET_APPS, group_of, member_number, seconds

ENDED_TALK = ("COMPLETECALLER", "COMPLETEAGENT")
TRANSFERRED = ("TRANSFER", "BLINDTRANSFER")
# A caller let go unanswered (fields pos|origpos|waittime): what app_queue.c counts as abandoned (`queue show`
# A:, and SL2), calling record_abandoned() for a caller who hung up or was redirected (ABANDON), timed out
# (EXITWITHTIMEOUT) or left an empty queue (EXITEMPTY).
LEFT_WAITING = ("ABANDON", "EXITWITHTIMEOUT", "EXITEMPTY")


def ratio(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


@dataclass
class GroupFigures:
    group: int
    offered: int = 0
    answered: int = 0  # by a member the queue rang, or picked up from the dashboard
    picked_up: int = 0
    abandoned: int = 0  # hung up while waiting
    redirected: int = 0
    timed_out: int = 0
    no_agents: int = 0
    # Asterisk's own counters (`queue show` C, A and what SL/SL2 are made of)
    connected: int = 0
    connected_within: int = 0
    abandon_logged: int = 0
    abandon_logged_within: int = 0
    wait_total: int = 0
    waits: int = 0
    wait_longest: int = 0
    talk_total: int = 0
    talks: int = 0

    @property
    def abandon_rate(self) -> float | None:
        return ratio(self.abandoned, self.offered)

    @property
    def service_level(self) -> float | None:
        return ratio(self.connected_within, self.connected)

    @property
    def service_level_2(self) -> float | None:
        return ratio(self.connected_within + self.abandon_logged_within, self.connected + self.abandon_logged)

    @property
    def wait_average(self) -> int | None:
        return round(self.wait_total / self.waits) if self.waits else None

    @property
    def talk_average(self) -> int | None:
        return round(self.talk_total / self.talks) if self.talks else None

    def waited(self, seconds: int, callers: int = 1) -> None:
        self.wait_total += seconds * callers
        self.waits += callers
        self.wait_longest = max(self.wait_longest, seconds)


@dataclass
class AgentFigures:
    agent: str  # the extension's number when the queue log's member name could be read, else that name
    answered: int = 0
    talk: int = 0
    rang_unanswered: int = 0
    paused: int = 0  # seconds


@dataclass
class Report:
    start: datetime | None
    end: datetime | None
    service_level: int
    groups: list[GroupFigures] = field(default_factory=list)
    agents: list[AgentFigures] = field(default_factory=list)


def _period(column, filters) -> list:
    return ([column >= filters.start] if filters.start is not None else []) + \
        ([column < filters.end] if filters.end is not None else [])


def _in_period(moment: datetime | None, filters) -> bool:
    return moment is not None and (filters.start is None or moment >= filters.start) and \
        (filters.end is None or moment < filters.end)


def _pickup_legs(filters):
    """The answered legs of pick-ups from the dashboard in the period (the agent's phone running Bridge)."""
    return (cdr_t.c.lastapp == "Bridge", cdr_t.c.billsec > 0, *_period(cdr_t.c.start, filters))


def _counted(filters, service_level: int) -> dict[int, GroupFigures]:
    """What the queue log says, per group: one pass over the period's rows, grouped by group, event and the
    row's wait (CONNECT: holdtime; ABANDON, EXIT…: waittime) or talk as written — a few thousand groups for a
    week, whose text is read as numbers here rather than on every row. Who of those who left hung up is
    _left_waiting's."""
    ql = queue_log_t
    event = ql.c.event
    wait = sa.case((event == "CONNECT", ql.c.data1), (event.in_(LEFT_WAITING), ql.c.data3))
    talk = sa.case((event.in_(ENDED_TALK), ql.c.data2), (event.in_(TRANSFERRED), ql.c.data4))
    query = (
        sa.select(ql.c.queuename, event, wait, talk, sa.func.count())
        .where(*_period(ql.c.time, filters), ql.c.queuename.like("extgroup\\_%", escape="\\"), ql.c.callid != "NONE")
        .group_by(ql.c.queuename, event, wait, talk)
    )
    figures: dict[int, GroupFigures] = {}
    for queuename, kind, waited, talked, count in db.session.execute(query):
        group = group_of(queuename)
        if group is None:
            continue
        f = figures.setdefault(group, GroupFigures(group=group))
        waited, talked = seconds(waited), seconds(talked)
        if kind == "ENTERQUEUE":
            f.offered += count
        elif kind == "CONNECT":
            f.connected += count
            f.connected_within += count if waited is not None and waited <= service_level else 0
        elif kind in LEFT_WAITING:
            f.abandon_logged += count
            f.abandon_logged_within += count if waited is not None and waited <= service_level else 0
        if kind == "EXITWITHTIMEOUT":
            f.timed_out += count
        if kind in NO_AGENT_EVENTS:
            f.no_agents += count
        if waited is not None:
            f.waited(waited, count)
        if talked is not None:
            f.talk_total += talked * count
            f.talks += count
    return figures


def _left_waiting(figures: dict[int, GroupFigures], filters, dialect: str) -> None:
    """Who of the callers who left a group (ABANDON) in the period hung up, and who went on (story.py's rule,
    in SQL: into another group, or to an extension or mailbox by the dialplan) after a Redirect. Calls picked
    up from the dashboard are left to their stories. A pick-up also leaves an ABANDON under a uniqueid of
    its own, the channel Bridge left behind in Queue() (no ENTERQUEUE, no CDR: seen on Asterisk 22): Asterisk
    counts it, the report takes it and its wait out (the pick-up's story has its own)."""
    ql = queue_log_t
    later = queue_log_t.alias("later")
    into_group = sa.select(later.c.id).where(later.c.callid == ql.c.callid, later.c.event == "ENTERQUEUE",
                                             later.c.time > ql.c.time).exists()
    since = sa.func.date_trunc("second", ql.c.time) if dialect == "postgresql" else ql.c.time
    into_dialplan = sa.select(cdr_t.c.id).where(cdr_t.c.linkedid == ql.c.callid, cdr_t.c.lastapp.in_(REDIRECT_TARGET_APPS),
                                                cdr_t.c.start >= since).exists()
    picked_up = ql.c.callid.in_(sa.select(cdr_t.c.linkedid).where(*_pickup_legs(filters)))
    left_behind = ~sa.select(later.c.id).where(later.c.callid == ql.c.callid, later.c.event == "ENTERQUEUE",
                                               later.c.time <= ql.c.time).exists()
    # Each look-up runs once a row, and only as far as it must (AND and CASE stop at what decides).
    how = sa.case((picked_up, "picked up"), (left_behind, "left behind"), (sa.or_(into_group, into_dialplan), "went on"),
                  else_="hung up")
    query = (sa.select(ql.c.queuename, ql.c.data3, how, sa.func.count())
             .where(ql.c.event == "ABANDON", *_period(ql.c.time, filters))
             .group_by(ql.c.queuename, ql.c.data3, how))
    for queuename, waited, kind, count in db.session.execute(query):
        f = figures.get(group_of(queuename))
        if f is None:
            continue
        if kind == "hung up":
            f.abandoned += count
        elif kind == "went on":
            f.redirected += count
        elif kind == "left behind" and (waited := seconds(waited)) is not None:
            f.wait_total -= waited * count  # (the longest wait keeps it: the pick-up waited as long)
            f.waits -= count


def figures(filters, service_level: int, names: dict[str, set[str]], stories_of,
            now: datetime | None = None) -> tuple[list[GroupFigures], list[AgentFigures]]:
    """The groups' and the agents' figures for the period. `stories_of(callids)` → {callid: Story}."""
    dialect = db.session.get_bind().dialect.name
    groups = _counted(filters, service_level)
    _left_waiting(groups, filters, dialect)
    agents = _agents(filters, names, dialect)

    def agent(number: str) -> AgentFigures:
        return agents.setdefault(number, AgentFigures(agent=number))

    picked = sorted(set(db.session.scalars(sa.select(cdr_t.c.linkedid).where(*_pickup_legs(filters)))))
    for story in (stories_of(picked).values() if picked else ()):
        for visit in story.visits:
            group = groups.get(visit.group)
            if group is None or not _in_period(visit.left, filters):
                continue
            if visit.picked_up:
                group.answered += 1
                group.picked_up += 1
                if visit.logged != "ABANDON":  # else its wait is among the queue log's already
                    group.waited(visit.wait or 0)
                if visit.talk is not None:
                    group.talk_total += visit.talk
                    group.talks += 1
                if visit.answered_by:
                    agent(visit.answered_by).answered += 1
                    agent(visit.answered_by).talk += visit.talk or 0
            elif visit.logged == "ABANDON":
                if visit.ended == "redirected":
                    group.redirected += 1
                else:
                    group.abandoned += 1
    for group in groups.values():
        group.answered += group.connected
    until = min(filter(None, (filters.end, now or datetime.now(timezone.utc).replace(tzinfo=None))))
    for key, seconds in paused_seconds(_pauses(filters, names), filters.start, until).items():
        agent(key).paused = seconds
    return sorted(groups.values(), key=lambda g: g.group), sorted(agents.values(), key=lambda a: a.agent)


def _agent_key(name: str, names: dict[str, set[str]]) -> str:
    return member_number(name, names) or name


def _agents(filters, names: dict[str, set[str]], dialect: str) -> dict[str, AgentFigures]:
    """Per agent, from the queue log: calls the queue connected to it, their talk, rings it let pass."""
    ql = queue_log_t
    event = ql.c.event
    talk = sa.case((event.in_(ENDED_TALK), ql.c.data2), (event.in_(TRANSFERRED), ql.c.data4))
    if dialect == "postgresql":  # the cast fails on anything but digits there
        talk = sa.case((talk.op("~")("^[0-9]+$"), talk))
    query = (sa.select(ql.c.agent, event, sa.func.count(), sa.func.sum(sa.cast(talk, sa.Integer)))
             .where(*_period(ql.c.time, filters), event.in_(("CONNECT", "RINGNOANSWER", *ENDED_TALK, *TRANSFERRED)))
             .group_by(ql.c.agent, event))
    agents: dict[str, AgentFigures] = {}
    for name, kind, count, talked in db.session.execute(query):
        key = _agent_key(name, names)
        figures = agents.setdefault(key, AgentFigures(agent=key))
        if kind == "CONNECT":
            figures.answered += count
        elif kind == "RINGNOANSWER":
            figures.rang_unanswered += count
        else:
            figures.talk += int(talked or 0)
    return agents


def _pauses(filters, names: dict[str, set[str]]) -> list[tuple]:
    ql = queue_log_t
    query = (sa.select(ql.c.agent, ql.c.queuename, ql.c.event, ql.c.time)
             .where(ql.c.event.in_(("PAUSE", "UNPAUSE")), *_period(ql.c.time, filters), ql.c.queuename != "NONE")
             .order_by(ql.c.time, ql.c.id))
    return [(_agent_key(r.agent, names), r.queuename, r.event, r.time) for r in db.session.execute(query)]


def paused_seconds(rows, start: datetime | None, end: datetime) -> dict[str, int]:
    """Seconds each agent was paused in [start, end), from (agent, queue, PAUSE|UNPAUSE, time) rows in time
    order. A pause is per queue (Asterisk writes one PAUSE per queue of the member, and a PAUSEALL besides,
    which is not among the rows): an agent paused in two queues at once is paused once, so the queues'
    intervals are merged. An UNPAUSE with no PAUSE before it in the period was paused since its start; a
    PAUSE never lifted lasts to its end."""
    intervals: dict[str, list[tuple[datetime, datetime]]] = {}
    since: dict[tuple[str, str], datetime | None] = {}
    for agent, queue, kind, at in rows:
        key = (agent, queue)
        if kind == "PAUSE":
            since.setdefault(key, at)
        elif key in since or start is not None:
            began = since.pop(key, start)
            if began is not None and at > began:
                intervals.setdefault(agent, []).append((began, at))
    for (agent, _), began in since.items():
        if began is not None and end > began:
            intervals.setdefault(agent, []).append((began, end))
    return {agent: _merged_length(spans) for agent, spans in intervals.items()}


def _merged_length(spans: list[tuple[datetime, datetime]]) -> int:
    total = 0
    current = None
    for begin, end in sorted(spans):
        if current is None or begin > current[1]:
            if current is not None:
                total += (current[1] - current[0]).total_seconds()
            current = [begin, end]
        else:
            current[1] = max(current[1], end)
    if current is not None:
        total += (current[1] - current[0]).total_seconds()
    return round(total)


def group_report(filters, service_level: int, names: dict[str, set[str]], stories_of,
                 visible_groups: set[int] | None = None, own_extension: str | None = None) -> Report:
    """The report for a period; an agent (`visible_groups`, `own_extension`) sees its own groups and itself."""
    postgresql = db.session.get_bind().dialect.name == "postgresql"
    if postgresql:
        # PostgreSQL's JIT compiles these queries' expressions for far longer than they run (300 ms against
        # 3 ms for a week): off for them, back to the server's choice after.
        db.session.execute(sa.text("SET LOCAL jit = off"))
    try:
        groups, agents = figures(filters, service_level, names, stories_of)
    finally:
        if postgresql:
            db.session.execute(sa.text("SET LOCAL jit TO DEFAULT"))
    if visible_groups is not None:
        groups = [g for g in groups if g.group in visible_groups]
    if own_extension is not None:
        agents = [a for a in agents if a.agent == own_extension]
    return Report(start=filters.start, end=filters.end, service_level=service_level, groups=groups, agents=agents)


def to_dict(report: Report, group_names: dict[int, str]) -> dict:
    def when(value):
        return value.replace(tzinfo=timezone.utc).isoformat() if value else None

    return {
        "from": when(report.start), "to": when(report.end), "service_level_seconds": report.service_level,
        "groups": [{
            "group": g.group, "name": group_names.get(g.group), "offered": g.offered, "answered": g.answered,
            "picked_up": g.picked_up, "abandoned": g.abandoned, "abandon_rate": g.abandon_rate,
            "redirected": g.redirected, "timed_out": g.timed_out, "no_agents": g.no_agents,
            "service_level": g.service_level, "service_level_2": g.service_level_2,
            "asterisk": {"answered": g.connected, "answered_within": g.connected_within, "abandoned": g.abandon_logged,
                         "abandoned_within": g.abandon_logged_within},
            "wait_average": g.wait_average, "wait_longest": g.wait_longest if g.waits else None,
            "talk_average": g.talk_average,
        } for g in report.groups],
        "agents": [{"agent": a.agent, "answered": a.answered, "talk": a.talk, "rang_unanswered": a.rang_unanswered,
                    "paused": a.paused} for a in report.agents],
    }
