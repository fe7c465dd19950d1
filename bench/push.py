"""Live pushes at scale: N browsers' websockets signed in to gunicorn (deploy/gunicorn.conf.py, one gevent
worker, the listener inside it), device-state and queue events replayed through the test AMI server. Prints,
per run, p50/p99 from the AMI event's send to the fragment received by every client, messages per second
delivered, and the worker's CPU seconds; the baseline is the same measure with a single client.

    .venv/bin/python -m bench.push [--clients 200 1000] [--events 100]

Target (issue 10): p99 < 50 ms at 200 clients.
"""

import argparse
import os
import re
import selectors
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

from wsproto import ConnectionType, WSConnection
from wsproto.extensions import PerMessageDeflate
from wsproto.events import AcceptConnection, Ping, Request, TextMessage

from pbxweb.auth.service import create_user
from tests.ami_server import AmiTestServer
from tests.pgcluster import free_port

from .setup import bench_app_with_ami

ROOT = Path(__file__).resolve().parents[1]
CARD = re.compile(rb'id="ext-card-(\d+)"')
EXTENSIONS = 40


def device_event(number: str, state: str) -> bytes:
    return f"Event: DeviceStateChange\r\nPrivilege: call,all\r\nDevice: PJSIP/{number}\r\nState: {state}\r\n\r\n".encode()


def sign_in(base: str) -> str:
    jar = urllib.request.HTTPCookieProcessor()
    opener = urllib.request.build_opener(jar)
    with opener.open(f"{base}/login") as page:
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.read().decode()).group(1)
    form = urllib.parse.urlencode({"username": "bench", "password": "correct horse battery", "csrf_token": token}).encode()
    opener.open(f"{base}/login", data=form)
    return "; ".join(f"{c.name}={c.value}" for c in jar.cookiejar)


class Browsers(threading.Thread):
    """N websocket clients on one selector loop (threads per client would measure this process, not the
    server): records when each extension card arrived at each client. Each offers permessage-deflate, as
    Chromium and Firefox do, so the server compresses every frame for every socket as it does for browsers."""

    def __init__(self, host: str, cookie: str, count: int, target: str = "/live/ws", paced: bool = True):
        super().__init__(daemon=True)
        self.selector = selectors.DefaultSelector()
        self.clients = []
        for index in range(count):
            if paced and index and index % 100 == 0:
                time.sleep(0.5)  # browsers arrive over seconds, not in one instant (a reconnect storm: paced=False)
            address, port = host.split(":")
            sock = socket.create_connection((address, int(port)))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            connection = WSConnection(ConnectionType.CLIENT)
            sock.sendall(connection.send(Request(host="127.0.0.1", target=target, extensions=[PerMessageDeflate()],
                                                 extra_headers=[("Origin", "http://127.0.0.1"), ("Cookie", cookie)])))
            client = {"sock": sock, "ws": connection, "cards": [], "messages": 0, "open": False, "text": [],
                      "asked_at": time.perf_counter(), "first_at": None}
            self.clients.append(client)
            sock.setblocking(False)
            self.selector.register(sock, selectors.EVENT_READ, client)
        self.running = True

    def run(self):
        while self.running:
            for key, _ in self.selector.select(timeout=0.2):
                self._read(key.data)

    def _read(self, client):
        try:
            data = client["sock"].recv(1 << 16)
        except BlockingIOError:
            return
        at = time.perf_counter()
        client["ws"].receive_data(data or None)
        for event in client["ws"].events():
            if isinstance(event, AcceptConnection):
                client["open"] = True
            elif isinstance(event, TextMessage):
                client["text"].append(event.data)
                if event.message_finished:
                    text = "".join(client["text"])
                    client["text"] = []
                    client["messages"] += 1
                    client["first_at"] = client["first_at"] or at
                    for number in CARD.findall(text.encode()):
                        client["cards"].append((at, number.decode()))
            elif isinstance(event, Ping):
                client["sock"].sendall(client["ws"].send(event.response()))

    def ready(self) -> bool:
        return all(c["open"] and c["messages"] >= 1 for c in self.clients)

    def close(self):
        self.running = False
        self.join(timeout=2)
        for client in self.clients:
            client["sock"].close()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def worker_pid(master: int) -> int:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return int(children[0])


