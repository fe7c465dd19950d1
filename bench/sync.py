"""`pbx sync` of 10,000 extensions from empty realtime tables on PostgreSQL, against a COPY of the very same
rows in the same run; the app's bulk writer alone against that COPY, on a plain and on a green connection
(psycogreen's, as in gunicorn's worker, where COPY is refused); then the p50 of POST /api/extensions with
10,000 existing.

    .venv/bin/python -m bench.sync [--extensions N]

Targets (issue 2): sync ≤ 1.5 s and ≥ 0.3× COPY's speed; POST p50 < 20 ms. Issue 7: a second sync with
nothing to do ≤ a third of the full one. Issue 13: the bulk writer (its value checks included; COPY checks
nothing) ≥ 0.3× COPY's speed, green or not.
"""

import argparse
import io
import csv
import statistics
import time

import sqlalchemy as sa
from psycogreen.gevent import patch_psycopg
from psycopg2.extensions import set_wait_callback

from pbxweb.cli import run_sync
from pbxweb.ext import db
from pbxweb.models import Extension
from pbxweb.realtime.diff import TableChanges
from pbxweb.realtime.schema import SYNCED_TABLES, TABLES
from pbxweb.realtime.store import write_changes

from .setup import bench_app


def seed_extensions(count: int) -> None:
    rows = [
        {"number": str(100000 + i), "name": f"User {i}", "sip_password": f"Pw{i:018d}xYz", "context": "from-internal",
         "codecs": "ulaw,alaw,g722,opus", "voicemail": i % 2 == 0, "max_contacts": 1, "is_active": True}
        for i in range(count)
    ]
    # Straight into the model table: the realtime tables stay empty for sync to fill.
    with db.engine.begin() as conn:
        conn.execute(sa.insert(Extension.__table__), rows)


def realtime_rows() -> dict[str, list[tuple]]:
    with db.engine.connect() as conn:
        return {t: conn.execute(sa.select(TABLES[t])).all() for t in SYNCED_TABLES}


def truncate_realtime() -> None:
    with db.engine.begin() as conn:
        conn.exec_driver_sql(f"TRUNCATE {', '.join(SYNCED_TABLES)}")


def copy_rows(rows: dict[str, list[tuple]]) -> float:
    """COPY the same rows into the same tables, in one transaction: the fastest way PostgreSQL loads them."""
    buffers = {}
    for table, table_rows in rows.items():
        if not table_rows:
            continue
        out = io.StringIO()
        writer = csv.writer(out)
        for row in table_rows:
            writer.writerow(["\\N" if v is None else v for v in row])
        buffers[table] = out.getvalue()
    raw = db.engine.raw_connection()
    try:
        cursor = raw.cursor()
        start = time.perf_counter()
        for table, data in buffers.items():
            columns = ", ".join(f'"{c.name}"' for c in TABLES[table].columns)
            cursor.copy_expert(f"COPY {table} ({columns}) FROM STDIN WITH (FORMAT csv, NULL '\\N')", io.StringIO(data))
        raw.commit()
        return time.perf_counter() - start
    finally:
        raw.close()


def write_rows(rows: dict[str, list[tuple]], green: bool) -> float:
    """The same rows through the app's own bulk writer, in one transaction: each row as the mapping makes
    it (the columns it sets; the others stay NULL). `green`: with psycogreen's wait callback, as in
    gunicorn's worker (taken off again at once: COPY, the baseline, refuses to run under it)."""
    changes = []
    for table, table_rows in rows.items():
        names = [c.name for c in TABLES[table].columns]
        inserts = [{n: v for n, v in zip(names, row, strict=True) if v is not None} for row in table_rows]
        changes.append(TableChanges(table, inserts=inserts))
    if green:
        patch_psycopg()
    try:
        start = time.perf_counter()
        with db.engine.begin() as conn:
            for table_changes in changes:
                write_changes(conn, table_changes, delete_extras=False)
        return time.perf_counter() - start
    finally:
        set_wait_callback(None)


