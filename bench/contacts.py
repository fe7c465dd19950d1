"""Registrations shown as fast as Asterisk writes them: 1,000 phones register within one second (1,000
ps_contacts INSERTs from another process, one transaction each, as Asterisk makes them) while the AMI
listener runs against the test AMI server, which sends no ContactStatus at all (as behind a sorcery cache).
Prints how many were shown registered, and the lag from each row's commit to the listener's write of its
extension's status (p50/p99/max), against the baseline of the same process: the lag of a single row.

    .venv/bin/python -m bench.contacts [--phones N] [--seconds S]

Target (issue 7): all visible, within 1 s of the last row.
"""

import argparse
import json
import statistics
import subprocess
import sys
import time

import gevent
import sqlalchemy as sa

from pbxweb.ami.listener import Listener
from pbxweb.ext import db
from .setup import bench_app_with_ami

# Run by a child process: Asterisk writing contacts, one INSERT and commit each, paced over `seconds`.
REGISTER = r"""
import json, sys, time
import psycopg2
url, first, count, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
conn = psycopg2.connect(url)
cur = conn.cursor()
committed = {}
start = time.time()
for i in range(count):
    number = str(first + i)
    cur.execute(
        "INSERT INTO ps_contacts (id, uri, expiration_time, qualify_frequency, outbound_proxy, path, user_agent,"
        " qualify_timeout, reg_server, authenticate_qualify, via_addr, via_port, call_id, endpoint, prune_on_boot)"
        " VALUES (%s, %s, %s, 60, '', '', 'bench phone', 3.0, '', 'no', '127.0.0.1', %s, %s, %s, 'yes')",
        (f"{number}^3B@{i:032x}", f"sip:{number}@127.0.0.1:{20000 + i}^3Btransport=UDP", int(time.time()) + 3600,
         20000 + i, f"{i}@bench", number))
    conn.commit()
    committed[number] = time.time()
    pause = start + seconds * (i + 1) / count - time.time()
    if pause > 0:
        time.sleep(pause)
print(json.dumps(committed))
"""


def register(url: str, first: int, count: int, seconds: float) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", REGISTER, url, str(first), str(count), str(seconds)],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def shown(first: int, count: int) -> dict[str, float]:
    """Extensions shown registered, and when the listener wrote that."""
    with db.engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT number, extract(epoch from updated_at) AS at FROM pbx_extension_status "
            "WHERE registration = 'registered' AND number::int BETWEEN :a AND :b"), {"a": first, "b": first + count - 1})
        return {r.number: float(r.at) for r in rows}


def lags_ms(committed: dict[str, float], seen: dict[str, float]) -> list[float]:
    return sorted((seen[n] - t) * 1000 for n, t in committed.items() if n in seen)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--phones", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=1.0)
    args = parser.parse_args()

    with bench_app_with_ami("pbx_bench_contacts") as (app, url, _):
        measure(app, url, args)


def measure(app, url: str, args) -> None:
    listener = Listener(app, flush_interval=0.02)
    running = gevent.spawn(listener.run)
    with app.app_context():
        deadline = time.time() + 10
        while not listener.connected and time.time() < deadline:
            gevent.sleep(0.05)
        assert listener.connected, "the listener did not connect"

        def run(first: int, count: int, seconds: float) -> tuple[list[float], float]:
            worker = gevent.get_hub().threadpool.spawn(register, url, first, count, seconds)
            committed = worker.get()
            last = max(committed.values())
            while len(shown(first, count)) < count and time.time() < last + 10:
                gevent.sleep(0.02)
            seen = shown(first, count)
            return lags_ms(committed, seen), max(seen.values(), default=last) - last

        single, _ = run(50000, 1, 0.0)
        lags, after_last = run(30000, args.phones, args.seconds)
        p99 = lags[int(len(lags) * 0.99) - 1] if lags else float("nan")
        print(f"baseline, one phone registering alone: lag {single[0]:.1f} ms")
        print(f"{args.phones} phones registering over {args.seconds:g} s, no ContactStatus from AMI: "
              f"{len(lags)} shown registered; last shown {after_last * 1000:.0f} ms after the last row")
        print(f"lag row commit -> status written: p50 {statistics.median(lags):.1f} ms, p99 {p99:.1f} ms, "
              f"max {lags[-1]:.1f} ms (p99 {p99 / single[0]:.1f}x the lone phone's)")
    listener.stop()
    running.join(timeout=5)


if __name__ == "__main__":
    main()
