"""A busy office on a big site, end to end: gunicorn as deployed (deploy/gunicorn.conf.py) on a seeded
PostgreSQL — 20,000 extensions in 200 groups, 200,000 call records (30,000 of them today), users of every role
— and 50 signed-in clients mixing pages, searches, the call log, statistics, exports, writes and the API for
60 s, while 200 open dashboards receive 50 device events a second through the test AMI server. Then a
reconnect storm: 1,000 dashboards at once.

Run for one worker and for the configuration's default (as many as cores), in this one process. First the
baselines, each with nothing else running: the same clients asking the bare stack (bench/bare_wsgi.py: Flask on
the same gunicorn configuration, nothing behind it) and then the app's cheapest request; the pushes with no
request at all; the admin's dashboard and statistics (today, 7 days) asked one at a time. Then per route
p50/p95/p99 and errors, requests/s (and as a ratio of the cheapest request's), the workers' CPU (in all and per
request), the push latency (AMI event sent → card received; and as a ratio of the one with no requests), the
storm's first frames — and the default's figures as a ratio of the one worker's. The load average is printed
beside them: on a shared machine it says what else was running.

    .venv/bin/python -m bench.load [--extensions 20000] [--groups 200] [--records 200000] [--today 30000]
        [--clients 50] [--seconds 60] [--dashboards 200] [--rate 50] [--storm 1000] [--workers 1 0]
        [--baseline 15] [--profile DIR] [--statements]

`--workers 0` is the configuration's default. `--profile DIR` samples every worker with py-spy during the load
(py-spy on the PATH or `--py-spy`) and prints the functions with the most samples of their own; `--statements`
prints the statements PostgreSQL spent the most time on (pg_stat_statements).

Targets (issue 15), on a two-core machine: 0 errors; p95 < 250 ms for every page and fragment except exports;
>= 200 requests/s; push p99 < 100 ms while loaded; /calls/stats (today, 7 days) p95 < 200 ms; a storm of 1,000
dashboards: every first frame within 5 s.
"""

import argparse
import http.client
import json
import math
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path

import sqlalchemy as sa

from pbxweb.auth.service import create_token, create_user
from pbxweb.cli import run_sync
from pbxweb.ext import db
from pbxweb.models import Extension, ExtensionGroup, GroupMember
from pbxweb.realtime.schema import SYNCED_TABLES
from pbxweb.site_time import site_zone
from tests.pgcluster import free_port

from .cdr import COLUMNS, DAYS, QUEUE_LOG_COLUMNS, calls, copy_rows
from .push import Browsers, cpu_seconds, device_event
from .setup import bench_app_with_ami

ROOT = Path(__file__).resolve().parents[1]
FIRST_NUMBER = 1000
PASSWORD = "correct horse battery"
CARD = re.compile(r'id="ext-card-(\d+)"')
PAGE_TARGET_MS = 250
STATS_TARGET_MS = 200
PUSH_TARGET_MS = 100
RATE_TARGET = 200
STORM_TARGET_S = 5.0


# --- the site ------------------------------------------------------------------------------------------------


def seed_site(extensions: int, groups: int) -> None:
    """Extensions FIRST_NUMBER… in `groups` groups of equal size (group 1: the first ones), realtime rows synced."""
    numbers = [str(FIRST_NUMBER + i) for i in range(extensions)]
    per_group = math.ceil(extensions / groups)
    with db.engine.begin() as conn:
        conn.execute(sa.insert(Extension.__table__), [
            {"number": n, "name": f"User {n} <&\"'>" if i % 97 == 0 else f"User {n}", "sip_password": f"Pw{i:018d}xYz",
             "context": "from-internal", "codecs": "ulaw,alaw,g722,opus", "voicemail": i % 2 == 0, "max_contacts": 1,
             "is_active": True}
            for i, n in enumerate(numbers)])
        conn.execute(sa.insert(ExtensionGroup.__table__), [
            {"id": g, "name": f"Group {g:03d}", "ring_strategy": "ringall", "ring_timeout": 20, "musicclass": "default",
             "max_wait": 300, "is_active": True} for g in range(1, groups + 1)])
        conn.exec_driver_sql("SELECT setval(pg_get_serial_sequence('pbx_groups', 'id'), (SELECT max(id) FROM pbx_groups))")
        ids = dict(conn.execute(sa.select(Extension.number, Extension.id)).all())
        conn.execute(sa.insert(GroupMember.__table__), [
            {"group_id": i // per_group + 1, "extension_id": ids[n], "penalty": 0, "paused": i % 50 == 7,
             "position": i % per_group} for i, n in enumerate(numbers)])
    run_sync(SYNCED_TABLES, dry_run=False, prune=False)


