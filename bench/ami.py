"""AMI throughput: the recorded event mix (every capture in tests/fixtures/asterisk/ami, repeated to >= 1,000,000
events) through our parser alone, through parser + reducer (in memory), and — the baseline, in the same
run on the same bytes — through panoramisk's parser. Then the full path on PostgreSQL: a TCP stream from
the test AMI server → the listener → state tables committed → visible to the read API.

    .venv/bin/python -m bench.ami [--events 1000000] [--full-path-events 200000]

panoramisk is installed for this script only (into a temp dir), never into the app's requirements.
Targets (issue 3): parse >= 2x panoramisk's; parse+apply >= 20,000 events/s; full path >= 5,000 events/s
with writes coalesced (not one transaction per event).
"""

import argparse
import logging
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque

import gevent

from pbxweb.ami.protocol import Parser
from pbxweb.live.state import LiveState, apply_event
from tests.ami_server import split_messages
from tests.conftest import ASTERISK_FACTS

AMI_DIR = ASTERISK_FACTS / "ami"
BANNER = b"Asterisk Call Manager/11.0.0\r\n"
CHUNK = 65536


def recorded_mix() -> list[bytes]:
    """Every message of every capture, in capture order (responses too: a real stream has them)."""
    messages = []
    for capture in sorted(AMI_DIR.glob("*.ami")):
        messages += split_messages(capture.read_bytes())[1]
    return messages


def stream_of(messages: list[bytes], count: int) -> tuple[bytes, int]:
    unit = b"".join(messages)
    repeats = -(-count // len(messages))
    return BANNER + unit * repeats, repeats * len(messages)


def chunks(data: bytes) -> list[bytes]:
    return [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)]


def parse_ours(pieces) -> int:
    parser = Parser()
    total = 0
    for piece in pieces:
        total += len(parser.feed(piece))
    return total


def parse_and_apply(pieces) -> int:
    parser = Parser()
    state = LiveState()
    total = 0
    for piece in pieces:
        for message in parser.feed(piece):
            apply_event(state, message)
            total += 1
    return total


def load_panoramisk():
    target = tempfile.mkdtemp(prefix="bench-panoramisk-")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", target, "panoramisk==1.4"],
                   check=True, capture_output=True)
    sys.path.insert(0, target)
    from panoramisk.ami_protocol import AMIProtocol

    return AMIProtocol


def panoramisk_protocol(AMIProtocol):
    counted = {"messages": 0}

    class Factory:
        # A replayed restart capture carries Shutdown events: panoramisk then closes its transport.
        def dispatch(self, message):
            counted["messages"] += 1

        def connection_lost(self, exc):
            pass

    class Transport:
        def close(self):
            pass

    protocol = AMIProtocol()
    protocol.transport = Transport()
    protocol.closed = False
    protocol.queue = deque()
    protocol.responses = {}
    protocol.factory = Factory()
    protocol.version = None
    protocol.log = logging.getLogger("panoramisk")
    protocol.encoding = "utf-8"
    return protocol, counted


def parse_panoramisk(AMIProtocol, pieces) -> int:
    protocol, counted = panoramisk_protocol(AMIProtocol)
    for piece in pieces:
        protocol.data_received(piece)
    return counted["messages"]


def timed(function, *args) -> tuple[float, int]:
    start = time.perf_counter()
    count = function(*args)
    return time.perf_counter() - start, count


def utf8_split_check(AMIProtocol) -> tuple[str, str]:
    data = BANNER + "Event: Newchannel\r\nCallerIDName: Zoë\r\n\r\n".encode()
    split = data.index("ë".encode()) + 1
    parser = Parser()
    ours = (parser.feed(data[:split]) + parser.feed(data[split:]))[0]["CallerIDName"]
    protocol, _ = panoramisk_protocol(AMIProtocol)
    seen = []
    protocol.factory.dispatch = seen.append
    protocol.data_received(data[:split])
    protocol.data_received(data[split:])
    return ours, seen[0]["CallerIDName"]


def full_path(event_count: int) -> None:
    from psycogreen.gevent import patch_psycopg

    from .setup import bench_app_with_ami

    patch_psycopg()
    with bench_app_with_ami("pbx_bench_ami") as (app, _, ami):
        replay_through(app, ami, event_count)


