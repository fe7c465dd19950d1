"""The group report: per group and period, callers offered, answered, abandoned, the service level as Asterisk
counts it, waits and talk; per agent, calls answered, talk time, rings left unanswered and time paused.

Counted in SQL over the period's queue log rows (one pass grouped by caller and group, then by group) rather
than by building every call: a week of a busy site is a hundred thousand rows. The rules are story.py's —
a caller who left a group (ABANDON) but went on into another group or to an extension was redirected, a
pick-up from the dashboard is the agent's answered Bridge leg — and tests hold the two to the same answers.

Service level, as app_queue.c computes it for `queue show` (within the queue's `servicelevel`, which the
realtime mapping sets to PBX_SERVICE_LEVEL_SECONDS):
    SL  = callers answered within N s ÷ callers answered
    SL2 = (answered within N s + abandoned within N s) ÷ (answered + abandoned)
where "answered" is a member the queue connected (CONNECT) and "abandoned" is every ABANDON — Asterisk also
logs a caller sent elsewhere by a Redirect as abandoned. A pick-up from the dashboard is no queue answer to
Asterisk: it is counted as answered by the report, and left out of SL and SL2.
"""

from dataclasses import dataclass, field
from datetime import datetime, timezone

import sqlalchemy as sa

from ..ext import db
from ..realtime.schema import cdr as cdr_t, queue_log as queue_log_t
from .story import PHONE_CHANNEL, PICKUP_SLACK, group_of, member_number

ENDED_TALK = ("COMPLETECALLER", "COMPLETEAGENT")
TRANSFERRED = ("TRANSFER", "BLINDTRANSFER")
NO_AGENTS = ("EXITEMPTY", "JOINEMPTY", "JOINUNAVAIL")


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


def _seconds(column, dialect: str):
    """A queue log field as whole seconds; NULL when it is not a number (PostgreSQL would fail the cast)."""
    if dialect == "postgresql":
        return sa.case((column.op("~")("^[0-9]+$"), sa.cast(column, sa.Integer)))
    return sa.cast(column, sa.Integer)


def _period(filters):
    ql = queue_log_t
    conditions = []
    if filters.start is not None:
        conditions.append(ql.c.time >= filters.start)
    if filters.end is not None:
        conditions.append(ql.c.time < filters.end)
    return conditions