def seed_calls(records: int, today: int) -> None:
    """`records` call records with their queue log, loaded with COPY: `today` of them since the site's midnight,
    the others over the DAYS before it (two spans that do not overlap, so no call id is made twice)."""
    now = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)
    local_midnight = datetime.now(site_zone()).replace(hour=0, minute=0, second=0, microsecond=0)
    midnight = local_midnight.astimezone(timezone.utc).replace(tzinfo=None)
    spans = ((records - today, midnight, DAYS, 7), (today, now, max((now - midnight).total_seconds(), 60) / 86400, 11))

    def rows(part: int):
        for count, end, days, seed in spans:
            for call in calls(count, end, days, seed):
                yield from call[part]

    copy_rows((("cdr", COLUMNS, rows(0)), ("queue_log", QUEUE_LOG_COLUMNS, rows(1))))


def seed_people() -> dict:
    """A user of every role; agents with an extension in group 1. Returns their names and an admin API token."""
    people = {"admin": "load-admin", "manager": "load-manager", "qa": "load-qa", "agent": "load-agent"}
    for role, name in people.items():
        create_user(name, role, PASSWORD, str(FIRST_NUMBER + 3) if role in ("agent", "admin") else None)
    return {"people": people, "token": create_token("load-admin")}


# --- the server ----------------------------------------------------------------------------------------------


class Server:
    """gunicorn with deploy/gunicorn.conf.py (and `--workers N` unless N is 0: the configuration's default)."""

    def __init__(self, url: str, ami, workers: int, application: str = "wsgi:app"):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": "bench-only-key", "AMI_HOST": "127.0.0.1",
               "AMI_PORT": str(ami.port), "AMI_USERNAME": ami.username, "AMI_SECRET": ami.secret, "PBX_SECURE_COOKIES": "off"}
        command = [str(Path(sys.executable).parent / "gunicorn"), "-c", "deploy/gunicorn.conf.py", "-b",
                   f"127.0.0.1:{self.port}", "--access-logfile", "/dev/null"]
        if workers:
            command += ["--workers", str(workers)]
        self.process = subprocess.Popen([*command, application], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{self.base}/login", timeout=2)
                break
            except urllib.error.HTTPError:
                break  # an answer: the bare stack has no sign-in page
            except OSError:
                assert time.monotonic() < deadline and self.process.poll() is None, "gunicorn did not start"
                time.sleep(0.2)

    def workers(self) -> list[int]:
        return [int(p) for p in Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()]

    def cpu(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.workers())

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=20)


def database_cpu() -> float:
    """CPU seconds of the PostgreSQL cluster: its postmaster, the backends it waited for, those alive now."""
    with db.engine.connect() as conn:
        backend = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar()
    postmaster = int(Path(f"/proc/{backend}/stat").read_text().rsplit(")", 1)[1].split()[1])
    fields = Path(f"/proc/{postmaster}/stat").read_text().rsplit(")", 1)[1].split()
    total = sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    for child in Path(f"/proc/{postmaster}/task/{postmaster}/children").read_text().split():
        try:
            total += cpu_seconds(int(child))
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def own_cpu() -> float:
    times = os.times()
    return times.user + times.system


