"""Fixtures: one throwaway PostgreSQL cluster per test run, the app on it (schema built by the migrations),
an API client with a bearer token, and a look into Asterisk's realtime tables."""

import os
import subprocess
import time
import urllib.request
from pathlib import Path

import gevent

import pytest
import sqlalchemy as sa

from pbxweb import create_app
from pbxweb.auth.service import create_user
from pbxweb.cdr.kept import exports as kept_exports, kept as kept_statistics
from pbxweb.ext import db as _db
from pbxweb.realtime.mapping import REASON_PAUSED_MARKER, marker_rows
from pbxweb.realtime.schema import TABLES

from .pgcluster import Cluster, free_port

# Asterisk 22.10.1 as captured (schema CSVs, AMI transcripts): the repository carries its own copy.
ASTERISK_FACTS = Path(__file__).resolve().parent / "fixtures" / "asterisk"


def until(predicate, timeout: float = 8.0) -> bool:
    """Wait for a condition while letting greenlets (the AMI client, the listener) run."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        gevent.sleep(0.01)
    return False


def stored_waiting_caller(db, timeout: float = 10.0) -> str:
    """The uniqueid of the caller the listener stored as waiting (it stores them from Asterisk's events)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with db.engine.connect() as conn:
            uniqueid = conn.execute(sa.text("SELECT uniqueid FROM pbx_waiting_calls")).scalar()
        if uniqueid:
            return uniqueid
        time.sleep(0.05)
    raise AssertionError("the listener stored no waiting caller")


@pytest.fixture(scope="session")
def pg_cluster():
    """The throwaway cluster, or None when TEST_DATABASE_SERVER names a server of one's own."""
    if os.environ.get("TEST_DATABASE_SERVER"):
        yield None
        return
    cluster = Cluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def pg(pg_cluster):
    """A PostgreSQL server: TEST_DATABASE_SERVER (a URL to its `postgres` database) or a throwaway cluster."""
    return os.environ.get("TEST_DATABASE_SERVER") or pg_cluster.url()


def make_database(server_url: str, name: str) -> str:
    engine = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return sa.engine.make_url(server_url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def make_db(pg):
    """Makes an empty database on the test server and returns its URL."""
    return lambda name: make_database(pg, name)


def app_config(database_url: str, **extra) -> dict:
    return {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SECRET_KEY": "test-only-key",
        "WTF_CSRF_ENABLED": False,
        "SESSION_COOKIE_SECURE": False,
        "AMI_USERNAME": None,
        "AMI_SECRET": None,
        # Tests drain the AMI outbox themselves, to see what was sent.
        "AMI_OUTBOX_AUTODRAIN": False,
        "PBX_AMI_LISTENER": False,
        **extra,
    }


@pytest.fixture(scope="session")
def _app(make_db):
    from flask_migrate import upgrade

    app = create_app(app_config(make_db("pbx_test")))
    with app.app_context():
        upgrade()
    return app


def _truncate_all(app) -> None:
    with app.app_context():
        _db.session.remove()
        names = [t.name for t in _db.metadata.sorted_tables]
        with _db.engine.begin() as conn:
            conn.execute(sa.text(f"TRUNCATE {', '.join(names)} RESTART IDENTITY CASCADE"))
            # Each test starts from the database as the migrations leave it: with the reason_paused marker.
            for table, table_rows in marker_rows().items():
                conn.execute(sa.insert(TABLES[table]), table_rows)


def not_the_marker(t: sa.Table):
    """Every row but REASON_PAUSED_MARKER: the tests of groups look at the groups' member rows."""
    return t.c.queue_name != REASON_PAUSED_MARKER["queue_name"] if t.name == "asterisk_queue_members" else sa.true()


@pytest.fixture
def app(_app):
    saved = dict(_app.config)
    ctx = _app.app_context()
    ctx.push()
    yield _app
    _db.session.remove()
    ctx.pop()
    _app.config.clear()
    _app.config.update(saved)
    _truncate_all(_app)
    forget_kept_figures()


def forget_kept_figures() -> None:
    """What a process keeps for a while (statistics, counts by state, first frames) described the last test's
    data, not the next one's."""
    from pbxweb.waiting_calls import panels

    kept_statistics.figures.clear()
    kept_exports.exports.clear()
    for kept in (panels._kept_counts, panels._pushed_counts, panels._first_frames):
        kept.clear()


@pytest.fixture
def db(app):
    return _db


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


class Api:
    """The test client with a bearer token: `api.post("/api/extensions", json=…)`."""

    def __init__(self, client, token):
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"}

    def __getattr__(self, method):
        def call(url, **kwargs):
            return getattr(self.client, method)(url, headers={**self.headers, **kwargs.pop("headers", {})}, **kwargs)

        return call


def token_for(role: str, username: str | None = None) -> str:
    from pbxweb.auth.service import create_token, create_user

    user, _ = create_user(username or f"{role}-user", role)
    return create_token(user.username)


@pytest.fixture
def api(client):
    return Api(client, token_for("admin"))


@pytest.fixture
def two_groups(api):
    """Extensions 1001-1003 (`Agent 1001`…); Sales rings 1001 and 1002, Support rings 1003."""
    for number in ("1001", "1002", "1003"):
        api.post("/api/extensions", json={"number": number, "name": f"Agent {number}"})
    sales = api.post("/api/groups", json={"name": "Sales"}).get_json()["id"]
    support = api.post("/api/groups", json={"name": "Support"}).get_json()["id"]
    api.put(f"/api/groups/{sales}/members", json={"members": [{"number": "1001"}, {"number": "1002"}]})
    api.put(f"/api/groups/{support}/members", json={"members": [{"number": "1003"}]})
    return {"sales": sales, "support": support}


@pytest.fixture
def rows(db):
    """rows("ps_endpoints") → that realtime table's rows as dicts (only non-NULL columns), ordered by key."""

    def fetch(table: str, **where) -> list[dict]:
        t = TABLES[table]
        query = sa.select(t).where(not_the_marker(t)).order_by(*t.primary_key.columns or [t.columns[0]])
        for column, value in where.items():
            query = query.where(t.c[column] == value)
        with db.engine.connect() as conn:
            return [{k: v for k, v in r._mapping.items() if v is not None} for r in conn.execute(query)]

    return fetch


@pytest.fixture
def realtime_counts(db):
    """How many rows each synced realtime table holds: the 'nothing written' check."""

    def counts() -> dict[str, int]:
        with db.engine.connect() as conn:
            return {name: conn.execute(sa.select(sa.func.count()).select_from(t).where(not_the_marker(t))).scalar_one()
                    for name, t in TABLES.items()}

    return counts


@pytest.fixture
def ami_server():
    """A test AMI server replaying the real Asterisk captures, on 127.0.0.1 and a random port."""
    from .ami_server import AmiTestServer

    server = AmiTestServer(ASTERISK_FACTS / "ami")
    yield server
    server.stop()


# --- the browser, shared by every browser test (one Playwright per test run) ------------------------------

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="session")
def browser():
    """Debian's chromium, headless, driven by Playwright for Python (its own browser download is never used)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            # No sandbox as root in CI; no background traffic to hosts this machine cannot reach.
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"],
        )
        yield browser
        browser.close()


# A form answered with its errors (400, 409; 401 for a wrong password) is the page working; anything else the
# console reports is a fault: a missing file, a script error, htmx's oobErrorNoTarget.
EXPECTED_CONSOLE = tuple(f"the server responded with a status of {status}" for status in (400, 401, 409))


def console_errors(page) -> list[str]:
    """Every error the page's console or scripts report from now on (a test asserts the list stays empty)."""
    errors = []
    page.on("console", lambda message: message.type == "error" and not any(e in message.text for e in EXPECTED_CONSOLE)
            and errors.append(f"{page.url}: {message.text}"))
    page.on("pageerror", lambda error: errors.append(f"{page.url}: {error}"))
    return errors


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory) -> Path:
    """Where the screenshots of each page go: the test run's temp dir, or PBX_SCREENSHOTS when set."""
    folder = Path(os.environ.get("PBX_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}


def sign_in(page, live_server, username="alice", password="correct horse battery"):
    page.goto(f"{live_server}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server}/")


# --- the app as deployed: gunicorn's gevent worker with the listener inside, on the test AMI server --------


@pytest.fixture
def site(app, api, db, ami_server):
    """Sales (group 1, the captures' extgroup_1) rings 1001 and 1002; Support rings 1003. alice (admin) has
    extension 1002; carl is an agent of Support only."""
    for number in ("1001", "1002", "1003"):
        api.post("/api/extensions", json={"number": number, "name": f"Agent {number}"})
    sales = api.post("/api/groups", json={"name": "Sales", "members": [{"number": "1001"}, {"number": "1002"}]}).get_json()
    support = api.post("/api/groups", json={"name": "Support", "members": [{"number": "1003"}]}).get_json()
    assert sales["id"] == 1
    create_user("alice", "admin", "correct horse battery", "1002")
    create_user("carl", "agent", "correct horse battery", "1003")
    return {"sales": sales["id"], "support": support["id"]}


@pytest.fixture
def server(app, site, ami_server, db):
    """gunicorn with deploy/gunicorn.conf.py on 127.0.0.1, its listener connected to the test AMI server."""
    from .test_deploy import BIN, ROOT, connected, die_with_us, stop, wait

    port = free_port()
    environment = {**os.environ, "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"], "SECRET_KEY": "test-only-key",
                   "AMI_HOST": "127.0.0.1", "AMI_PORT": str(ami_server.port), "AMI_USERNAME": ami_server.username,
                   "AMI_SECRET": ami_server.secret, "PBX_SECURE_COOKIES": os.environ.get("PBX_SECURE_COOKIES", "off")}
    process = subprocess.Popen(
        [str(BIN / "gunicorn"), "-c", "deploy/gunicorn.conf.py", "-b", f"127.0.0.1:{port}", "wsgi:app"],
        cwd=ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, preexec_fn=die_with_us,
    )

    def answers():
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    try:
        assert wait(answers, process), "gunicorn did not answer"
        assert wait(lambda: connected(db), process), "the listener did not connect"
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process)


@pytest.fixture
def person(browser):
    """Opens the dashboard as someone; the test fails if any of their consoles reported an error."""
    contexts = []
    errors = []

    def open_as(live, username):
        context = browser.new_context(viewport=DESKTOP)
        contexts.append(context)
        page = context.new_page()
        page.console_errors = console_errors(page)
        errors.append(page.console_errors)
        frames = []
        page.on("websocket", lambda ws: ws.on("framereceived", lambda payload: frames.append(payload)))
        sign_in(page, live, username)
        page.wait_for_selector("#ami-banner .banner.ok")
        return page, frames

    yield open_as
    for context in contexts:
        context.close()
    assert [e for page_errors in errors for e in page_errors] == [], "a browser console reported errors"