def run(host: str, cookie: str, ami: AmiTestServer, clients: int, events: int, pid: int, gap: float = 0.02) -> dict:
    browsers = Browsers(host, cookie, clients)
    browsers.start()
    deadline = time.monotonic() + 120
    while not browsers.ready():  # every client has its first full panels
        assert time.monotonic() < deadline, ("the clients did not all connect", [(c["open"], c["messages"]) for c in browsers.clients])
        time.sleep(0.05)
    for client in browsers.clients:
        client["cards"].clear()
        client["messages"] = 0
    sent: dict[str, list[float]] = {}
    cpu_before, started = cpu_seconds(pid), time.perf_counter()
    for i in range(events):
        number = str(2000 + i % EXTENSIONS)
        state = "INUSE" if (i // EXTENSIONS) % 2 == 0 else "NOT_INUSE"
        sent.setdefault(number, []).append(time.perf_counter())
        ami.push(device_event(number, state))
        time.sleep(gap)
    time.sleep(2)
    elapsed = time.perf_counter() - started
    cpu = cpu_seconds(pid) - cpu_before
    browsers.close()
    latencies, missing = [], 0
    for client in browsers.clients:
        arrivals: dict[str, list[float]] = {}
        for at, number in client["cards"]:
            arrivals.setdefault(number, []).append(at)
        for number, times in sent.items():
            got = sorted(arrivals.get(number, []))
            for at_sent in times:
                later = [at for at in got if at >= at_sent]
                if later:
                    latencies.append((later[0] - at_sent) * 1000)
                    got.remove(later[0])
                else:
                    missing += 1
    latencies.sort()
    delivered = sum(c["messages"] for c in browsers.clients)
    return {"clients": clients, "events": events, "received": len(latencies), "missing": missing,
            "p50": statistics.median(latencies) if latencies else float("nan"),
            "p99": latencies[int(len(latencies) * 0.99) - 1] if latencies else float("nan"),
            "rate": delivered / elapsed, "cpu": cpu}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, nargs="+", default=[200, 1000])
    parser.add_argument("--events", type=int, default=100)
    parser.add_argument("--gap", type=float, default=0.02, help="seconds between two events")
    args = parser.parse_args()
    with bench_app_with_ami("pbx_bench_push") as (app, url, ami), app.test_request_context():
        from pbxweb.extensions import service as extensions

        for i in range(EXTENSIONS):
            extensions.create_extension({"number": str(2000 + i), "name": f"Agent {i}"})
        create_user("bench", "admin", "correct horse battery")
        port = free_port()
        env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": "bench-only-key", "AMI_HOST": "127.0.0.1",
               "AMI_PORT": str(ami.port), "AMI_USERNAME": ami.username, "AMI_SECRET": ami.secret,
               "PBX_SECURE_COOKIES": "off"}
        gunicorn = subprocess.Popen([str(Path(sys.executable).parent / "gunicorn"), "-c", "deploy/gunicorn.conf.py",
                                     "-b", f"127.0.0.1:{port}", "--access-logfile", "/dev/null", "wsgi:app"],
                                    cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            while True:
                try:
                    urllib.request.urlopen(f"{base}/login", timeout=2)
                    break
                except OSError:
                    assert time.monotonic() < deadline, "gunicorn did not start"
                    time.sleep(0.2)
            time.sleep(2)  # the listener connects and takes its snapshot
            cookie = sign_in(base)
            pid = worker_pid(gunicorn.pid)
            host = f"127.0.0.1:{port}"
            baseline = run(host, cookie, ami, 1, args.events, pid)
            print(f"baseline, 1 client: p50 {baseline['p50']:.1f} ms, p99 {baseline['p99']:.1f} ms")
            for clients in args.clients:
                result = run(host, cookie, ami, clients, args.events, pid, args.gap)
                print(f"{clients} clients, {args.events} device-state events {args.gap * 1000:.0f} ms apart: "
                      f"AMI send → fragment received p50 {result['p50']:.1f} ms, p99 {result['p99']:.1f} ms "
                      f"({result['p99'] / baseline['p99']:.1f}x the lone client's); {result['received']:,} fragments "
                      f"({result['missing']} missing), {result['rate']:,.0f} messages/s delivered; worker CPU "
                      f"{result['cpu']:.1f} s" + (" (target p99 < 50 ms)" if clients == 200 else ""))
        finally:
            gunicorn.terminate()
            gunicorn.wait(timeout=15)


if __name__ == "__main__":
    main()