def listener_connected(server: "Server", deadline: float = 30) -> None:
    """Until one of this server's workers runs the listener, connected (it names itself host:pid)."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        with db.engine.connect() as conn:
            row = conn.execute(sa.text("SELECT connected, listener FROM pbx_ami_status")).first()
        if row and row.connected and row.listener and int(row.listener.rsplit(":", 1)[1]) in server.workers():
            return
        time.sleep(0.2)
    raise AssertionError("the listener did not connect")


def contact_event(number: str) -> bytes:
    return (f"Event: ContactStatus\r\nPrivilege: system,all\r\nURI: sip:{number}@10.1.{int(number) % 250}.{int(number) % 199}:5060\r\n"
            f"ContactStatus: Reachable\r\nAOR: {number}\r\nEndpointName: {number}\r\nRoundtripUsec: 1200\r\n\r\n").encode()


def register_phones(ami, extensions: int) -> None:
    """Two phones in three registered, as a working day starts; waits until the listener wrote them."""
    numbers = [str(FIRST_NUMBER + i) for i in range(extensions) if i % 3]
    for start in range(0, len(numbers), 200):
        ami.push(b"".join(contact_event(n) for n in numbers[start:start + 200]))
        time.sleep(0.03)
    end = time.monotonic() + 60
    while time.monotonic() < end:
        with db.engine.connect() as conn:
            written = conn.execute(sa.text("SELECT count(*) FROM pbx_extension_status WHERE registration = 'registered'")).scalar()
        if written >= len(numbers):
            return
        time.sleep(0.3)
    raise AssertionError(f"only {written} of {len(numbers)} registrations were written")


def sign_in(base: str, username: str) -> str:
    jar = urllib.request.HTTPCookieProcessor()
    opener = urllib.request.build_opener(jar)
    with opener.open(f"{base}/login") as page:
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.read().decode()).group(1)
    form = urllib.parse.urlencode({"username": username, "password": PASSWORD, "csrf_token": token}).encode()
    opener.open(f"{base}/login", data=form)
    return "; ".join(f"{c.name}={c.value}" for c in jar.cookiejar)


# --- the clients ---------------------------------------------------------------------------------------------


class Mix:
    """What a client asks next, by the issue's shares: (route label, method, path, headers, body)."""

    def __init__(self, cookies: dict, token: str, extensions: int, groups: int, calls_cursor: str | None):
        self.cookies, self.extensions, self.groups = cookies, extensions, groups
        self.api = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.calls_cursor = calls_cursor
        self.shares = [(15, self.dashboard), (20, self.extension_list), (25, self.call_log), (5, self.stats),
                       (5, self.export), (10, self.group_page), (10, self.write), (10, self.read_api)]
        self.total = sum(share for share, _ in self.shares)

    def next(self, rng: random.Random):
        pick = rng.uniform(0, self.total)
        for share, make in self.shares:
            pick -= share
            if pick <= 0:
                return make(rng)
        return self.shares[-1][1](rng)

    def page(self, role: str, extra: dict | None = None) -> dict:
        return {"Cookie": self.cookies[role], **(extra or {})}

    def number(self, rng) -> str:
        return str(FIRST_NUMBER + rng.randrange(self.extensions))

    def dashboard(self, rng):
        role = rng.choice(("admin", "admin", "manager", "qa", "agent"))
        path = rng.choice(("/", "/", f"/?group={rng.randrange(1, self.groups + 1)}", f"/?q={rng.randrange(10, 99)}"))
        return f"GET / ({role})", "GET", path, self.page(role), None

    def extension_list(self, rng):
        role = rng.choice(("admin", "manager"))
        if rng.random() < 0.5:
            return "GET /extensions", "GET", "/extensions", self.page(role), None
        return "GET /extensions?q= (htmx)", "GET", f"/extensions?q={rng.randrange(100, 999)}", self.page(role, {"HX-Request": "true"}), None

    def call_log(self, rng):
        role = rng.choice(("admin", "manager", "qa", "agent"))
        choices = [("GET /calls", "/calls"), ("GET /calls?range=today&direction=inbound", "/calls?range=today&direction=inbound"),
                   ("GET /calls?extension=", f"/calls?extension={rng.randrange(1000, 1100)}")]
        if self.calls_cursor:
            choices.append(("GET /calls?cursor= (older)", f"/calls?cursor={self.calls_cursor}"))
        label, path = rng.choice(choices)
        return label, "GET", path, self.page(role), None

    def stats(self, rng):
        which = rng.choice(("today", "7days"))
        return f"GET /calls/stats?range={which}", "GET", f"/calls/stats?range={which}", self.page(rng.choice(("admin", "manager", "qa"))), None

    def export(self, rng):
        if rng.random() < 0.5:
            return "GET /calls/export.csv?range=today", "GET", "/calls/export.csv?range=today", self.page("admin"), None
        return "GET /extensions/export.csv", "GET", "/extensions/export.csv", self.page("admin"), None

    def group_page(self, rng):
        role = rng.choice(("admin", "manager", "qa"))
        if rng.random() < 0.4:
            return "GET /groups", "GET", "/groups", self.page(role), None
        return "GET /groups/<id>", "GET", f"/groups/{rng.randrange(1, self.groups + 1)}", self.page(role), None

    def write(self, rng):
        if rng.random() < 0.7:
            number = self.number(rng)
            body = json.dumps({"name": f"User {number} {rng.randrange(1000)}"})
            return "PATCH /api/extensions/<n>", "PATCH", f"/api/extensions/{number}", self.api, body
        body = json.dumps({"ring_timeout": rng.randrange(15, 40)})
        return "PATCH /api/groups/<id>", "PATCH", f"/api/groups/{rng.randrange(1, self.groups + 1)}", self.api, body

    def read_api(self, rng):
        label, path = rng.choice([
            ("GET /api/extensions/status", "/api/extensions/status?limit=100"),
            ("GET /api/extensions?q=", f"/api/extensions?limit=50&q={rng.randrange(100, 999)}"),
            ("GET /api/waiting-calls", "/api/waiting-calls"),
            ("GET /api/cdr?range=today", "/api/cdr?range=today&limit=50"),
        ])
        return label, "GET", path, self.api, None


