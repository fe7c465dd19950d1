"""The real-Asterisk layer: the lab Asterisk 22.10.1 of ../shared/lab (installed in /opt/asterisk-lab), driven
the way production runs it, with real SIP calls from sipp.

One session builds it all, on the test run's PostgreSQL:
  a database owned by a role with a password (Asterisk's ODBC logs in with it), migrated as the app does;
  the app's own Asterisk config (`pbx asterisk-config`) installed with `asterisk-lab install-config`, Asterisk
  restarted on it; the app as deployed (gunicorn with deploy/gunicorn.conf.py, the AMI listener inside);
  extensions, groups, DIDs and a trunk created through the app's API (and 2005, a mailbox with no phone, whose
  voicemail e-mails a script in the workdir catches: the rendered mailcmd); phones that register and then answer
  or only ring (sipp, each on its own port of 127.0.0.1), a fake provider answering on 127.0.0.3.
Every call of a test runs inside `lab.call(name)`, which records what Asterisk wrote meanwhile (cdr rows,
queue_log rows, the raw AMI stream, `queue show`) and, with PBX_CAPTURE=1, writes it into
tests/fixtures/asterisk/calls/<name>/ for the fast tests to replay.

Skipped, with the reason, when the lab is not installed, sipp is missing or we are not root (Asterisk runs as
root). Only one lab Asterisk runs per machine: this layer stops it at the end.
"""

import csv
import fcntl
import html
import http.cookiejar
import io
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa

from ..conftest import app_config
from ..test_deploy import die_with_us

LAB = Path("/opt/asterisk-lab")
LAB_CTL = LAB / "bin" / "asterisk-lab"
LAB_LOG = LAB / "var" / "log" / "asterisk" / "messages"
LAB_PID = LAB / "var" / "run" / "asterisk" / "asterisk.pid"
# The lab's voicemail spool: Asterisk writes messages there, the app (PBX_VOICEMAIL_SPOOL) lists, plays and
# deletes them, as on a site where both run on one host.
LAB_SPOOL = LAB / "var" / "spool" / "asterisk" / "voicemail"
# Held for the whole session: another run of this layer waits for it instead of restarting the one lab
# Asterisk under our calls. (A harness that does not take it can still stop our Asterisk: each call checks.)
LAB_LOCK = LAB / "var" / "run" / "mini-pbx-lab.lock"
ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SCENARIOS = Path(__file__).resolve().parent / "scenarios"
CAPTURES = ROOT / "tests" / "fixtures" / "asterisk" / "calls"
# PBX_CAPTURE=1: the calls of this run are written into tests/fixtures/asterisk/calls/ (commit them).
CAPTURE = os.environ.get("PBX_CAPTURE") == "1"

# Who is who on the lab: phones on 127.0.0.1, outside callers on 127.0.0.2 (not a phone, not a trunk: the
# `anonymous` endpoint, context from-external), the fake provider on 127.0.0.3 (the trunk identifies by it).
PHONE_IP, OUTSIDE_IP, PROVIDER_IP = "127.0.0.1", "127.0.0.2", "127.0.0.3"
SIPP_SECONDS = 900  # every sipp quits by itself after this, whatever happens to the test run
ASTERISK_TZ = "Europe/Amsterdam"
ANSI = re.compile(r"\x1b\[[0-9;]*m")  # the CLI colours `queue show`


def why_no_lab() -> str | None:
    if not (LAB / "sbin" / "asterisk").exists() or not LAB_CTL.exists():
        return f"the lab Asterisk is not installed in {LAB} (bash ../shared/lab/setup.sh, or ./manage.sh test-asterisk)"
    if shutil.which("sipp") is None:
        return "sipp is not installed (Debian package sip-tester; ../shared/lab/setup.sh installs it)"
    if os.geteuid() != 0:
        return "the lab Asterisk runs as root: run this layer as root"
    return None


