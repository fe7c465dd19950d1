"""Call statistics and exports kept in each process. Reading every call of a day or a week is the dearest
thing a page does (about a second at 30,000 calls a day), and the pages that show the figures (the
statistics, the dashboard's Today) are opened far more often than the figures change. Statistics are kept
for a while; an export, which must hold every call, for as long as nothing it was read from has changed."""

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timezone

from ..ext import db
from ..live import store
from ..site_time import site_zone
from . import service

log = logging.getLogger(__name__)
MAX_AGE = 30.0
PAST_DAY_MAX_AGE = 600.0
# How long a request waits for another's reading of the same figures before it reads them itself.
READ_WAIT_SECONDS = 60.0
# Reading a week of calls runs for about a second: it lets the rest of the worker run this often.
TURN_SECONDS = 0.01


@dataclass
class KeptStatistics:
    max_age: float = MAX_AGE
    # A day that is over: its calls are all written (but for a call still going on at midnight, rare).
    past_day_max_age: float = PAST_DAY_MAX_AGE
    figures: dict = field(default_factory=dict)  # key → (read at, how long kept, figures)
    reading: dict = field(default_factory=dict)  # key → set when its read is over

    def get(self, filters: service.Filters, fresh: bool = False) -> service.Statistics:
        """The statistics of these filters, at most `max_age` seconds old (`fresh`: read now). A period of
        whole days is read a day at a time, and a day that is over is kept for longer: the last 7 days cost
        what today does, but once in ten minutes."""
        days = service.days_of(filters)
        if not days:
            return self._read(filters, self.max_age, fresh)
        today = datetime.now(timezone.utc).replace(tzinfo=None)
        return service.merged([self._read(day, self.past_day_max_age if day.end <= today else self.max_age, fresh)
                               for day in days])

    def _read(self, filters: service.Filters, max_age: float, fresh: bool) -> service.Statistics:
        return self.keep(filters, lambda: service.statistics(_taking_turns(service.iter_calls(filters)), since=filters.start),
                         fresh, max_age)

    def group_report(self, filters: service.Filters, user):
        """The group report as this user may see it (its groups: an agent sees its own), kept alike: it reads
        the period's queue log, a quarter of a second at 30,000 calls a day."""
        visible = store.visible_group_ids(db.session, user) if user is not None else None
        key = ("group report", filters, None if visible is None else frozenset(visible))
        return self.keep(key, lambda: service.group_report(filters, user))

    def keep(self, key, read, fresh: bool = False, max_age: float | None = None):
        """`read()`'s figures, at most `max_age` (by default the kept's own) seconds old. While one request
        reads them anew, the others are answered with the figures kept — or, with none kept yet (a worker
        just started), wait for that read: fifty requests at once each reading a week of calls took them all
        seconds."""
        max_age = self.max_age if max_age is None else max_age
        kept = self.figures.get(key)
        now = time.monotonic()
        if kept is not None and not fresh and (now - kept[0] < min(max_age, kept[1]) or key in self.reading):
            return kept[2]
        if kept is None and (ongoing := self.reading.get(key)) is not None:
            ongoing.wait(READ_WAIT_SECONDS)
            if (kept := self.figures.get(key)) is not None:
                return kept[2]
        self.reading[key] = done = threading.Event()
        try:
            figures = read()
            self.figures = {k: v for k, v in self.figures.items() if now - v[0] < v[1]}
            self.figures[key] = (time.monotonic(), max_age, figures)
        finally:
            if self.reading.get(key) is done:
                del self.reading[key]
            done.set()
        return figures


kept = KeptStatistics()

# What staff open most: the statistics page (the last 7 days by default), the dashboard's Today.
WARM_RANGES = ("7days", "today")


def warm(app) -> None:
    """Read the figures staff open most (every call's, with the group report) into this process's kept ones
    as it starts, so the first to open them after a restart is not kept waiting for a week of calls (about
    five seconds at 30,000 calls a day, while every request asking meanwhile waited for that reading)."""
    with app.app_context():
        try:
            for quick in WARM_RANGES:
                filters = service.stats_filters({"range": quick}, None)
                kept.get(filters)
                kept.group_report(filters, None)
        except Exception as exc:  # noqa: BLE001 — the first request reads them instead
            log.warning("kept figures: not read at start (%s)", exc)
        finally:
            db.session.remove()

# Today's 30,000 calls export as 2.5 MB: a larger export is streamed and not kept, and a worker keeps a few.
EXPORT_BYTES = 8 << 20
EXPORTS_BYTES = 32 << 20


@dataclass
class KeptExports:
    max_bytes: int = EXPORT_BYTES
    total_bytes: int = EXPORTS_BYTES
    # (Filters, calls_version(), group names, zone) → (bytes, chunks)
    exports: OrderedDict = field(default_factory=OrderedDict)

    def lines(self, filters: service.Filters):
        """The export's CSV, a chunk at a time: the chunks kept for these filters while no call was recorded
        and no group renamed since, or read and streamed as they come (and kept, when small enough). An
        export that needed extension names (a queue log naming a member without its number) depends on more
        than the calls, and is not kept."""
        groups = service.group_names()
        key = (filters, service.calls_version(), tuple(sorted(groups.items())), str(site_zone()))
        if (kept_export := self.exports.get(key)) is not None:
            self.exports.move_to_end(key)
            yield from kept_export[1]
            return
        names = service.member_names()
        chunks, size = [], 0
        for chunk in service.export_lines(filters, names=names, groups=groups):
            yield chunk
            if chunks is not None:
                chunks.append(chunk)
                size += len(chunk)
                if size > self.max_bytes:
                    chunks = None
        if chunks is None or names.consulted:
            return
        self.exports = OrderedDict((k, v) for k, v in self.exports.items() if k[0] != filters)
        self.exports[key] = (size, chunks)
        while sum(kept_size for kept_size, _ in self.exports.values()) > self.total_bytes:
            self.exports.popitem(last=False)


exports = KeptExports()


def _taking_turns(calls):
    """The calls, pausing every TURN_SECONDS: under gevent a greenlet that never waits would hold its worker,
    every other request and live push included, for as long as it reads (time.sleep(0) is gevent's turn
    under its patch)."""
    turn = time.perf_counter()
    for call in calls:
        yield call
        if time.perf_counter() - turn >= TURN_SECONDS:
            time.sleep(0)
            turn = time.perf_counter()