class Cheapest:
    """The least a request can cost: the API's waiting callers with nobody waiting (0.2 KB, one small read)
    behind the same token check and admission as every other request."""

    def __init__(self, token: str):
        self.api = {"Authorization": f"Bearer {token}"}

    def next(self, rng: random.Random):
        return "GET /api/waiting-calls", "GET", "/api/waiting-calls", self.api, None


def drive(port: int, mix, clients: int, seconds: float) -> tuple[dict, float]:
    """`clients` threads, each one keep-alive connection asking the mix's next request as soon as the last is
    answered, for `seconds`. Returns {route: [(ms, status)]} and the elapsed time."""
    results: dict[str, list] = defaultdict(list)
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def client(index: int) -> None:
        rng = random.Random(index)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine = []
        while time.monotonic() < stop_at:
            label, method, path, headers, body = mix.next(rng)
            started = time.perf_counter()
            try:
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                status = 0
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            mine.append((label, (time.perf_counter() - started) * 1000, status))
        conn.close()
        with lock:
            for label, ms, status in mine:
                results[label].append((ms, status))

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 120)
    return results, time.perf_counter() - started


def quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


# --- the dashboards and the events ---------------------------------------------------------------------------


def send_events(ami, rate: float, seconds: float, extensions: int, watched: list[str], busy: set[str]) -> dict[str, list[float]]:
    """`rate` device events a second for `seconds`: every other one to an extension the dashboards watch
    (alternating in call / idle), the rest anywhere; `busy`, the extensions in a call, is kept up to date
    across calls. Returns when each watched one was sent."""
    rng = random.Random(3)
    sent: dict[str, list[float]] = defaultdict(list)
    gap = 1.0 / rate
    next_at = time.perf_counter()
    end = next_at + seconds
    index = 0
    while next_at < end:
        if index % 2 == 0:
            number = watched[(index // 2) % len(watched)]
        else:
            number = str(FIRST_NUMBER + rng.randrange(extensions))
        state = "NOT_INUSE" if number in busy else "INUSE"
        busy.symmetric_difference_update({number})
        if index % 2 == 0:
            sent[number].append(time.perf_counter())
        ami.push(device_event(number, state))
        index += 1
        next_at += gap
        time.sleep(max(0.0, next_at - time.perf_counter()))
    return sent


def forget_cards(browsers: list[Browsers]) -> None:
    for group in browsers:
        for client in group.clients:
            client["cards"].clear()


def push_latencies(browsers: list[Browsers], sent: dict[str, list[float]]) -> tuple[list[float], int]:
    """For every dashboard and every watched event: from the send to the first card of that extension after it."""
    latencies, missing = [], 0
    for group in browsers:
        for client in group.clients:
            arrivals: dict[str, list[float]] = defaultdict(list)
            for at, number in client["cards"]:
                arrivals[number].append(at)
            for number, times in sent.items():
                got = sorted(arrivals.get(number, []))
                position = 0
                for at_sent in times:
                    while position < len(got) and got[position] < at_sent:
                        position += 1
                    if position < len(got):
                        latencies.append((got[position] - at_sent) * 1000)
                        position += 1
                    else:
                        missing += 1
    return latencies, missing


def open_dashboards(host: str, cookies: dict, count: int, target: str, paced: bool = True) -> list[Browsers]:
    """Three in four as the admin, the rest as the agent, all on `target` (the socket of one dashboard view)."""
    admins = count - count // 4
    groups = [Browsers(host, cookies["admin"], admins, target, paced)]
    if count - admins:
        groups.append(Browsers(host, cookies["agent"], count - admins, target, paced))
    for group in groups:
        group.start()
    return groups


def wait_first_frames(groups: list[Browsers], timeout: float) -> None:
    end = time.monotonic() + timeout
    while not all(group.ready() for group in groups) and time.monotonic() < end:
        time.sleep(0.05)


# --- profiling -----------------------------------------------------------------------------------------------


def start_profiles(py_spy: str, pids: list[int], seconds: float, folder: Path, label: str) -> list:
    folder.mkdir(parents=True, exist_ok=True)
    return [subprocess.Popen([py_spy, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "50",
                              "--format", "raw", "--nonblocking", "--output", str(folder / f"{label}-{pid}.txt")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for pid in pids]


def profile_top(files: list[Path], lines: int = 15) -> list[str]:
    """The functions with the most samples of their own (the innermost frame), and with the most in all."""
    own, inclusive, total = Counter(), Counter(), 0
    for file in files:
        if not file.exists():
            continue
        for line in file.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not count.isdigit():
                continue
            frames = stack.split(";")
            total += int(count)
            own[frames[-1]] += int(count)
            for frame in set(frames):
                inclusive[frame] += int(count)
    if not total:
        return ["(no samples)"]
    out = [f"{total} samples; own time:"]
    out += [f"  {n / total:6.1%}  {frame}" for frame, n in own.most_common(lines)]
    out.append("in all (the frame or what it called):")
    plumbing = ("gevent/", "gunicorn/", "flask/app.py", "werkzeug/", "threading.py", "<module>", "flask_sock/",
                "simple_websocket/")
    out += [f"  {n / total:6.1%}  {frame}" for frame, n in inclusive.most_common()
            if not any(p in frame for p in plumbing)][:lines]
    return out


# --- one configuration ---------------------------------------------------------------------------------------


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


# Pages measured one at a time with nothing else running (their own targets in the issue): path → target ms.
ALONE = {"/": 100, "/calls/stats?range=today": STATS_TARGET_MS, "/calls/stats?range=7days": STATS_TARGET_MS}


def alone(port: int, cookie: str, path: str, times: int = 40) -> tuple[int, list[float]]:
    """A page asked one at a time, nothing else running: its size and its times (the server's own)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    sizes, latencies = [], []
    for _ in range(times):
        started = time.perf_counter()
        conn.request("GET", path, headers={"Cookie": cookie})
        sizes.append(len(conn.getresponse().read()))
        latencies.append((time.perf_counter() - started) * 1000)
    conn.close()
    return max(sizes), latencies


def run_config(url: str, ami, args, site: dict, workers: int) -> dict:
    name = f"{workers} worker{'s' if workers != 1 else ''}" if workers else "the default workers"
    # The baselines, measured in this process on this machine now, each with nothing else running: the same
    # clients asking the bare stack, then the app's cheapest request; the pushes with no request at all. The
    # figures under load are printed as ratios of them, which noise on a shared machine moves much less.
    bare = Server(url, ami, workers, application="bench.bare_wsgi:app")
    try:
        bare_results, bare_elapsed = drive(bare.port, Cheapest(""), args.clients, args.baseline)
    finally:
        bare.stop()
    server = Server(url, ami, workers)
    try:
        listener_connected(server)
        register_phones(ami, args.extensions)
        pids = server.workers()
        name += f" ({len(pids)})" if not workers else ""
        cookies = {role: sign_in(server.base, username) for role, username in site["people"].items()}
        with urllib.request.urlopen(urllib.request.Request(f"{server.base}/calls", headers={"Cookie": cookies["admin"]})) as page:
            found = re.search(r'[?&]cursor=([A-Za-z0-9_-]+)', page.read().decode())
        mix = Mix(cookies, site["token"], args.extensions, args.groups, found.group(1) if found else None)
        by_itself = {path: alone(server.port, cookies["admin"], path) for path in ALONE}
        cheapest_results, cheapest_elapsed = drive(server.port, Cheapest(site["token"]), args.clients, args.baseline)
        host = f"127.0.0.1:{server.port}"
        watched = [str(FIRST_NUMBER + i) for i in range(min(40, math.ceil(args.extensions / args.groups)))]

        dashboards = open_dashboards(host, cookies, args.dashboards, "/live/ws?group=1")
        wait_first_frames(dashboards, 120)
        forget_cards(dashboards)
        busy: set[str] = set()
        quiet_events = send_events(ami, args.rate, args.baseline, args.extensions, watched, busy)
        time.sleep(1)
        quiet_latencies, quiet_missing = push_latencies(dashboards, quiet_events)
        forget_cards(dashboards)
        print(f"\n== {name}: load average {load_average()} at the start", flush=True)
        profiles = start_profiles(args.py_spy, pids, args.seconds, args.profile, f"w{workers}") if args.profile else []
        if args.statements:
            with db.engine.begin() as conn:
                conn.exec_driver_sql("SELECT pg_stat_statements_reset()")
        cpu_before, database_before, own_before = server.cpu(), database_cpu(), own_cpu()
        events: dict = {}
        sender = threading.Thread(target=lambda: events.update(send_events(ami, args.rate, args.seconds, args.extensions, watched, busy)))
        sender.start()
        results, elapsed = drive(server.port, mix, args.clients, args.seconds)
        sender.join()
        time.sleep(1)
        cpu, database, own = server.cpu() - cpu_before, database_cpu() - database_before, own_cpu() - own_before
        load_after = load_average()
        for process in profiles:
            process.wait(timeout=60)
        for group in dashboards:
            group.close()
        latencies, missing = push_latencies(dashboards, events)

        storm = open_dashboards(host, cookies, args.storm, "/live/ws", paced=False) if args.storm else []
        wait_first_frames(storm, 30)
        firsts = [(c["first_at"] - c["asked_at"]) for g in storm for c in g.clients if c["first_at"]]
        storm_missing = sum(1 for g in storm for c in g.clients if not c["first_at"])
        for group in storm:
            group.close()
    finally:
        server.stop()

    requests = sum(len(v) for v in results.values())
    print(f"baselines, each with nothing else running, the same {args.clients} clients:")
    for what, measured, took in (("the bare stack (Flask on this gunicorn configuration: no session, database or template)", bare_results, bare_elapsed),
                                 ("the app's cheapest request (GET /api/waiting-calls, a token, nobody waiting)", cheapest_results, cheapest_elapsed)):
        times = [ms for v in measured.values() for ms, _ in v]
        failed = sum(1 for v in measured.values() for _, status in v if status >= 400 or status == 0)
        print(f"  {what}: {len(times) / took:.1f} requests/s, p50 {quantile(times, 0.5):.1f} ms, p95 {quantile(times, 0.95):.1f} ms"
              f"{f', {failed} errors' if failed else ''}")
    cheapest_rate = sum(len(v) for v in cheapest_results.values()) / cheapest_elapsed
    print(f"  pushes, {args.dashboards} dashboards, {args.rate:g} device events/s, no requests: AMI send → card received "
          f"p50 {quantile(quiet_latencies, 0.5):.1f} ms, p99 {quantile(quiet_latencies, 0.99):.1f} ms; {quiet_missing} missing")
    errors = sum(1 for v in results.values() for _, status in v if status >= 400 or status == 0)
    for path, (size, times) in by_itself.items():
        print(f"the admin's GET {path} alone: {size / 1000:.0f} KB{' (target < 300)' if path == '/' else ''}, "
              f"p50 {quantile(times, 0.5):.1f} ms, p95 {quantile(times, 0.95):.1f} ms (target < {ALONE[path]})")
    print(f"{'route':<44} {'n':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'errors':>7}")
    worst_page = (0.0, "")
    for label in sorted(results):
        values = [ms for ms, _ in results[label]]
        failed = Counter(status for _, status in results[label] if status >= 400 or status == 0)
        p95 = quantile(values, 0.95)
        if "export" not in label and p95 > worst_page[0]:
            worst_page = (p95, label)
        print(f"{label:<44} {len(values):>6} {statistics.median(values):>8.1f} {p95:>8.1f} {quantile(values, 0.99):>8.1f} "
              f"{sum(failed.values()):>7}{'  ' + str(dict(failed)) if failed else ''}")
    stats_p95 = max((quantile([ms for ms, _ in results[l]], 0.95) for l in results if l.startswith("GET /calls/stats")), default=float("nan"))
    rate = requests / elapsed
    print(f"{requests:,} requests in {elapsed:.1f} s: {rate:.1f} requests/s (target >= {RATE_TARGET}; {rate / cheapest_rate:.2f}x the cheapest request's); errors {errors} "
          f"(target 0); worst p95 of a page or fragment {worst_page[0]:.0f} ms, {worst_page[1]} (target < {PAGE_TARGET_MS}); "
          f"/calls/stats p95 {stats_p95:.0f} ms (target < {STATS_TARGET_MS})")
    print(f"CPU in {elapsed:.0f} s: workers {cpu:.1f} s ({cpu / elapsed:.0%} of one core), PostgreSQL {database:.1f} s, "
          f"this bench's clients and AMI server {own:.1f} s; load average {load_after} at the end")
    # Per request (the live pushes' share included): steadier than requests/s on a shared machine.
    print(f"CPU per request: workers {1000 * cpu / max(requests, 1):.1f} ms, PostgreSQL {1000 * database / max(requests, 1):.1f} ms")
    print(f"push while loaded, {args.dashboards} dashboards, {args.rate:g} device events/s: AMI send → card received "
          f"p50 {quantile(latencies, 0.5):.1f} ms, p99 {quantile(latencies, 0.99):.1f} ms (target < {PUSH_TARGET_MS}; "
          f"{quantile(latencies, 0.99) / quantile(quiet_latencies, 0.99):.1f}x the p99 with no requests); "
          f"{len(latencies):,} cards, {missing} missing")
    if args.storm:
        print(f"reconnect storm, {args.storm} dashboards at once: first frame p50 {quantile(firsts, 0.5):.2f} s, "
              f"p99 {quantile(firsts, 0.99):.2f} s, slowest {max(firsts, default=float('nan')):.2f} s, {storm_missing} without one "
              f"(target: all within {STORM_TARGET_S:g} s)")
    if profiles:
        for line in profile_top(sorted(args.profile.glob(f"w{workers}-*.txt"))):
            print(f"  profile {line}")
    if args.statements:
        print_statements()
    return {"name": name, "rate": rate, "errors": errors, "worst": worst_page[0], "push_p99": quantile(latencies, 0.99),
            "cpu": cpu, "stats_p95": stats_p95}


def print_statements(top: int = 12) -> None:
    """The statements PostgreSQL spent the most time on during the load (pg_stat_statements)."""
    with db.engine.connect() as conn:
        total = conn.exec_driver_sql("SELECT sum(total_exec_time) FROM pg_stat_statements").scalar() or 1
        rows = conn.exec_driver_sql(
            "SELECT total_exec_time, calls, rows, query FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT %s",
            (top,)).all()
    print(f"  PostgreSQL: {total / 1000:.1f} s in statements; the {top} with the most:")
    for spent, calls, rows, query in rows:
        text = " ".join(query.split())
        print(f"  sql {spent / total:6.1%} {spent / 1000:6.1f} s {calls:>7} calls {spent / max(calls, 1):7.2f} ms  {text[:150]}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--extensions", type=int, default=20_000)
    parser.add_argument("--groups", type=int, default=200)
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--today", type=int, default=30_000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--baseline", type=float, default=15,
                        help="seconds of each baseline: the bare stack, the cheapest request, the pushes alone")
    parser.add_argument("--dashboards", type=int, default=200)
    parser.add_argument("--rate", type=float, default=50, help="device events a second")
    parser.add_argument("--storm", type=int, default=1000, help="dashboards opened at once after the load (0: none)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 0], help="0: deploy/gunicorn.conf.py's default")
    parser.add_argument("--profile", type=Path, help="folder for py-spy's samples of the workers")
    parser.add_argument("--py-spy", default=shutil.which("py-spy") or "py-spy")
    parser.add_argument("--statements", action="store_true",
                        help="PostgreSQL's pg_stat_statements: the statements with the most time, for each run")
    args = parser.parse_args()

    options = "-c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all" if args.statements else ""
    with bench_app_with_ami("pbx_bench_load", options) as (app, url, ami), app.test_request_context():
        if args.statements:
            with db.engine.begin() as conn:
                conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        started = time.perf_counter()
        seed_site(args.extensions, args.groups)
        seed_calls(args.records, args.today)
        site = seed_people()
        # A site that has been running for a while has been vacuumed: its indexes' pending entries merged (the
        # trigram indexes of a search), the planner's figures read.
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
        db.session.remove()
        print(f"seeded {args.extensions:,} extensions in {args.groups} groups, {args.records:,} call records "
              f"({args.today:,} today), a user of every role in {time.perf_counter() - started:.0f} s; "
              f"{os.cpu_count()} cores; load average {load_average()}", flush=True)
        figures = [run_config(url, ami, args, site, workers) for workers in args.workers]
        if len(figures) > 1:
            base = figures[0]
            print(f"\nagainst {base['name']}:")
            for other in figures[1:]:
                print(f"  {other['name']}: {other['rate'] / base['rate']:.2f}x the requests/s, worst page p95 "
                      f"{other['worst'] / base['worst']:.2f}x, push p99 {other['push_p99'] / base['push_p99']:.2f}x, "
                      f"/calls/stats p95 {other['stats_p95'] / base['stats_p95']:.2f}x")


if __name__ == "__main__":
    main()