def same_rows(a: dict[str, list[tuple]], b: dict[str, list[tuple]]) -> bool:
    return {t: sorted(rows, key=repr) for t, rows in a.items()} == {t: sorted(rows, key=repr) for t, rows in b.items()}


def compare_writer_with_copy(written: dict[str, list[tuple]], green: bool) -> None:
    writer_times, copy_times = [], []
    for _ in range(3):
        truncate_realtime()
        writer_times.append(write_rows(written, green))
        assert same_rows(realtime_rows(), written)
        truncate_realtime()
        copy_times.append(copy_rows(written))
    writer_s, copy_s = min(writer_times), min(copy_times)
    label = "green connection (psycogreen)" if green else "plain connection"
    print(f"bulk writer, {label}: {writer_s:.3f} s; COPY: {copy_s:.3f} s (best of 3); "
          f"writer speed / COPY speed: {copy_s / writer_s:.2f}x (target >= 0.3x)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--extensions", type=int, default=10_000)
    parser.add_argument("--posts", type=int, default=300)
    args = parser.parse_args()

    with bench_app("pbx_bench") as (app, _), app.app_context():
        seed_extensions(args.extensions)

        sync_times, copy_times = [], []
        for _ in range(3):
            truncate_realtime()
            start = time.perf_counter()
            with app.test_request_context():
                run_sync(SYNCED_TABLES, dry_run=False, prune=False)
            sync_times.append(time.perf_counter() - start)
            written = realtime_rows()
            truncate_realtime()
            copy_times.append(copy_rows(written))
            assert realtime_rows() == written
        total_rows = sum(len(r) for r in written.values())
        sync_s, copy_s = min(sync_times), min(copy_times)
        print(f"extensions: {args.extensions}, realtime rows: {total_rows}")
        print(f"pbx sync from empty tables: {sync_s:.3f} s (best of 3; target <= 1.5 s)")
        print(f"COPY of the same rows:      {copy_s:.3f} s (best of 3)")
        print(f"sync speed / COPY speed:    {copy_s / sync_s:.2f}x (target >= 0.3x)")

        compare_writer_with_copy(written, green=False)
        compare_writer_with_copy(written, green=True)

        noop_times = []
        for _ in range(3):
            start = time.perf_counter()
            with app.test_request_context():
                run_sync(SYNCED_TABLES, dry_run=False, prune=False)
            noop_times.append(time.perf_counter() - start)
        noop_s = min(noop_times)
        print(f"second sync (nothing to do): {noop_s:.3f} s (best of 3) = {noop_s / sync_s:.2f}x the full sync "
              "(target <= 0.33x)")
        with db.engine.begin() as conn:  # an admin's hand edit: the next sync must read everything again
            conn.exec_driver_sql("UPDATE ps_aors SET qualify_frequency = 30 WHERE id = '100000'")
        start = time.perf_counter()
        with app.test_request_context():
            repaired = run_sync(SYNCED_TABLES, dry_run=False, prune=False)
        assert sum(len(c.updates) for c in repaired) == 1
        print(f"sync after one hand edit (reads all, repairs 1 row): {time.perf_counter() - start:.3f} s")

        from tests.conftest import token_for

        headers = {"Authorization": f"Bearer {token_for('admin', 'bench')}"}
        client = app.test_client()
        latencies = []
        for i in range(args.posts):
            start = time.perf_counter()
            response = client.post("/api/extensions", json={"number": f"{200000 + i}", "name": f"Bench {i}"}, headers=headers)
            latencies.append(time.perf_counter() - start)
            assert response.status_code == 201, response.get_json()
        latencies.sort()
        print(f"POST /api/extensions with {args.extensions} existing: p50 {statistics.median(latencies) * 1000:.1f} ms, "
              f"p95 {latencies[int(len(latencies) * 0.95)] * 1000:.1f} ms over {args.posts} (target p50 < 20 ms)")


if __name__ == "__main__":
    main()
