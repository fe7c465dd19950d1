"""The missed callers to call back (GET /api/missed-calls's work, and the dashboard panel's every 20 s) over a
week as dense as the last week of 1,000,000 records over 90 days (bench/cdr.py's calls: 20 % of inbound
callers hang up or time out, a fresh number each), as an admin who sees every group. Prints p50/p95 and how many
rows, calls and queries one read takes.

    .venv/bin/python -m bench.missed [--records 78000] [--days 7] [--requests 20]
"""

import argparse
import statistics
import time

import sqlalchemy as sa

from pbxweb.auth.service import create_user
from pbxweb.ext import db
from pbxweb.missed import service
from pbxweb.models import ExtensionGroup

from .cdr import load, p95
from .setup import bench_app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=78_000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args()
    with bench_app("pbx_bench_missed") as (app, _), app.test_request_context():
        seconds = load(args.records, args.days)
        for number in range(1, 6):  # the groups bench/cdr.py's queues are
            db.session.add(ExtensionGroup(id=number, name=f"Group {number}"))
        db.session.commit()
        admin, _ = create_user("bench-admin", "admin")
        print(f"{args.records:,} records over {args.days} days loaded in {seconds:.1f} s")
        queries = []
        sa.event.listen(db.engine, "before_cursor_execute", lambda *a: queries.append(1))
        times = []
        for _ in range(args.requests):
            queries.clear()
            started = time.perf_counter()
            rows = service.for_user(admin)
            times.append((time.perf_counter() - started) * 1000)
            db.session.remove()
        times.sort()
        print(f"missed callers of every group: {len(rows):,} rows ({sum(r.tries for r in rows):,} tries) in "
              f"{len(queries)} queries: p50 {statistics.median(times):6.1f} ms p95 {p95(times):6.1f} ms")


if __name__ == "__main__":
    main()
