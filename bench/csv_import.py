"""CSV import of 5,000 extensions on PostgreSQL: the file checked row by row with the API's rules, then every
extension created in one transaction with its ps_endpoints/ps_auths/ps_aors rows. Baseline in the same
process: the same 5,000 extensions created one by one through the service (one transaction each).

    .venv/bin/python -m bench.csv_import [--rows N]

Target (issue 8): 5,000 rows imported (rows in ps_*) in < 5 s.
"""

import argparse
import time

import sqlalchemy as sa

from pbxweb.ext import db
from pbxweb.extensions import csv_io, service
from pbxweb.realtime.schema import TABLES

from .setup import bench_app


def csv_file(count: int, first: int) -> bytes:
    lines = ["number,name,email,voicemail,codecs,max_contacts"]
    for i in range(count):
        lines.append(f'{first + i},Person {i} Example,person{i}@example.com,{"yes" if i % 2 else "no"},"ulaw,alaw",1')
    return ("\n".join(lines) + "\n").encode()


def realtime_count(first: int, count: int) -> int:
    with db.engine.connect() as conn:
        t = TABLES["ps_endpoints"]
        return conn.execute(sa.select(sa.func.count()).select_from(t).where(
            t.c.id.between(str(first), str(first + count - 1)))).scalar_one()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=5000)
    args = parser.parse_args()
    with bench_app("pbx_bench_csv") as (app, _), app.test_request_context():
        raw = csv_file(args.rows, 100000)
        start = time.perf_counter()
        checked = csv_io.import_extensions(raw, dry_run=True)
        dry = time.perf_counter() - start
        assert not checked.errors, checked.errors[:3]
        start = time.perf_counter()
        result = csv_io.import_extensions(raw, dry_run=False)
        imported = time.perf_counter() - start
        assert result.created == args.rows and realtime_count(100000, args.rows) == args.rows

        baseline_rows = min(args.rows, 500)
        start = time.perf_counter()
        for i in range(baseline_rows):
            service.create_extension({"number": str(300000 + i), "name": f"One {i}", "email": f"one{i}@example.com"})
        one_by_one = (time.perf_counter() - start) / baseline_rows * args.rows

        print(f"{args.rows} rows, {len(raw) / 1e6:.2f} MB")
        print(f"preview (every row checked, nothing written): {dry:.2f} s")
        print(f"import (checked, created with their realtime rows, one transaction): {imported:.2f} s (target < 5 s)")
        print(f"baseline, created one by one through the service: {one_by_one:.2f} s for {args.rows} "
              f"(measured on {baseline_rows}) = import is {one_by_one / imported:.1f}x faster")


if __name__ == "__main__":
    main()
