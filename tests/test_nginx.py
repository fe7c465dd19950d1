"""The shipped nginx site (deploy/nginx-mini-pbx.conf) in front of gunicorn, as an install runs it: TLS with a
certificate made here, ports on 127.0.0.1, the app trusting exactly that one proxy hop. A page and the live
socket work through it, and the socket's Origin check agrees with the headers nginx passes on."""

import grp
import os
import pwd
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from .pgcluster import free_port
from .test_deploy import ROOT, die_with_us

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def site_for_test(upstream_ports: list[int], port: int, cert: Path, key: Path) -> str:
    """The shipped site with only what a test must change: ports (the upstream's servers), certificate, the
    static folder."""
    text = (ROOT / "deploy" / "nginx-mini-pbx.conf").read_text()
    servers = "".join(f"    server 127.0.0.1:{upstream};\n" for upstream in upstream_ports)
    text = re.sub(r"(upstream mini_pbx \{\n)(?:    #? ?server .*\n)+", lambda m: m.group(1) + servers, text)
    text = re.sub(r"server \{\n    listen 80;.*?\n\}\n", "", text, flags=re.S)  # the port-80 redirect
    text = text.replace("listen 443 ssl;", f"listen 127.0.0.1:{port} ssl;")
    text = text.replace("http2 on;", "")  # nginx 1.22 takes http2 on the listen line; not needed here
    text = re.sub(r"ssl_certificate\s+\S+;", f"ssl_certificate {cert};", text)
    text = re.sub(r"ssl_certificate_key\s+\S+;", f"ssl_certificate_key {key};", text)
    return text.replace("/opt/mini-pbx/static/", f"{ROOT / 'static'}/")


def worker_user() -> str:
    """nginx's workers run as whoever runs the test, like the gunicorn they front: as root nginx would make
    them `nobody`, who cannot read a clone in a folder only its owner may enter (a 0700 home, mktemp -d), nor
    pytest's own 0700 temp folder."""
    if os.geteuid() != 0:
        return ""  # not root: the workers are this user already
    return f"user {pwd.getpwuid(os.geteuid()).pw_name} {grp.getgrgid(os.getegid()).gr_name};"


@pytest.fixture
def nginx(tmp_path, request):
    if not Path(NGINX).exists():
        pytest.fail("nginx is not installed: ./manage.sh test installs it (apt-get install nginx)")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)

    def start(*upstreams: str) -> str:
        port = free_port()
        (tmp_path / "site.conf").write_text(site_for_test([int(u.rsplit(":", 1)[1]) for u in upstreams], port, cert, key))
        (tmp_path / "nginx.conf").write_text(f"""
daemon off;
worker_processes 1;
pid {tmp_path}/nginx.pid;
error_log {tmp_path}/error.log;
{worker_user()}
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {tmp_path}/body;
    proxy_temp_path {tmp_path}/proxy;
    fastcgi_temp_path {tmp_path}/fastcgi;
    uwsgi_temp_path {tmp_path}/uwsgi;
    scgi_temp_path {tmp_path}/scgi;
    include {tmp_path}/site.conf;
}}
""")
        process = subprocess.Popen([NGINX, "-c", str(tmp_path / "nginx.conf"), "-p", str(tmp_path)], preexec_fn=die_with_us,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        request.addfinalizer(lambda: (process.terminate(), process.wait(timeout=10)))
        import socket
        import time

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    return f"https://127.0.0.1:{port}"
            assert process.poll() is None, process.stdout.read().decode()
            time.sleep(0.1)
        raise AssertionError("nginx did not listen")

    return start


@pytest.fixture
def behind_proxy(monkeypatch):
    monkeypatch.setenv("PBX_BEHIND_PROXY", "on")
    monkeypatch.setenv("PBX_SECURE_COOKIES", "on")


def test_a_page_and_the_live_socket_work_through_the_shipped_nginx_site(behind_proxy, server, nginx, browser):
    front = nginx(server)
    context = browser.new_context(ignore_https_errors=True)
    try:
        page = context.new_page()
        sockets = []
        page.on("websocket", lambda ws: sockets.append(ws.url))
        page.goto(f"{front}/login")
        page.fill("input[name=username]", "alice")
        page.fill("input[name=password]", "correct horse battery")
        page.click("button[type=submit]")
        page.wait_for_url(f"{front}/")
        page.wait_for_selector("#ami-banner .banner.ok", timeout=10000)
        assert any(url.startswith(f"wss://127.0.0.1:{front.rsplit(':', 1)[1]}/live/ws") for url in sockets)
        cookie = next(c for c in context.cookies() if c["name"] == "session")
        assert cookie["secure"] and cookie["httpOnly"]
        assert page.evaluate("getComputedStyle(document.body).fontFamily")  # static files served by nginx
    finally:
        context.close()