def replay_through(app, ami, event_count: int) -> None:
    """TCP → listener → PostgreSQL → read API, with the recorded events."""
    from pbxweb.ami.listener import Listener
    from tests.ami_server import capture_events
    from tests.conftest import token_for

    with app.app_context():
        headers = {"Authorization": f"Bearer {token_for('admin', 'bench')}"}
    listener = Listener(app, flush_interval=0.05)
    transactions = {"count": 0}
    flush = listener.flush

    def counted_flush():
        transactions["count"] += 1
        flush()

    listener.flush = counted_flush
    runner = gevent.spawn(listener.run)
    deadline = time.monotonic() + 20
    while not listener.connected and time.monotonic() < deadline:
        gevent.sleep(0.02)
    assert listener.connected, "the listener did not connect"

    events = [e for capture in sorted(AMI_DIR.glob("*.ami")) for e in capture_events(AMI_DIR, capture.name)]
    client = app.test_client()

    def sentinel(name: str) -> bytes:
        return (f"Event: QueueCallerJoin\r\nUniqueid: {name}\r\nChannel: PJSIP/1001-ffffffff\r\n"
                "Queue: extgroup_1\r\nPosition: 1\r\nCallerIDNum: 1001\r\n\r\n").encode()

    def visible(name: str) -> bool:
        with app.app_context():
            body = client.get("/api/waiting-calls", headers=headers).get_json()
        return any(c["uniqueid"] == name for c in body["waiting_calls"])

    def run(name: str, bursts: list[bytes], gap: float) -> tuple[int, float, float]:
        """Send the bursts `gap` seconds apart from a thread; returns (events, seconds until the last
        one is visible through the read API, lag after the last send)."""
        sent_at = {}

        def send():
            for burst in bursts:
                ami.push(burst)
                time.sleep(gap)
            ami.push(sentinel(name))
            sent_at["last"] = time.perf_counter()

        before = transactions["count"]
        start = time.perf_counter()
        pusher = threading.Thread(target=send)
        pusher.start()
        deadline = time.monotonic() + 300
        while not visible(name):
            assert time.monotonic() < deadline, "the events never became visible"
            gevent.sleep(0.01)
        done = time.perf_counter()
        pusher.join()
        count = sum(b.count(b"\r\n\r\n") for b in bursts) + 1
        return count, done - start, done - sent_at["last"], transactions["count"] - before

    repeats = -(-event_count // len(events))
    flood = [b"".join(events) * repeats]
    count, elapsed, lag, txns = run("bench.flood", flood, 0)
    print(f"full path, one flood (TCP → listener → PostgreSQL → read API): {count:,} events in {elapsed:.2f} s = "
          f"{count / elapsed:,.0f} events/s in {txns} transactions (target >= 5,000 events/s)")
    # Sustained: 20,000 events/s offered in bursts every 50 ms for 5 s; the writer must keep up.
    burst = b"".join((events * 3)[:1000])
    count, elapsed, lag, txns = run("bench.paced", [burst] * 100, 0.05)
    print(f"full path, sustained 20,000 events/s offered for 5 s: {count:,} events, {count / elapsed:,.0f} events/s, "
          f"in {txns} transactions ({count / max(1, txns):,.0f} events each), last event visible {lag * 1000:.0f} ms "
          f"after it was sent")
    listener.stop()
    runner.join(timeout=5)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--full-path-events", type=int, default=200_000)
    args = parser.parse_args()

    data, count = stream_of(recorded_mix(), args.events)
    pieces = chunks(data)
    print(f"recorded mix: {count:,} messages, {len(data) / 1e6:.1f} MB in {len(pieces):,} reads of {CHUNK} bytes")
    AMIProtocol = load_panoramisk()

    results = {}
    for name, function, extra in (("ours", parse_ours, ()), ("panoramisk", parse_panoramisk, (AMIProtocol,)),
                                  ("ours+apply", parse_and_apply, ())):
        best = None
        for _ in range(3):
            elapsed, parsed = timed(function, *extra, pieces)
            best = elapsed if best is None else min(best, elapsed)
        results[name] = (best, parsed)
    for name, (elapsed, parsed) in results.items():
        print(f"{name:<11} {parsed:,} messages in {elapsed:.2f} s = {parsed / elapsed:,.0f} messages/s (best of 3)")
    # On the very same bytes; panoramisk yields fewer messages (it drops blocks with neither Event nor
    # Response), so time is the fair measure.
    print(f"parse speed vs panoramisk, same bytes: {results['panoramisk'][0] / results['ours'][0]:.2f}x (target >= 2x)")
    print(f"parse + apply: {results['ours+apply'][1] / results['ours+apply'][0]:,.0f} events/s (target >= 20,000)")
    ours, theirs = utf8_split_check(AMIProtocol)
    print(f"a UTF-8 character split across two reads: ours {ours!r}, panoramisk {theirs!r}")

    full_path(args.full_path_events)


if __name__ == "__main__":
    main()