def lab_pid() -> int | None:
    """The pid of the lab Asterisk when it runs."""
    try:
        pid = int(LAB_PID.read_text().strip())
        return pid if os.readlink(f"/proc/{pid}/exe") == str(LAB / "sbin" / "asterisk") else None
    except (OSError, ValueError):
        return None


def take_lab(timeout: float = 600):
    """The session's hold on the lab: our lock, then an Asterisk nobody else runs (waited for, then refused)."""
    LAB_LOCK.parent.mkdir(parents=True, exist_ok=True)
    lock = open(LAB_LOCK, "w")
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() > deadline:
                pytest.fail(f"another run of the Asterisk layer holds {LAB_LOCK} for more than {timeout} s")
            time.sleep(1)
    deadline = time.monotonic() + 300
    while lab_pid() is not None:
        if time.monotonic() > deadline:
            lock.close()
            pytest.fail(f"the lab Asterisk (pid {lab_pid()}) is running for someone else's test: not restarting it "
                        f"under them (if nobody uses it: {LAB_CTL} stop)")
        time.sleep(1)
    return lock


def free_port(kind=socket.SOCK_STREAM, host=PHONE_IP) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def free_sip_port() -> int:
    """A port free for both UDP and TCP (Asterisk's two transports bind the same one)."""
    while True:
        port = free_port(socket.SOCK_DGRAM)
        with socket.socket() as s:
            try:
                s.bind((PHONE_IP, port))
                return port
            except OSError:
                continue


def strong_password() -> str:
    """A generated SIP password that the app's rule accepts (three character classes, 16-80 long)."""
    return "Lab-" + secrets.token_hex(12) + "x"


