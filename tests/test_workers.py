"""Every core: gunicorn as deployed, with two gevent workers. Each worker serves its own sockets and LISTENs
for the live changes, one of them runs the AMI listener; what is done through one worker is on the pages of
the other, and the limits kept in the database hold whichever worker a request lands on."""

import http.client
import json
import os
import re
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from pbxweb.auth.service import create_token, create_user

from .conftest import stored_waiting_caller
from .pgcluster import free_port
from .test_dashboard_browser import DEVICE_RINGING
from .test_deploy import BIN, ROOT, connected, die_with_us, stop, wait

PASSWORD = "correct horse battery"


def gunicorn(app, ami_server, *arguments: str, **popen) -> tuple[subprocess.Popen, int]:
    """gunicorn with deploy/gunicorn.conf.py on 127.0.0.1 and a free port, its listener pointed at the test AMI
    server; `arguments` go on its command line."""
    port = free_port()
    environment = {**os.environ, "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"], "SECRET_KEY": "test-only-key",
                   "AMI_HOST": "127.0.0.1", "AMI_PORT": str(ami_server.port), "AMI_USERNAME": ami_server.username,
                   "AMI_SECRET": ami_server.secret, "PBX_SECURE_COOKIES": os.environ.get("PBX_SECURE_COOKIES", "off")}
    process = subprocess.Popen(
        [str(BIN / "gunicorn"), "-c", "deploy/gunicorn.conf.py", "-b", f"127.0.0.1:{port}", *arguments, "wsgi:app"],
        cwd=ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, preexec_fn=die_with_us, **popen,
    )
    return process, port


def workers_of(master: int) -> list[int]:
    return [int(pid) for pid in Path(f"/proc/{master}/task/{master}/children").read_text().split()]


def answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture
def two_workers(app, site, ami_server, db):
    """(port, worker pids) of gunicorn as deployed with `--workers 2`, its listener connected."""
    process, port = gunicorn(app, ami_server, "--workers", "2")
    try:
        assert wait(lambda: answers(port), process), "gunicorn did not answer"
        assert wait(lambda: len(workers_of(process.pid)) == 2, process), "two workers did not boot"
        assert wait(lambda: connected(db), process), "the listener did not connect"
        yield port, workers_of(process.pid)
    finally:
        stop(process)


def serving_worker(sock, workers: list[int]) -> int | None:
    """The worker holding the server's end of this client's TCP connection (Linux: /proc/net/tcp, /proc/<pid>/fd)."""
    client_port, server_port = sock.getsockname()[1], sock.getpeername()[1]
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == server_port and int(fields[2].split(":")[1], 16) == client_port:
            inode = fields[9]
    for pid in workers:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                if os.readlink(fd) == f"socket:[{inode}]":
                    return pid
            except OSError:
                continue
    return None


def on_every_worker(connect, workers: list[int], attempts: int = 300) -> dict:
    """Connections opened by `connect()` (each returns (connection, its socket)) until every worker serves one:
    the kernel hands each to whichever worker accepts first — on a loaded machine the same one many times in a
    row, hence the pause between tries. Returns {worker pid: connection}."""
    found, spare = {}, []
    for _ in range(attempts):
        connection, sock = connect()
        worker = serving_worker(sock, workers)
        if worker is not None and worker not in found:
            found[worker] = connection
        else:
            spare.append(connection)
            time.sleep(0.02)
        if len(found) == len(workers):
            break
    for connection in spare:
        connection.close()
    assert len(found) == len(workers), f"connections reached only workers {sorted(found)} of {workers}"
    return found


def signed_in_cookie(port: int, username: str) -> str:
    jar = urllib.request.HTTPCookieProcessor()
    opener = urllib.request.build_opener(jar)
    with opener.open(f"http://127.0.0.1:{port}/login") as page:
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.read().decode()).group(1)
    opener.open(f"http://127.0.0.1:{port}/login",
                data=urllib.parse.urlencode({"username": username, "password": PASSWORD, "csrf_token": token}).encode())
    return "; ".join(f"{c.name}={c.value}" for c in jar.cookiejar)


def http_on_every_worker(port: int, workers: list[int]) -> dict:
    def connect():
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", "/login")
        connection.getresponse().read()  # kept alive: later requests on it reach the same worker
        return connection, connection.sock

    return on_every_worker(connect, workers)


