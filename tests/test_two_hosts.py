"""Two app hosts on one PostgreSQL behind the shipped nginx site: an upstream of two gunicorn instances (here
both on 127.0.0.1), each as deployed. When the instance that runs the AMI listener dies (`kill -9`, all of
it), the other takes the listener over within 5 s and rebuilds the live state from Asterisk's snapshot: a
dashboard that stayed open through nginx shows every waiting caller once."""

import os
import signal
import time

import pytest
import sqlalchemy as sa

from .conftest import DESKTOP, console_errors
from .test_deploy import stop, wait
from .test_nginx import behind_proxy, nginx  # noqa: F401 — fixtures
from .test_workers import answers, gunicorn, workers_of

# The listener's advisory-lock retry (2 s), its login to Asterisk and the snapshot, with room to spare.
TAKEOVER_SECONDS = 5


def listener(db) -> tuple[bool, str | None]:
    with db.engine.connect() as conn:
        row = conn.execute(sa.text("SELECT connected, listener FROM pbx_ami_status")).first()
    return (bool(row.connected), row.listener) if row else (False, None)


@pytest.fixture
def two_hosts(app, site, ami_server, db, behind_proxy):  # noqa: F811
    """Two gunicorn instances, each in its own process group (a host's death is every process of it dying)."""
    instances = [gunicorn(app, ami_server, start_new_session=True) for _ in range(2)]
    try:
        for process, port in instances:
            assert wait(lambda: answers(port), process), "an instance did not answer"
        assert wait(lambda: listener(db)[0], instances[0][0]), "no listener connected"
        yield instances
    finally:
        for process, _ in instances:
            if process.poll() is None:
                stop(process)


def instance_running_the_listener(db, instances):
    """The listener names itself host:pid; the pid is one of an instance's workers."""
    name = listener(db)[1]
    pid = int(name.rsplit(":", 1)[1])
    return next((process, port) for process, port in instances if pid in workers_of(process.pid)), name


def test_when_the_listeners_host_dies_the_other_takes_over_and_shows_every_caller_once(
        two_hosts, nginx, browser, ami_server, db, screenshots):  # noqa: F811
    front = nginx(*(f"http://127.0.0.1:{port}" for _, port in two_hosts))
    context = browser.new_context(ignore_https_errors=True, viewport=DESKTOP)
    try:
        page = context.new_page()
        errors = console_errors(page)
        page.goto(f"{front}/login")
        page.fill("input[name=username]", "alice")
        page.fill("input[name=password]", "correct horse battery")
        page.click("button[type=submit]")
        page.wait_for_selector("#ami-banner .banner.ok", timeout=10000)
        ami_server.push_capture("queue-redirect.ami", until="QueueCallerJoin")
        page.wait_for_selector("#waiting-calls li.waiting", timeout=5000)
        # What Asterisk answers whoever asks next: the caller is still waiting.
        ami_server.answer_from("queue-redirect.ami", "queuestatus-1")

        (dying, _), old_name = instance_running_the_listener(db, two_hosts)
        os.killpg(dying.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        deadline = killed_at + TAKEOVER_SECONDS
        while not (listener(db)[0] and listener(db)[1] != old_name):
            assert time.monotonic() < deadline, f"no listener took over within {TAKEOVER_SECONDS} s"
            time.sleep(0.05)
        took = time.monotonic() - killed_at
        survivor = next(process for process, _ in two_hosts if process is not dying)
        assert instance_running_the_listener(db, two_hosts)[0][0] is survivor
        assert took < TAKEOVER_SECONDS

        page.wait_for_selector("#ami-banner .banner.ok", timeout=10000)
        page.wait_for_function("document.querySelectorAll('#waiting-calls li.waiting').length === 1", timeout=10000)
        page.wait_for_timeout(1500)  # anything still to arrive (a reconnect's first frame) has arrived
        rows = page.locator("#waiting-calls li.waiting")
        assert rows.count() == 1 and "noanswer 1001" in rows.inner_text()
        with db.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM pbx_waiting_calls")).scalar() == 1
        page.screenshot(path=str(screenshots / "dashboard-after-host-takeover.png"))
        # The socket of the dead host closed; the ws extension reconnected through nginx to the live one.
        assert [e for e in errors if "WebSocket" not in e] == []
    finally:
        context.close()
