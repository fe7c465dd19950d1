"""The production server as deploy/ runs it (gunicorn's gevent worker, wsgi.py's patches, the listener in
the worker), and the standalone `pbx ami-listen`."""

import ctypes
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import sqlalchemy as sa

from .pgcluster import free_port

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def die_with_us():
    """In the child: the kernel sends it SIGTERM if the test process dies first."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def wait(predicate, process, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        assert process.poll() is None, process.stdout.read().decode()
        time.sleep(0.1)
    return False


def connected(db) -> bool:
    with db.engine.connect() as conn:
        row = conn.execute(sa.text("SELECT connected FROM pbx_ami_status")).first()
    return bool(row and row.connected)


@pytest.fixture
def environment(app, ami_server):
    return {**os.environ, "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"], "SECRET_KEY": "test-only-key",
            "AMI_HOST": "127.0.0.1", "AMI_PORT": str(ami_server.port), "AMI_USERNAME": ami_server.username,
            "AMI_SECRET": ami_server.secret}


def stop(process) -> str:
    process.terminate()
    try:
        return process.communicate(timeout=10)[0].decode()
    except subprocess.TimeoutExpired:
        process.kill()
        return process.communicate()[0].decode()


def test_gunicorn_serves_the_app_and_runs_the_listener_in_its_gevent_worker(environment, db):
    port = free_port()
    process = subprocess.Popen(
        [str(BIN / "gunicorn"), "-c", "deploy/gunicorn.conf.py", "-b", f"127.0.0.1:{port}", "wsgi:app"],
        cwd=ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, preexec_fn=die_with_us,
    )
    try:
        def page_served():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=2) as response:
                    return response.status == 200 and b"Log in" in response.read()
            except OSError:
                return False

        assert wait(page_served, process), "gunicorn did not answer"
        assert wait(lambda: connected(db), process), "the worker's listener did not connect"
    finally:
        output = stop(process)
    assert "Using worker: gevent" in output and "Booting worker" in output


def test_ami_listen_debug_prints_events_and_actions_with_secrets_masked(environment, db, ami_server):
    process = subprocess.Popen(
        [str(BIN / "flask"), "--app", "wsgi", "pbx", "ami-listen", "--debug"],
        cwd=ROOT, env={**environment, "PBX_AMI_LISTENER": "off"}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        preexec_fn=die_with_us,
    )
    try:
        assert wait(lambda: connected(db), process), "ami-listen did not connect"
        ami_server.push_capture("register.ami")
        time.sleep(0.5)
    finally:
        output = stop(process)
    lines = output.splitlines()
    assert any(line.startswith("> Action: Login") and "Secret: ********" in line for line in lines)
    assert any(line.startswith("< Event: ContactStatus") for line in lines)
    assert ami_server.secret not in output