def group_figures(filters, service_level: int) -> list[GroupFigures]:
    """Per group: every caller's stay in it during the period, counted."""
    dialect = db.session.get_bind().dialect.name
    ql = queue_log_t
    event = ql.c.event
    data1, data2, data3, data4 = (_seconds(ql.c[f"data{n}"], dialect) for n in (1, 2, 3, 4))
    # One row per caller and group: what happened to them there.
    stays = (
        sa.select(
            ql.c.callid, ql.c.queuename,
            sa.func.min(ql.c.time).filter(event == "ENTERQUEUE").label("entered"),
            sa.func.count().filter(event == "ENTERQUEUE").label("entries"),
            sa.func.count().filter(event == "CONNECT").label("connects"),
            sa.func.max(data1).filter(event == "CONNECT").label("hold"),
            sa.func.max(ql.c.time).filter(event == "ABANDON").label("abandoned_at"),
            sa.func.max(data3).filter(event == "ABANDON").label("abandon_wait"),
            sa.func.count().filter(event == "EXITWITHTIMEOUT").label("timeouts"),
            sa.func.max(data3).filter(event == "EXITWITHTIMEOUT").label("timeout_wait"),
            sa.func.count().filter(event.in_(NO_AGENTS)).label("empties"),
            sa.func.max(data3).filter(event == "EXITEMPTY").label("empty_wait"),
            sa.func.max(sa.case((event.in_(ENDED_TALK), data2), (event.in_(TRANSFERRED), data4))).label("talk"),
        )
        .where(*_period(filters), ql.c.queuename.like("extgroup\\_%", escape="\\"), ql.c.callid != "NONE")
        .group_by(ql.c.callid, ql.c.queuename)
        .subquery("stays")
    )
    later = queue_log_t.alias("later")
    went_to_group = (sa.select(later.c.id).where(later.c.callid == stays.c.callid, later.c.event == "ENTERQUEUE",
                                                 later.c.time > stays.c.abandoned_at).exists())
    went_on_in_dialplan = (sa.select(cdr_t.c.id).where(
        cdr_t.c.linkedid == stays.c.callid, cdr_t.c.lastapp.in_(("Dial", "VoiceMail")),
        cdr_t.c.start >= sa.func.date_trunc("second", stays.c.abandoned_at) if dialect == "postgresql"
        else cdr_t.c.start >= stays.c.abandoned_at).exists())
    answered_at = cdr_t.c.end - sa.func.make_interval(0, 0, 0, 0, 0, 0, cdr_t.c.billsec) if dialect == "postgresql" \
        else cdr_t.c.end
    pickup = (sa.select(sa.func.min(answered_at)).where(
        cdr_t.c.linkedid == stays.c.callid, cdr_t.c.lastapp == "Bridge", cdr_t.c.billsec > 0,
        cdr_t.c.channel.like("PJSIP/%"), answered_at >= stays.c.entered,
        sa.or_(stays.c.abandoned_at.is_(None), answered_at <= stays.c.abandoned_at + PICKUP_SLACK)).scalar_subquery())
    unanswered = (stays.c.connects == 0) & (stays.c.timeouts == 0) & (stays.c.empties == 0)
    # Materialized: each stay's look-ups run once, not once for every count that reads their answer.
    classified = sa.select(
        stays,
        sa.case((unanswered, pickup)).label("picked_up_at"),
        sa.case((stays.c.abandoned_at.is_not(None), sa.or_(went_to_group, went_on_in_dialplan)), else_=False).label("went_on"),
    ).cte("classified").prefix_with("MATERIALIZED", dialect="postgresql")
    c = classified.c
    picked = c.picked_up_at.is_not(None)
    pickup_wait = sa.func.extract("epoch", c.picked_up_at - c.entered) if dialect == "postgresql" else sa.null()
    wait = sa.case((c.connects > 0, c.hold), (picked, pickup_wait), (c.abandoned_at.is_not(None), c.abandon_wait),
                   (c.timeouts > 0, c.timeout_wait), (c.empties > 0, c.empty_wait))
    query = sa.select(
        c.queuename,
        sa.func.sum(c.entries).label("offered"),
        sa.func.count().filter(sa.or_(c.connects > 0, picked)).label("answered"),
        sa.func.count().filter(picked).label("picked_up"),
        sa.func.count().filter(c.abandoned_at.is_not(None), ~picked, ~c.went_on).label("abandoned"),
        sa.func.count().filter(c.abandoned_at.is_not(None), ~picked, c.went_on).label("redirected"),
        sa.func.count().filter(c.timeouts > 0, c.connects == 0).label("timed_out"),
        sa.func.count().filter(c.empties > 0, c.connects == 0, ~picked).label("no_agents"),
        sa.func.count().filter(c.connects > 0).label("connected"),
        sa.func.count().filter(c.connects > 0, c.hold <= service_level).label("connected_within"),
        sa.func.count().filter(c.abandoned_at.is_not(None)).label("abandon_logged"),
        sa.func.count().filter(c.abandoned_at.is_not(None), c.abandon_wait <= service_level).label("abandon_logged_within"),
        sa.func.coalesce(sa.func.sum(sa.func.round(wait)), 0).label("wait_total"),
        sa.func.count(wait).label("waits"),
        sa.func.coalesce(sa.func.max(sa.func.round(wait)), 0).label("wait_longest"),
        sa.func.coalesce(sa.func.sum(c.talk), 0).label("talk_total"),
        sa.func.count(c.talk).label("talks"),
    ).group_by(c.queuename)
    figures = []
    for row in db.session.execute(query):
        group = group_of(row.queuename)
        if group is None:
            continue
        values = {k: int(v or 0) for k, v in row._mapping.items() if k != "queuename"}
        figures.append(GroupFigures(group=group, **values))
    return sorted(figures, key=lambda f: f.group)


