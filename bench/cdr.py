"""The call log at 1,000,000 records on PostgreSQL: about 500,000 calls of 1-3 legs over 90 days (inbound
through queues that ring several agents, internal, outbound) and their queue log as Asterisk writes it,
loaded with COPY. Prints p50/p95 of the first page and of a deep page for typical filters, against the
baseline of the same process counting the matching records (the least any list must read), the EXPLAIN
(ANALYZE) of the slowest page's scan, the group report of the last 7 days against counting the queue log
rows it reads, and the export of every call: wall time and the exporting process's peak RSS.

    .venv/bin/python -m bench.cdr [--records N] [--requests N] [--days N]

`--records 78000 --days 7` loads a week as dense as the last week of 1,000,000 records over 90 days: the
group report's figure at that size, in seconds rather than minutes.

Targets (issue 9): page p95 < 50 ms; 1M-record export < 10 s under 150 MB. Issue 14: 7-day report p95 < 300 ms.
"""

import argparse
import csv
import io
import random
import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta

import sqlalchemy as sa

from pbxweb.cdr import report, service
from pbxweb.ext import db
from pbxweb.realtime.schema import cdr as cdr_t, queue_log as queue_log_t

from .setup import bench_app

COLUMNS = ("src", "dst", "dcontext", "clid", "channel", "dstchannel", "lastapp", "lastdata", "start", "answer", "end",
           "duration", "billsec", "disposition", "amaflags", "uniqueid", "linkedid", "sequence")
DAYS = 90


QUEUE_LOG_COLUMNS = ("time", "callid", "queuename", "agent", "event", "data1", "data2", "data3")


def calls(records: int, now: datetime, days: int = DAYS, seed: int = 7):
    """Realistic calls, oldest first, about two legs per call: (cdr rows in COLUMNS order, queue log rows in
    QUEUE_LOG_COLUMNS order) for each — the queue log as Asterisk writes it for the queue calls."""
    rng = random.Random(seed)
    first = now - timedelta(days=days)
    span = days * 86400
    written = sequence = 0
    calls = max(1, int(records / 1.9))  # legs per call: 60% inbound ringing 2.5 agents on average, 40% one leg
    step = span / calls
    call = 0
    while written < records:
        start = first + timedelta(seconds=int(call * step))
        epoch = int(start.timestamp())
        linkedid = f"{epoch}.{call}"
        kind = rng.random()
        caller = str(1000 + rng.randrange(100))
        legs, log = [], []
        if kind < 0.6:  # inbound, through a queue ringing 2-3 agents
            number = f"06{rng.randrange(10**8):08d}"
            group = 1 + rng.randrange(5)
            queue = f"extgroup_{group}"
            answered = rng.random() < 0.8
            agents = rng.sample(range(1000, 1100), 2 + (rng.random() < 0.5))
            wait = rng.randrange(2, 40)
            talk = rng.randrange(20, 600) if answered else 0
            log.append((start, linkedid, queue, "NONE", "ENTERQUEUE", "", number, "1"))
            for index, agent in enumerate(agents):
                won = answered and index == 0
                legs.append((number, "s", "extgroup-handler", f'"Caller {number[-4:]}" <{number}>', f"PJSIP/provider-{call:08x}",
                             f"PJSIP/{agent}-{call:08x}", "Queue", f"{queue},t,,,60", start, start,
                             start + timedelta(seconds=wait + talk), wait + talk, talk if won else wait,
                             "ANSWERED"))  # the caller was answered before Queue(): every leg says so
                if not won and rng.random() < 0.5:
                    log.append((start + timedelta(seconds=min(wait, 15)), linkedid, queue, f"{agent} Agent {agent}", "RINGNOANSWER",
                                str(min(wait, 15) * 1000), "", ""))
            left = start + timedelta(seconds=wait)
            if answered:
                log.append((left, linkedid, queue, f"{agents[0]} Agent {agents[0]}", "CONNECT", str(wait), f"{epoch}.{call}9", "3"))
                log.append((left + timedelta(seconds=talk), linkedid, queue, f"{agents[0]} Agent {agents[0]}", "COMPLETECALLER",
                            str(wait), str(talk), "1"))
            elif rng.random() < 0.75:
                log.append((left, linkedid, queue, "NONE", "ABANDON", str(1 + rng.randrange(3)), "1", str(wait)))
            else:
                log.append((left, linkedid, queue, "NONE", "EXITWITHTIMEOUT", "1", "1", str(wait)))
        elif kind < 0.8:  # internal
            callee = str(1000 + rng.randrange(100))
            answered = rng.random() < 0.75
            talk = rng.randrange(5, 300) if answered else 0
            ring = rng.randrange(1, 20)
            legs.append((caller, callee, "from-internal", f'"Agent {caller}" <{caller}>', f"PJSIP/{caller}-{call:08x}",
                         f"PJSIP/{callee}-{call:08x}", "Dial", f"PJSIP/{callee},25", start,
                         start + timedelta(seconds=ring) if answered else None, start + timedelta(seconds=ring + talk),
                         ring + talk, talk, "ANSWERED" if answered else rng.choice(("NO ANSWER", "NO ANSWER", "BUSY"))))
        else:  # outbound
            number = f"0{rng.randrange(10**9):09d}"
            answered = rng.random() < 0.7
            talk = rng.randrange(10, 900) if answered else 0
            ring = rng.randrange(3, 30)
            legs.append((caller, "0" + number, "from-internal", f'"Agent {caller}" <{caller}>', f"PJSIP/{caller}-{call:08x}",
                         f"PJSIP/provider-{call:08x}", "Dial", f"PJSIP/{number}@provider,60", start,
                         start + timedelta(seconds=ring) if answered else None, start + timedelta(seconds=ring + talk),
                         ring + talk, talk, "ANSWERED" if answered else rng.choice(("NO ANSWER", "BUSY", "FAILED", "CONGESTION"))))
        if call % 500 == 0:  # an agent takes a break: a PAUSE per queue and a PAUSEALL, then the same to resume
            agent = f"{caller} Agent {caller}"
            for offset, kind_of in ((0, "PAUSE"), (rng.randrange(300, 1800), "UNPAUSE")):
                at = start + timedelta(seconds=offset)
                log += [(at, "NONE", f"extgroup_{g}", agent, kind_of, "break", "", "") for g in (1, 2)]
                log.append((at, "NONE", "NONE", agent, kind_of + "ALL", "break", "", ""))
        rows = []
        for values in legs:
            sequence += 1
            rows.append((*values, "DOCUMENTATION", linkedid, linkedid, sequence))
            written += 1
        yield rows, log
        call += 1


