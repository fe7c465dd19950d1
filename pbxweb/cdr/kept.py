"""Call statistics kept for a while in each process. Reading every call of a day or a week is the dearest
thing a page does (about a second at 30,000 calls a day), and the pages that show the figures (the
statistics, the dashboard's Today) are opened far more often than the figures change."""

import time
from dataclasses import dataclass, field

from . import service

MAX_AGE = 30.0
# Reading a week of calls runs for about a second: it lets the rest of the worker run this often.
TURN_SECONDS = 0.01


@dataclass
class KeptStatistics:
    max_age: float = MAX_AGE
    figures: dict = field(default_factory=dict)  # Filters → (read at, Statistics)
    reading: set = field(default_factory=set)

    def get(self, filters: service.Filters, fresh: bool = False) -> service.Statistics:
        """The statistics of these filters, at most `max_age` seconds old (`fresh`: read now). While one
        request reads them anew, the others are answered with the figures kept."""
        kept = self.figures.get(filters)
        now = time.monotonic()
        if kept is not None and not fresh and (now - kept[0] < self.max_age or filters in self.reading):
            return kept[1]
        self.reading.add(filters)
        try:
            statistics = service.statistics(_taking_turns(service.iter_calls(filters)))
        finally:
            self.reading.discard(filters)
        self.figures = {f: k for f, k in self.figures.items() if now - k[0] < self.max_age}
        self.figures[filters] = (time.monotonic(), statistics)
        return statistics


kept = KeptStatistics()


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