def agent_figures(filters, names: dict[str, set[str]], now: datetime | None = None) -> list[AgentFigures]:
    """Per agent (extension): calls answered from a queue or picked up, talk time, rings it let pass
    (RINGNOANSWER) and time paused."""
    dialect = db.session.get_bind().dialect.name
    ql = queue_log_t
    event = ql.c.event
    talk = sa.case((event.in_(ENDED_TALK), _seconds(ql.c.data2, dialect)), (event.in_(TRANSFERRED), _seconds(ql.c.data4, dialect)))
    query = (
        sa.select(ql.c.agent,
                  sa.func.count().filter(event == "CONNECT").label("answered"),
                  sa.func.coalesce(sa.func.sum(talk), 0).label("talk"),
                  sa.func.count().filter(event == "RINGNOANSWER").label("rang_unanswered"))
        .where(*_period(filters), event.in_(("CONNECT", "RINGNOANSWER", *ENDED_TALK, *TRANSFERRED)))
        .group_by(ql.c.agent)
    )
    agents: dict[str, AgentFigures] = {}

    def agent(name: str) -> AgentFigures:
        key = member_number(name, names, set()) or name
        return agents.setdefault(key, AgentFigures(agent=key))

    for row in db.session.execute(query):
        figures = agent(row.agent)
        figures.answered += row.answered
        figures.talk += int(row.talk or 0)
        figures.rang_unanswered += row.rang_unanswered
    pickups = sa.select(cdr_t.c.channel, cdr_t.c.billsec).where(
        cdr_t.c.lastapp == "Bridge", cdr_t.c.billsec > 0, cdr_t.c.channel.like("PJSIP/%"),
        *([cdr_t.c.start >= filters.start] if filters.start else []), *([cdr_t.c.start < filters.end] if filters.end else []))
    for channel, billsec in db.session.execute(pickups):
        if match := PHONE_CHANNEL.match(channel):
            figures = agent(match.group(1))
            figures.answered += 1
            figures.talk += billsec
    pauses = (sa.select(ql.c.agent, ql.c.queuename, ql.c.event, ql.c.time)
              .where(*_period(filters), event.in_(("PAUSE", "UNPAUSE")), ql.c.queuename != "NONE")
              .order_by(ql.c.time, ql.c.id))
    rows = [(agent(r.agent).agent, r.queuename, r.event, r.time) for r in db.session.execute(pauses)]
    until = min(filter(None, (filters.end, now or datetime.now(timezone.utc).replace(tzinfo=None))))
    for key, seconds in paused_seconds(rows, filters.start, until).items():
        agents[key].paused = seconds
    return sorted(agents.values(), key=lambda a: a.agent)


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


def group_report(filters, service_level: int, names: dict[str, set[str]], visible_groups: set[int] | None = None,
                 own_extension: str | None = None) -> Report:
    """The report for a period; an agent (`visible_groups`, `own_extension`) sees its own groups and itself."""
    postgresql = db.session.get_bind().dialect.name == "postgresql"
    if postgresql:
        # PostgreSQL's JIT compiles these queries' many expressions for a hundred times longer than they run
        # (300 ms against 3 ms for a week): off for them, back to the server's choice after.
        db.session.execute(sa.text("SET LOCAL jit = off"))
    try:
        report = Report(start=filters.start, end=filters.end, service_level=service_level,
                        groups=group_figures(filters, service_level), agents=agent_figures(filters, names))
    finally:
        if postgresql:
            db.session.execute(sa.text("SET LOCAL jit TO DEFAULT"))
    if visible_groups is not None:
        report.groups = [g for g in report.groups if g.group in visible_groups]
    if own_extension is not None:
        report.agents = [a for a in report.agents if a.agent == own_extension]
    return report


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