def generate(records: int, now: datetime, days: int = DAYS):
    """The call records (tuples in COLUMNS order), oldest first."""
    for legs, _ in calls(records, now, days):
        yield from legs


def generate_queue_log(records: int, now: datetime, days: int = DAYS):
    """The queue log rows of the same calls (tuples in QUEUE_LOG_COLUMNS order)."""
    for _, log in calls(records, now, days):
        yield from log


def csv_chunks(rows, size: int = 2000):
    """The rows as CSV text, a chunk at a time (None is an unquoted empty field: NULL to COPY)."""
    out = io.StringIO()
    writer = csv.writer(out)
    for index, row in enumerate(rows, start=1):
        writer.writerow(row)
        if index % size == 0:
            yield out.getvalue()
            out.seek(0)
            out.truncate()
    yield out.getvalue()


class Lines(io.RawIOBase):
    """A generator of text chunks as a file COPY can read."""

    def __init__(self, lines):
        self.lines, self.buffer = lines, b""

    def readable(self):
        return True

    def readinto(self, target):
        while len(self.buffer) < len(target):
            try:
                self.buffer += next(self.lines).encode()
            except StopIteration:
                break
        size = min(len(target), len(self.buffer))
        target[:size], self.buffer = self.buffer[:size], self.buffer[size:]
        return size


def copy_rows(parts) -> None:
    """Each (table, columns, rows) loaded with COPY in one transaction, then the tables analysed."""
    raw = db.engine.raw_connection()
    try:
        cursor = raw.cursor()
        for table, columns, rows in parts:
            names = ", ".join(f'"{c}"' for c in columns)
            cursor.copy_expert(f"COPY {table} ({names}) FROM STDIN WITH (FORMAT csv)",
                               io.BufferedReader(Lines(csv_chunks(rows)), 1 << 20))
        raw.commit()
        for table, _, _ in parts:
            cursor.execute(f"ANALYZE {table}")
        raw.commit()
    finally:
        raw.close()


def load(records: int, days: int = DAYS) -> float:
    start = time.perf_counter()
    now = datetime.utcnow().replace(microsecond=0)
    copy_rows((("cdr", COLUMNS, generate(records, now, days)),
               ("queue_log", QUEUE_LOG_COLUMNS, generate_queue_log(records, now, days))))
    return time.perf_counter() - start


def timed_pages(args: dict, requests: int, deep: int) -> tuple[list[float], list[float], str | None]:
    filters = service.parse_filters(args, None)
    first, deeper = [], []
    cursor = None
    for _ in range(deep):  # walk down to a deep page once
        page = service.calls_page(filters, 50, cursor)
        cursor = page.next_cursor
        if cursor is None:
            break
    for _ in range(requests):
        started = time.perf_counter()
        service.calls_page(filters, 50)
        first.append((time.perf_counter() - started) * 1000)
        if cursor:
            started = time.perf_counter()
            service.calls_page(filters, 50, cursor)
            deeper.append((time.perf_counter() - started) * 1000)
        db.session.remove()
    return sorted(first), sorted(deeper), cursor


def p95(values):
    return values[max(0, int(len(values) * 0.95) - 1)] if values else float("nan")