def ask(connection, method: str, path: str, headers: dict, body: dict | None = None) -> tuple[int, str]:
    connection.request(method, path, body=None if body is None else json.dumps(body),
                       headers={**headers, **({"Content-Type": "application/json"} if body is not None else {})})
    response = connection.getresponse()
    return response.status, response.read().decode()


def receive_until(client, text: str, timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        frame = client.receive(timeout=max(0.01, deadline - time.monotonic()))
        if frame and text in frame:
            return frame
    raise AssertionError(f"no frame with {text!r} within {timeout} s")


def test_an_ami_event_reaches_the_dashboards_on_every_worker(two_workers, ami_server):
    import simple_websocket

    port, workers = two_workers
    cookie = signed_in_cookie(port, "alice")

    def connect():
        client = simple_websocket.Client(f"ws://127.0.0.1:{port}/live/ws", headers={"Origin": "http://127.0.0.1", "Cookie": cookie})
        return client, client.sock

    dashboards = on_every_worker(connect, workers)
    try:
        for client in dashboards.values():
            assert 'id="presence-grid"' in receive_until(client, 'id="presence-grid"')
        ami_server.push(DEVICE_RINGING)
        for client in dashboards.values():
            assert "Ringing" in receive_until(client, 'id="ext-card-1002"')
    finally:
        for client in dashboards.values():
            client.close()


def test_a_change_made_through_one_worker_is_on_the_pages_of_the_other(two_workers, app):
    port, workers = two_workers
    first, second = http_on_every_worker(port, workers).values()
    api = {"Authorization": f"Bearer {create_token('alice')}"}
    page = {"Cookie": signed_in_cookie(port, "alice")}

    status, _ = ask(first, "POST", "/api/extensions", api, {"number": "1077", "name": "Zoë O'Brien & Co"})
    assert status == 201
    status, listing = ask(second, "GET", "/extensions?q=1077", page)
    assert status == 200 and "Zoë O&#39;Brien &amp; Co" in listing
    status, dashboard = ask(second, "GET", "/?q=1077", page)
    assert status == 200 and 'id="ext-card-1077"' in dashboard and "O&#39;Brien &amp; Co" in dashboard

    status, _ = ask(second, "PATCH", "/api/extensions/1077", api, {"name": "Zoë Renamed"})
    assert status == 200
    status, dashboard = ask(first, "GET", "/?q=1077", page)
    assert status == 200 and "Zoë Renamed" in dashboard


def all_at_once(connections: list, method: str, path: str, headers: dict, bodies: list) -> list[int]:
    """The same moment, each request on its own connection (and so on whichever worker holds it)."""
    start = threading.Barrier(len(connections))
    statuses = [None] * len(connections)

    def send(index):
        start.wait(timeout=10)
        statuses[index] = ask(connections[index], method, path, headers[index], bodies[index])[0]

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(connections))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return statuses


def test_click_to_call_allows_six_a_minute_whichever_worker_answers(two_workers, ami_server):
    port, workers = two_workers
    ami_server.answer_from("queue-pickup-bridge.ami", "originate-1")
    connections = [c for _ in range(6) for c in http_on_every_worker(port, workers).values()]  # six on each
    token = {"Authorization": f"Bearer {create_token('alice')}"}
    statuses = all_at_once(connections, "POST", "/api/calls", [token] * 12, [{"number": "1001"}] * 12)
    assert sorted(statuses) == [202] * 6 + [429] * 6
    assert len(ami_server.actions("Originate")) == 6


def test_two_people_picking_up_one_caller_on_two_workers_send_one_originate(two_workers, ami_server, db):
    port, workers = two_workers
    create_user("dora", "manager", PASSWORD, "1001")
    ami_server.answer_from("queue-pickup-bridge.ami", "originate-1")
    ami_server.push_capture("queue-pickup-bridge.ami", until="QueueCallerJoin")
    uniqueid = stored_waiting_caller(db, 5.0)
    tokens = [{"Authorization": f"Bearer {create_token(name)}"} for name in ("alice", "dora")]
    statuses = all_at_once(list(http_on_every_worker(port, workers).values()), "POST",
                           f"/api/waiting-calls/{uniqueid}/pickup", tokens, [{"extension": "1002"}, {"extension": "1001"}])
    assert sorted(statuses) == [202, 409]
    assert len(ami_server.actions("Originate")) == 1