def wait_for(predicate, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


# --- AMI: a raw capturing client -------------------------------------------------------------------------


class AmiTap:
    """Logged in beside the app's listener with the same user; keeps every byte Asterisk sends, so that a
    scenario's slice is the raw stream as the listener saw it."""

    def __init__(self, port: int, username: str, secret: str):
        self.sock = socket.create_connection((PHONE_IP, port), timeout=10)
        self.buffer = bytearray()
        self.lock = threading.RLock()
        self.sock.sendall(f"Action: Login\r\nUsername: {username}\r\nSecret: {secret}\r\nEvents: on\r\n\r\n".encode())
        self.sock.settimeout(None)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        wait_for(lambda: b"Authentication accepted" in self.buffer, 10, "the AMI login")

    def _read(self):
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            with self.lock:
                self.buffer += data

    def mark(self) -> int:
        """The end of the last complete message."""
        with self.lock:
            end = self.buffer.rfind(b"\r\n\r\n")
            return end + 4 if end >= 0 else 0

    def since(self, mark: int) -> bytes:
        with self.lock:
            return bytes(self.buffer[mark:self.mark()])

    def send(self, action: str, **fields) -> None:
        lines = [f"Action: {action}"] + [f"{k}: {v}" for k, v in fields.items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())

    def close(self):
        try:
            self.sock.sendall(b"Action: Logoff\r\n\r\n")
        except OSError:
            pass
        self.sock.close()


class AmiRecorder:
    """One AMI session recorded the way tests/fixtures/asterisk/ami/ holds them: every byte Asterisk sent, from
    the banner (<name>.ami), and what we sent with relative times (<name>.sent.txt, the secret masked)."""

    def __init__(self, port: int, username: str, secret: str):
        self.started = time.monotonic()
        self.secret = secret.encode()
        self.data = bytearray()
        self.sent: list[str] = []
        self.count = 0
        self.note(f"connect 127.0.0.1:{port}")
        self.sock = socket.create_connection((PHONE_IP, port), timeout=10)
        self.action("Login", ActionID="login-1", Username=username, Secret=secret, Events="on")
        self.read_until(lambda data: b"FullyBooted" in data)

    def note(self, text: str) -> None:
        self.sent.append(f"[{time.monotonic() - self.started:8.3f}] # {text}")

    def action(self, name: str, ActionID: str | None = None, **fields) -> str:
        self.count += 1
        action_id = ActionID or f"{name.lower()}-{self.count}"
        raw = f"Action: {name}\r\nActionID: {action_id}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields.items())
        raw = (raw + "\r\n").encode()
        self.sock.sendall(raw)
        self.sent.append(f"[{time.monotonic() - self.started:8.3f}] >>> {raw.replace(self.secret, b'********')!r}")
        return action_id

    def read_until(self, done, timeout: float = 10) -> None:
        """Reads until done(everything received so far) — whole messages only."""
        deadline = time.monotonic() + timeout
        while not (self.data.endswith(b"\r\n\r\n") and done(bytes(self.data))):
            self.sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                chunk = None
            if time.monotonic() > deadline:
                raise AssertionError(f"AMI: not seen in {timeout} s; received:\n{self.data.decode(errors='replace')}")
            if chunk == b"":
                raise AssertionError("AMI: the connection closed")
            if chunk:
                self.data += chunk

    def messages(self) -> list[dict]:
        return ami_messages(bytes(self.data).partition(b"\r\n")[2])

    def close(self, name: str) -> None:
        """Logs off and, with PBX_CAPTURE=1, writes tests/fixtures/asterisk/ami/<name>.ami and .sent.txt."""
        self.action("Logoff", ActionID="logoff-1")
        try:
            self.read_until(lambda data: b"Response: Goodbye" in data, timeout=5)
            self.sock.settimeout(2)
            while chunk := self.sock.recv(65536):
                self.data += chunk
            self.note("connection closed by peer (recv() returned EOF)")
        except (OSError, AssertionError):
            pass
        self.sock.close()
        self.note("capture closed by client")
        if CAPTURE:
            folder = ROOT / "tests" / "fixtures" / "asterisk" / "ami"
            (folder / f"{name}.ami").write_bytes(bytes(self.data).replace(self.secret, b"********"))
            (folder / f"{name}.sent.txt").write_text("\n".join(self.sent) + "\n")


def ami_messages(raw: bytes) -> list[dict]:
    """The messages of a raw AMI stream as dicts (the last of a repeated header wins)."""
    messages = []
    for block in raw.decode(errors="replace").split("\r\n\r\n"):
        fields = {}
        for line in block.split("\r\n"):
            if ": " in line:
                key, value = line.split(": ", 1)
                fields[key] = value
        if fields:
            messages.append(fields)
    return messages


# --- one call's record ------------------------------------------------------------------------------------


@dataclass
class Record:
    """What Asterisk wrote while a scenario ran."""

    name: str
    cdr: list[dict] = field(default_factory=list)
    queue_log: list[dict] = field(default_factory=list)
    ami: bytes = b""
    queue_show: dict[str, str] = field(default_factory=dict)
    notes: dict = field(default_factory=dict)

    def events(self, *names) -> list[dict]:
        return [m for m in ami_messages(self.ami) if "Event" in m and (not names or m["Event"] in names)]

    def queue_events(self) -> list[tuple[str, str, str]]:
        """(queuename, agent, event) in the order written."""
        return [(r["queuename"], r["agent"], r["event"]) for r in self.queue_log]

    def caller_leg(self) -> dict:
        """The outside caller's first leg (its channel is the anonymous endpoint's)."""
        return next(r for r in self.cdr if r["channel"].startswith("PJSIP/anonymous-"))

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for name, rows in (("cdr.csv", self.cdr), ("queue_log.csv", self.queue_log)):
            (folder / name).write_text(as_csv(rows), encoding="utf-8")
        (folder / "ami.txt").write_bytes(self.ami)
        text = "".join(f"$ asterisk -rx 'queue show {q}'\n{out}\n" for q, out in self.queue_show.items())
        (folder / "queue_show.txt").write_text(text, encoding="utf-8")
        (folder / "call.json").write_text(json.dumps(self.notes, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def as_csv(rows: list[dict]) -> str:
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return out.getvalue()


# --- a browser over HTTP ------------------------------------------------------------------------------


class Browser:
    """A person's browser on the app under gunicorn: signs in through /login (its CSRF token and session
    cookie), then opens pages and posts the way htmx does (with the page's X-CSRFToken)."""

    def __init__(self, base: str, username: str, password: str):
        self.base = base
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        form = self.get("/login")[1].decode()
        token = html.unescape(re.search(r'name="csrf_token" value="([^"]+)"', form).group(1))
        status, _, _ = self.request("POST", "/login", urllib.parse.urlencode(
            {"csrf_token": token, "username": username, "password": password}).encode(),
            {"Content-Type": "application/x-www-form-urlencoded"})
        assert status == 200, f"sign-in as {username}: {status}"
        page = self.get("/")[1].decode()
        self.csrf = json.loads(html.unescape(re.search(r"hx-headers='([^']+)'", page).group(1)))["X-CSRFToken"]

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        request = urllib.request.Request(self.base + path, data=body, method=method, headers=headers or {})
        try:
            with self.opener.open(request, timeout=15) as response:
                return response.status, response.read(), response.headers
        except urllib.error.HTTPError as error:
            return error.code, error.read(), error.headers

    def get(self, path: str, headers: dict | None = None):
        return self.request("GET", path, headers=headers)

    def post(self, path: str, form: dict | None = None):
        """An htmx POST from the page, with the form's fields."""
        return self.request("POST", path, urllib.parse.urlencode(form or {}).encode(),
                            {"X-CSRFToken": self.csrf, "HX-Request": "true",
                             "Content-Type": "application/x-www-form-urlencoded"})


# --- the lab --------------------------------------------------------------------------------------------


class Lab:
    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.processes: list[subprocess.Popen] = []
        self.phones: dict[str, dict] = {}
        self.groups: dict[str, int] = {}
        self.dids: dict[str, str] = {}
        self.tokens: dict[str, str] = {}
        self.logins: dict[str, tuple[str, str]] = {}  # a person's user name and password, by who
        self.base = ""
        self.engine = None
        self.ami: AmiTap | None = None

    # Asterisk
    def ctl(self, *args: str, check: bool = True, env: dict | None = None) -> str:
        result = subprocess.run([str(LAB_CTL), *args], capture_output=True, text=True, timeout=90, env=env)
        if check and result.returncode != 0:
            raise RuntimeError(f"asterisk-lab {' '.join(args)}: {result.stdout}{result.stderr}\n{self.log_tail()}")
        return result.stdout

    def rx(self, command: str) -> str:
        return self.ctl("rx", command)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(LAB_LOG.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    # the app's API, over HTTP to gunicorn
    def api(self, method: str, path: str, body=None, as_user: str = "admin") -> tuple[int, dict]:
        request = urllib.request.Request(
            self.base + path, method=method, data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self.tokens[as_user]}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=15) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def must(self, method: str, path: str, body=None, as_user: str = "admin") -> dict:
        status, answer = self.api(method, path, body, as_user)
        assert status in (200, 201, 202), f"{method} {path} → {status} {answer}"
        return answer

    # sipp
    def sipp(self, scenario: str, *args: str, ip: str = PHONE_IP, port: int | None = None, log: str,
             seconds: int = SIPP_SECONDS) -> subprocess.Popen:
        command = ["sipp", "-sf", str(SCENARIOS / scenario), "-i", ip, "-mi", ip,
                   "-mp", str(free_port(socket.SOCK_DGRAM, ip)), "-nostdin", "-timeout", f"{seconds}s",
                   "-trace_err", "-error_file", str(self.workdir / f"{log}.errors.log"),
                   "-trace_msg", "-message_file", str(self.workdir / f"{log}.messages.log")]
        if port is not None:
            command += ["-p", str(port)]
        command += list(args)
        out = open(self.workdir / f"{log}.out.log", "wb")
        process = subprocess.Popen(command, cwd=self.workdir, stdin=subprocess.DEVNULL, stdout=out,
                                   stderr=subprocess.STDOUT, preexec_fn=die_with_us)
        out.close()
        self.processes.append(process)
        return process

    def ami_recorder(self) -> AmiRecorder:
        return AmiRecorder(*self.ami_login)

    def ami_action(self, name: str, **fields) -> list[dict]:
        """One action on a short AMI session of its own: its response and the events of its answer, up to
        the list's end (`…Complete`) when it sends one."""
        ami = AmiRecorder(*self.ami_login)
        try:
            mark = len(ami.data)
            action_id = ami.action(name, **fields)
            def answered(data: bytes) -> bool:
                mine = [m for m in ami_messages(data[mark:]) if m.get("ActionID") == action_id]
                return bool(mine) and (mine[0].get("EventList") != "start"
                                       or any(m.get("EventList") == "Complete" for m in mine))
            ami.read_until(answered)
            return [m for m in ami_messages(bytes(ami.data[mark:])) if m.get("ActionID") == action_id]
        finally:
            ami.sock.close()

    def sip_target(self) -> str:
        return f"{PHONE_IP}:{self.sip_port}"

    def start_phone(self, number: str, password: str, answers: bool) -> None:
        """Registers from its own port, then answers (after 2 s of ringing) or only rings on that port."""
        port = free_port(socket.SOCK_DGRAM)
        register = self.sipp("register.xml", "-m", "1", "-au", number, "-ap", password, "-key", "ext", number,
                             self.sip_target(), port=port, log=f"phone-{number}-register", seconds=15)
        assert register.wait(timeout=30) == 0, f"phone {number} did not register: {self.log_tail()}"
        self.sipp("phone-answers.xml" if answers else "phone-rings.xml", "-key", "ext", number,
                  port=port, log=f"phone-{number}")
        self.phones[number] = {"port": port, "password": password, "answers": answers}

    def outside_call(self, did: str, caller: str, hang_up_after: float | None, log: str) -> subprocess.Popen:
        """An outside caller on a DID; hangs up `hang_up_after` seconds after the answer, or (None) waits
        until Asterisk hangs up."""
        scenario = "caller-waits.xml" if hang_up_after is None else "caller-hangs-up.xml"
        args = ["-m", "1", "-s", did, "-key", "caller", caller]
        if hang_up_after is not None:
            args += ["-d", str(int(hang_up_after * 1000))]
        return self.sipp(scenario, *args, self.sip_target(), ip=OUTSIDE_IP, log=log, seconds=120)

    def caller_leaves_message(self, did: str, caller: str, log: str) -> subprocess.Popen:
        """An outside caller on a DID that speaks (sipp plays a recording) for 15 s after the answer, then
        hangs up: a message for the voicemail that answered."""
        return self.sipp("caller-leaves-message.xml", "-m", "1", "-s", did, "-key", "caller", caller,
                         self.sip_target(), ip=OUTSIDE_IP, log=log, seconds=120)

    def browser(self, who: str = "admin") -> Browser:
        """A browser signed in: an admin's, or that of the person whose phone is `who` (the manager of 2002)."""
        return Browser(self.base, *(self.browser_login if who == "admin" else self.logins[who]))

    def phone_call(self, number: str, dialled: str, hang_up_after: float, log: str) -> subprocess.Popen:
        """A phone dials (authenticating as itself, from a port of its own) and hangs up after the answer."""
        password = self.passwords[number]
        return self.sipp("phone-calls.xml", "-m", "1", "-s", dialled, "-key", "caller", number, "-au", number,
                         "-ap", password, "-d", str(int(hang_up_after * 1000)), self.sip_target(), log=log,
                         seconds=120)

    # the database Asterisk writes
    def rows(self, table: str, after_id: int) -> list[dict]:
        with self.engine.connect() as conn:
            result = conn.execute(sa.text(f"SELECT * FROM {table} WHERE id > :id ORDER BY id"), {"id": after_id})
            return [{k: (str(v) if v is not None else None) for k, v in r._mapping.items()} for r in result]

    def last_id(self, table: str) -> int:
        with self.engine.connect() as conn:
            return conn.execute(sa.text(f"SELECT coalesce(max(id), 0) FROM {table}")).scalar_one()

    def channels(self) -> int:
        match = re.search(r"(\d+) active channels?", self.rx("core show channels count"))
        return int(match.group(1)) if match else -1

    def waiting_call(self, group: str, timeout: float = 10) -> dict:
        """The caller the app shows waiting in a group (the listener stored it from AMI)."""
        def found():
            _, answer = self.api("GET", "/api/waiting-calls")
            calls = [c for c in answer["waiting_calls"] if c["group_id"] == self.groups[group]]
            return calls[0] if calls else None
        return wait_for(found, timeout, f"a caller waiting in {group} on /api/waiting-calls")

    @contextmanager
    def call(self, name: str, groups=()):
        """Runs a scenario; afterwards the Record holds what Asterisk wrote meanwhile (written into the
        fixtures with PBX_CAPTURE=1, before the test asserts anything)."""
        record = Record(name)
        cdr_from, log_from, ami_from = self.last_id("cdr"), self.last_id("queue_log"), self.ami.mark()
        started = time.monotonic()
        yield record
        assert lab_pid() == self.asterisk_pid, "the lab Asterisk was stopped or restarted by someone else during this call"
        wait_for(lambda: self.channels() == 0, 30, f"{name}: every channel gone ({self.rx('core show channels')})")
        # cdr_adaptive_odbc writes as each channel ends; let the last rows land.
        seen = None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            now = (self.last_id("cdr"), self.last_id("queue_log"))
            if now == seen:
                break
            seen = now
            time.sleep(1.5)
        record.cdr = self.rows("cdr", cdr_from)
        record.queue_log = self.rows("queue_log", log_from)
        record.ami = self.ami.since(ami_from)
        record.queue_show = {f"extgroup_{self.groups[g]}": ANSI.sub("", self.rx(f"queue show extgroup_{self.groups[g]}"))
                             for g in groups}
        record.notes.setdefault("seconds", round(time.monotonic() - started, 1))
        if CAPTURE:
            record.save(CAPTURES / name)


HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config, items):
    """Without the lab (or not as root) every test of this layer is skipped with the reason, before any
    fixture starts anything (not even the test PostgreSQL)."""
    reason = why_no_lab()
    if reason:
        for item in items:
            if HERE in Path(item.path).parents:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def lab(pg, tmp_path_factory):
    from flask_migrate import upgrade

    from pbxweb import create_app

    from ..conftest import token_for
    workdir = tmp_path_factory.mktemp("asterisk-lab")
    lab = Lab(workdir)
    gunicorn = None
    lock = take_lab()
    try:
        # A database owned by a role with a password: ODBC logs in with user and password.
        password = secrets.token_hex(16)
        server = sa.create_engine(pg, isolation_level="AUTOCOMMIT")
        with server.connect() as conn:
            conn.execute(sa.text("DROP DATABASE IF EXISTS pbx_lab"))
            conn.execute(sa.text("DROP ROLE IF EXISTS pbx_lab"))
            conn.execute(sa.text(f"CREATE ROLE pbx_lab LOGIN PASSWORD '{password}'"))
            conn.execute(sa.text("CREATE DATABASE pbx_lab OWNER pbx_lab"))
        server.dispose()
        url = sa.engine.make_url(pg).set(username="pbx_lab", password=password, database="pbx_lab")
        lab.database_url = url.render_as_string(hide_password=False)
        lab.engine = sa.create_engine(lab.database_url)
        app = create_app(app_config(lab.database_url))
        with app.app_context():
            upgrade()
            lab.tokens["admin"] = token_for("admin", "lab-admin")

        # The app's own Asterisk config, installed into the lab; Asterisk restarted on it.
        lab.sip_port, ami_port = free_sip_port(), free_port()
        ami_user, ami_secret = "minipbx", secrets.token_hex(16)
        # Voicemail's e-mails go to a script that keeps each one in the workdir (mail-<pid>.eml) instead of
        # out through a mail server.
        lab.mailcmd = workdir / "capture-mail"
        lab.mailcmd.write_text(f"#!/bin/sh\ncat > {workdir}/mail-$$.eml\n")
        lab.mailcmd.chmod(0o755)
        environment = {**os.environ, "DATABASE_URL": lab.database_url, "SECRET_KEY": secrets.token_hex(32),
                       "AMI_HOST": PHONE_IP, "AMI_PORT": str(ami_port), "AMI_USERNAME": ami_user,
                       "AMI_SECRET": ami_secret, "PBX_SIP_BIND": PHONE_IP, "PBX_SIP_PORT": str(lab.sip_port),
                       "PBX_SECURE_COOKIES": "off", "PBX_TIMEZONE": "UTC",
                       "PBX_VOICEMAIL_SPOOL": str(LAB_SPOOL), "PBX_VOICEMAIL_MAILCMD": str(lab.mailcmd),
                       "PBX_VOICEMAIL_FROM": "pbx@example.com"}
        # Messages another run left in the mailboxes this session makes.
        shutil.rmtree(LAB_SPOOL / "default" / "2005", ignore_errors=True)
        lab.environment = environment
        config_dir = workdir / "asterisk-config"
        subprocess.run([str(BIN / "flask"), "--app", "wsgi", "pbx", "asterisk-config", "--out", str(config_dir),
                        "--force"], cwd=ROOT, env=environment, check=True, capture_output=True)
        lab.ctl("install-config", str(config_dir))
        lab.log_from = LAB_LOG.stat().st_size if LAB_LOG.exists() else 0
        # Asterisk runs in a zone that is not UTC, as at a site: the call log's times must still be UTC.
        lab.ctl("start", env={**os.environ, "TZ": ASTERISK_TZ})
        lab.asterisk_pid = lab_pid()
        # Should this process be killed, Asterisk is stopped all the same (if it is still the one we started).
        subprocess.Popen(["sh", "-c", f"while kill -0 {os.getpid()} 2>/dev/null; do sleep 1; done; "
                          f"[ \"$(cat {LAB_PID} 2>/dev/null)\" = {lab.asterisk_pid} ] && {LAB_CTL} stop"],
                         start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: "Number of active connections: 0" not in lab.rx("odbc show"), 15,
                 "Asterisk's ODBC connection to the lab database")

        # The app as deployed: gunicorn's gevent worker with the AMI listener inside.
        port = free_port()
        gunicorn = subprocess.Popen(
            [str(BIN / "gunicorn"), "-c", "deploy/gunicorn.conf.py", "-b", f"{PHONE_IP}:{port}", "wsgi:app"],
            cwd=ROOT, env=environment, stdout=open(workdir / "gunicorn.log", "wb"), stderr=subprocess.STDOUT,
            preexec_fn=die_with_us)
        lab.base = f"http://{PHONE_IP}:{port}"

        def answers():
            assert gunicorn.poll() is None, (workdir / "gunicorn.log").read_text()
            try:
                return lab.api("GET", "/api/ami")[0] == 200
            except OSError:
                return False

        wait_for(answers, 30, "gunicorn")
        def listener_connected():
            with lab.engine.connect() as conn:
                return bool(conn.execute(sa.text("SELECT connected FROM pbx_ami_status")).scalar())

        wait_for(listener_connected, 30, "the app's AMI listener connected to Asterisk")
        lab.ami = AmiTap(ami_port, ami_user, ami_secret)
        lab.ami_login = (ami_port, ami_user, ami_secret)

        # The PBX, through the API: four extensions, four groups, three DIDs, a trunk.
        lab.passwords = {n: strong_password() for n in ("2001", "2002", "2003", "2004")}
        for number, pw in lab.passwords.items():
            lab.must("POST", "/api/extensions", {"number": number, "name": f"Lab {number}", "password": pw})
        for name, members, extra in (("Sales", ["2002", "2003"], {}), ("Support", ["2003"], {}),
                                     ("Short", ["2003"], {"max_wait": 5}), ("Back office", ["2004"], {})):
            group = lab.must("POST", "/api/groups", {"name": name, "ring_strategy": "ringall", **extra})
            lab.groups[name] = group["id"]
            lab.must("PUT", f"/api/groups/{group['id']}/members", {"members": [{"number": n} for n in members]})
        for did, group in (("5550101", "Sales"), ("5550102", "Support"), ("5550103", "Short")):
            lab.must("POST", "/api/dids", {"number": did, "destination_type": "group", "destination": lab.groups[group]})
            lab.dids[group] = did
        lab.provider_port = free_port(socket.SOCK_DGRAM, PROVIDER_IP)
        lab.must("POST", "/api/trunks", {"name": "provider", "host": PROVIDER_IP, "port": lab.provider_port})
        # A mailbox with no phone: 2005, voicemail on with an e-mail address, a DID straight to it, a group of
        # its own (to be paused in) and the pause reason "Lunch".
        lab.must("POST", "/api/extensions", {"number": "2005", "name": "Lab Mailbox", "voicemail": True,
                                             "email": "lab-mailbox@example.com"})
        lab.must("POST", "/api/dids", {"number": "5550100", "destination_type": "extension", "destination": "2005"})
        lab.dids["2005"] = "5550100"
        group = lab.must("POST", "/api/groups", {"name": "Mailbox", "ring_strategy": "ringall"})
        lab.groups["Mailbox"] = group["id"]
        lab.must("PUT", f"/api/groups/{group['id']}/members", {"members": [{"number": "2005"}]})
        lab.must("POST", "/api/pause-reasons", {"name": "Lunch"})
        with app.app_context():
            from pbxweb.auth.service import create_token, create_user

            _, password = create_user("lab-2002", "manager", None, "2002")
            lab.logins["2002"] = ("lab-2002", password)
            lab.tokens["2002"] = create_token("lab-2002")
            lab.browser_login = ("lab-browser", f"correct horse {secrets.token_hex(8)}")
            create_user(lab.browser_login[0], "admin", lab.browser_login[1])

        # The phones: 2002 answers, 2003 and 2004 only ring; 2001 only calls out. The provider answers.
        lab.start_phone("2002", lab.passwords["2002"], answers=True)
        lab.start_phone("2003", lab.passwords["2003"], answers=False)
        lab.start_phone("2004", lab.passwords["2004"], answers=False)
        lab.sipp("phone-answers.xml", "-key", "ext", "provider", ip=PROVIDER_IP, port=lab.provider_port,
                 log="provider")

        # A new contact is not rung until its first qualify (within max_initial_qualify_time) says it is
        # reachable: until then its device is UNAVAILABLE and a queue skips it. Wait for the app to show
        # every phone registered and idle, as the listener learnt it from AMI.
        def idle():
            _, answer = lab.api("GET", "/api/extensions/status")
            states = {e["number"]: (e["registration"], e["device_state"]) for e in answer["extensions"]}
            return all(states.get(n) == ("registered", "NOT_INUSE") for n in ("2002", "2003", "2004"))

        wait_for(idle, 30, "the app showing 2002-2004 registered and idle")
        yield lab
    finally:
        for process in lab.processes:
            if process.poll() is None:
                process.kill()
            process.wait()
        if gunicorn is not None:
            gunicorn.terminate()
            try:
                gunicorn.wait(timeout=15)
            except subprocess.TimeoutExpired:
                gunicorn.kill()
                gunicorn.wait()
        if lab.ami is not None:
            lab.ami.close()
        if lab_pid() is not None and lab_pid() == getattr(lab, "asterisk_pid", None):
            lab.ctl("stop", check=False)
            # Our config names a database that is gone with this run: leave the lab as the package ships it.
            lab.ctl("reset-config", check=False)
        if lab.engine is not None:
            lab.engine.dispose()
        lock.close()