def time_group_report(requests: int) -> None:
    """The group report of the last 7 days (GET /api/calls/stats's work) against the baseline of counting the
    queue log rows it reads, in the same process."""
    filters = service.stats_filters({}, None)
    period = (queue_log_t.c.time >= filters.start, queue_log_t.c.time < filters.end)
    built, counted = [], []
    for _ in range(requests):
        started = time.perf_counter()
        body = report.to_dict(service.group_report(filters, None), service.group_names())
        built.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        rows = db.session.scalar(sa.select(sa.func.count()).select_from(queue_log_t).where(*period))
        counted.append((time.perf_counter() - started) * 1000)
        db.session.remove()
    built.sort(), counted.sort()
    print(f"group report, last 7 days ({rows:,} queue log rows; {len(body['groups'])} groups, {len(body['agents'])} agents): "
          f"p50 {statistics.median(built):6.1f} ms p95 {p95(built):6.1f} ms (target < 300 ms) | baseline count p50 "
          f"{statistics.median(counted):6.1f} ms p95 {p95(counted):6.1f} ms | p95 ratio {p95(built) / p95(counted):.1f}x")


EXPORT = r"""
import resource, sys, time
from pbxweb import create_app
from tests.conftest import app_config
app = create_app(app_config(sys.argv[1]))
with app.test_request_context():
    from pbxweb.cdr import service
    start = time.perf_counter()
    size = lines = 0
    for piece in service.export_lines(service.parse_filters({}, None)):
        size += len(piece); lines += piece.count("\n")
    print(f"{time.perf_counter() - start:.2f} {lines} {size} {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}")
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--days", type=int, default=DAYS,
                        help="the span of the records; 78,000 over 7 days is the last week of 1,000,000 over 90")
    args = parser.parse_args()
    with bench_app("pbx_bench_cdr") as (app, url), app.test_request_context():
        seconds = load(args.records, args.days)
        count = db.session.scalar(sa.select(sa.func.count()).select_from(cdr_t))
        logged = db.session.scalar(sa.select(sa.func.count()).select_from(queue_log_t))
        print(f"{count:,} records and {logged:,} queue log rows ({args.days} days) loaded with COPY in {seconds:.1f} s")
        cases = [
            ("every call", {}),
            ("today", {"range": "today"}),
            ("last 7 days, inbound", {"range": "7days", "direction": "inbound"}),
            ("number starts 0612", {"number": "0612"}),
            ("extension 1042", {"extension": "1042"}),
            ("group 3, abandoned", {"group": "3", "outcome": "abandoned"}),
        ]
        worst = (0.0, None)
        for label, filter_args in cases:
            first, deeper, cursor = timed_pages(filter_args, args.requests, deep=20)
            conditions = service.leg_conditions(service.parse_filters(filter_args, None))
            started = time.perf_counter()
            matching = db.session.scalar(sa.select(sa.func.count()).select_from(cdr_t).where(*conditions))
            baseline = (time.perf_counter() - started) * 1000
            print(f"{label:<26} first page p50 {statistics.median(first):6.1f} ms p95 {p95(first):6.1f} ms | "
                  f"page 21 p50 {statistics.median(deeper) if deeper else float('nan'):6.1f} ms p95 {p95(deeper):6.1f} ms | "
                  f"baseline count({matching:,} legs) {baseline:6.1f} ms")
            for value, which in ((p95(first), None), (p95(deeper), cursor)):
                if value == value and value > worst[0]:
                    worst = (value, (filter_args, which))
        print(f"worst page p95: {worst[0]:.1f} ms (target < 50 ms)")
        filter_args, cursor = worst[1]
        conditions = service.leg_conditions(service.parse_filters(filter_args, None))
        scan = sa.select(cdr_t.c.id, cdr_t.c.start, cdr_t.c.linkedid).where(*conditions, cdr_t.c.start.is_not(None))
        if cursor:
            at, leg_id = service.decode_cursor(cursor)
            scan = scan.where(sa.tuple_(cdr_t.c.start, cdr_t.c.id) < sa.tuple_(sa.literal(at), sa.literal(leg_id)))
        scan = scan.order_by(cdr_t.c.start.desc(), cdr_t.c.id.desc()).limit(service.SCAN_BATCH)
        compiled = scan.compile(db.engine, compile_kwargs={"literal_binds": True})
        plan = db.session.execute(sa.text(f"EXPLAIN (ANALYZE, BUFFERS) {compiled}")).scalars().all()
        print("EXPLAIN (ANALYZE) of the slowest page's leg scan:\n  " + "\n  ".join(plan))
        time_group_report(args.requests)
        out = subprocess.run([sys.executable, "-c", EXPORT, url], capture_output=True, text=True, check=True).stdout.split()
        wall, lines, size, rss = float(out[0]), int(out[1]), int(out[2]), int(out[3])
        print(f"export of every call: {lines - 1:,} calls ({size / 1e6:.0f} MB of CSV) in {wall:.1f} s, "
              f"peak RSS of the exporting process {rss} MB (targets < 10 s, < 150 MB)")


if __name__ == "__main__":
    main()
