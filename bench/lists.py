"""Keyset-paged lists at 10,000 extensions on PostgreSQL: p50/p95 of GET /api/extensions and
/api/extensions/status for the first page, a deep page and a search, against the baseline of the same
process reading and serialising every extension at once (what the list answered before it was paged).

    .venv/bin/python -m bench.lists [--extensions N] [--requests N]

Target (issue 7): p95 < 30 ms for a page at 10,000 extensions.
"""

import argparse
import statistics
import time

import sqlalchemy as sa

from pbxweb.ext import db
from pbxweb.extensions.service import to_dict
from pbxweb.models import Extension, ExtensionStatus, utcnow
from pbxweb.paging import encode_cursor
from tests.conftest import token_for

from .setup import bench_app
from .sync import seed_extensions


def seed_status(count: int) -> None:
    """Half of them registered, as the listener would have written."""
    with db.engine.begin() as conn:
        conn.execute(sa.insert(ExtensionStatus.__table__), [
            {"number": str(100000 + i), "registration": "registered", "device_state": "NOT_INUSE", "calls": 0,
             "contact_uri": f"sip:{100000 + i}@10.0.0.{i % 250}:5060", "user_agent": "Bench phone", "queues": {},
             "updated_at": utcnow()}
            for i in range(0, count, 2)
        ])


def timed(client, url: str, headers: dict, count: int) -> list[float]:
    latencies = []
    for _ in range(count):
        start = time.perf_counter()
        response = client.get(url, headers=headers)
        latencies.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, response.get_json()
    return sorted(latencies)


def p95(latencies: list[float]) -> float:
    return latencies[int(len(latencies) * 0.95) - 1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--extensions", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()

    with bench_app("pbx_bench_lists") as (app, _), app.app_context():
        seed_extensions(args.extensions)
        seed_status(args.extensions)
        with db.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
        headers = {"Authorization": f"Bearer {token_for('admin', 'bench')}"}
        client = app.test_client()

        def everything() -> None:
            with app.test_request_context():
                [to_dict(e) for e in db.session.scalars(sa.select(Extension).order_by(Extension.number))]
                db.session.remove()

        baseline = []
        for _ in range(20):
            start = time.perf_counter()
            everything()
            baseline.append((time.perf_counter() - start) * 1000)
        baseline_ms = statistics.median(baseline)
        print(f"extensions: {args.extensions}; baseline, every extension read and serialised at once: "
              f"p50 {baseline_ms:.1f} ms")

        deep = encode_cursor([str(100000 + args.extensions - 150)])
        cases = [
            ("/api/extensions?limit=100", "first page"),
            (f"/api/extensions?limit=100&cursor={deep}", "deep page"),
            ("/api/extensions?limit=100&q=User 99", "search"),
            ("/api/extensions?limit=500", "first page of 500"),
            ("/api/extensions/status?limit=100", "status, first page"),
            (f"/api/extensions/status?limit=100&cursor={deep}", "status, deep page"),
            ("/api/extensions/status?limit=100&q=User 99", "status, search"),
        ]
        worst = 0.0
        for url, label in cases:
            latencies = timed(client, url, headers, args.requests)
            worst = max(worst, p95(latencies))
            print(f"{label:<22} p50 {statistics.median(latencies):6.1f} ms  p95 {p95(latencies):6.1f} ms  "
                  f"({statistics.median(latencies) / baseline_ms:.2f}x the baseline)  {url}")
        print(f"worst p95: {worst:.1f} ms (target < 30 ms)")


if __name__ == "__main__":
    main()
